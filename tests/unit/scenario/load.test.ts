import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadScenarioFile, parseScenario } from '../../../src/scenario/index.js';
import { MINIMAL_SCENARIO, scenarioProblems } from '../../fakes/scenario-problems.js';

const minimal = MINIMAL_SCENARIO;

const problems = (text: string, options = {}) => scenarioProblems(text, 'sc.yaml', options);

describe('scenario loading', () => {
  test('a valid scenario parses with defaults applied', () => {
    const s = parseScenario(minimal, 'minimal.yaml');
    expect(s.id).toBe('minimal');
    expect(s.language).toBe('fr');
    expect(s.duration).toBe(30 * 60_000);
    expect(s.networks).toEqual([{ name: 'lan' }]);
    expect(s.machines[0]?.provider).toBe('docker');
    expect(s.machines[0]?.resources).toEqual({ cpus: 1, memory: 512 * 1024 ** 2, pids: 1024 });
    expect(s.checks[0]?.timeout).toBe(10_000);
    expect(s.checks[1]?.baseline).toBe('pass');
    expect(s.setup[0]?.timeout).toBe(120_000);
  });

  test('YAML syntax errors carry line and column', () => {
    const text = minimal.replace('title: Un poste minimal', 'title: [oops');
    const found = problems(text);
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/^sc\.yaml:\d+:\d+: /);
  });

  test('duplicate keys are reported, not silently merged', () => {
    const found = problems(minimal.replace('passMark: 60', 'passMark: 60\npassMark: 70'));
    expect(found.join('\n')).toMatch(/sc\.yaml:10:1: .*unique/i);
  });

  test('unknown keys, wrong types and missing fields are all reported at once, with positions', () => {
    const text = minimal
      .replace('duration: 30m', 'duration: 30m\ncolour: blue')
      .replace('    port: 22\n', '    port: "vingt-deux"\n')
      .replace('    image: base\n', '');
    const found = problems(text);
    expect(found).toEqual(
      expect.arrayContaining([
        'sc.yaml:9:1 colour: unknown key "colour"',
        expect.stringMatching(/^sc\.yaml:\d+:11 checks\[1\]\.port: expected number, got string "vingt-deux"$/),
        expect.stringMatching(/^sc\.yaml:\d+:5 machines\[0\]\.image: required$/),
      ]),
    );
    expect(found).toHaveLength(3);
  });

  test('an unknown check kind lists the known ones', () => {
    const found = problems(minimal.replace('kind: port', 'kind: telepathy'));
    expect(found).toHaveLength(1);
    expect(found[0]).toMatch(/checks\[1\]\.kind: unknown check kind "telepathy"; known: command, file, service/);
  });

  test('dangling references: machine, prerequisite, competency, network, variable', () => {
    const text = minimal
      .replace('    machine: pc\n    kind: port', '    machine: serveur\n    kind: port\n    prerequisites: [nope]')
      .replace('competency: C1', 'competency: C9')
      .replace('    login: { user: technicien }', '    login: { user: technicien }\n    networks: [{ network: wan }]')
      .replace('Réparez le message du jour pour {{ user }}.', 'Réparez pour {{ usr }}.');
    const found = problems(text).join('\n');
    expect(found).toMatch(/checks\[1\]\.machine: unknown machine "serveur"; declared: pc/);
    expect(found).toMatch(/checks\[1\]\.prerequisites\[0\]: unknown check "nope"/);
    expect(found).toMatch(/checks\[0\]\.competency: unknown competency "C9"; declared: C1/);
    expect(found).toMatch(/machines\[0\]\.networks\[0\]\.network: unknown network "wan"/);
    expect(found).toMatch(/sc\.yaml:\d+:\d+ instructions\.fr: unknown variable "usr"/);
  });

  test('the position of an unknown variable points at the placeholder', () => {
    const text = minimal.replace('    run: useradd -m {{ user }}', '    run: useradd -m {{ nobody }}');
    const line = text.split('\n').findIndex((l) => l.includes('{{ nobody }}')) + 1;
    const col = (text.split('\n')[line - 1] as string).indexOf('{{') + 1;
    expect(problems(text)).toEqual([`sc.yaml:${line}:${col} setup[0].run: unknown variable "nobody" (variables: user, code; lab facts like machines.<name>.ip)`]);
  });

  test('prerequisite loops are found', () => {
    const text = minimal
      .replace('    points: 2\n', '    points: 2\n    prerequisites: [sshd]\n')
      .replace('    baseline: pass', '    baseline: pass\n    prerequisites: [motd]');
    expect(problems(text).join('\n')).toMatch(/prerequisites loop: (motd -> sshd -> motd|sshd -> motd -> sshd)/);
  });

  test('unknown images list the known ones', () => {
    expect(problems(minimal, { knownImages: ['workstation', 'server'] })).toEqual([
      expect.stringMatching(/machines\[0\]\.image: unknown image "base"; known: workstation, server$/),
    ]);
  });

  test('a capability that reaches beyond the container is refused, saying why', () => {
    const text = minimal.replace(/(\n    image: [a-z-]+\n)/, '$1    capabilities: [SYS_TIME]\n');
    expect(problems(text).join('\n')).toMatch(/machines\[0\]\.capabilities\[0\]: expected one of "NET_ADMIN", "NET_RAW", "MKNOD", got string "SYS_TIME"/);
  });

  test('a scenario named relative to the current folder finds its files, and is recorded by its absolute path', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'examlab-load-'));
    mkdirSync(join(dir, 'files'));
    writeFileSync(join(dir, 'files', 'a.txt'), 'a');
    writeFileSync(join(dir, 'sc.yaml'), minimal.replace('    run: useradd -m {{ user }}', '    upload: files/a.txt\n    to: /tmp/a.txt'));
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const loaded = await loadScenarioFile('sc.yaml');
      expect(loaded.file).toBe(join(dir, 'sc.yaml'));
      expect(loaded.scenario.setup[0]?.upload).toBe('files/a.txt');
    } finally {
      process.chdir(cwd);
    }
  });

  test('uploads come from the scenario\'s folder only', () => {
    for (const path of ['/etc/shadow', '../../etc/shadow', 'files/../../x']) {
      const text = minimal.replace('    run: useradd -m {{ user }}', `    upload: ${path}\n    to: /tmp/x`);
      expect(problems(text).join('\n')).toMatch(/setup\[0\]\.upload: a path inside the scenario's folder/);
    }
    expect(problems(minimal.replace('    run: useradd -m {{ user }}', '    upload: files/./a.txt\n    to: /tmp/x'), { baseDir: undefined })).toEqual([]);
  });

  test('an upload is one file: not the folder itself ("" or "."), not a missing one (found by fuzzing)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'examlab-upload-'));
    for (const [path, message] of [['""', /setup\[0\]\.upload: not a file: .* copies one file/], ['.', /setup\[0\]\.upload: not a file/], ['"a\\0b"', /setup\[0\]\.upload: no such file/]] as const) {
      const text = minimal.replace('    run: useradd -m {{ user }}', `    upload: ${path}\n    to: /tmp/x`);
      expect(problems(text, { baseDir: dir }).join('\n')).toMatch(message);
    }
    rmSync(dir, { recursive: true });
  });

    test('a step needs exactly one action', () => {
    const found = problems(minimal.replace('    run: useradd -m {{ user }}', '    run: useradd -m {{ user }}\n    upload: x.tar\n    to: /tmp/x.tar'));
    expect(found.join('\n')).toMatch(/setup\[0\]: a step needs exactly one of run, file, upload/);
  });

  test('kind rules across fields are enforced', () => {
    const text = minimal.replace('    kind: port\n    port: 22\n', '    kind: reachable\n    to: pc\n');
    expect(problems(text).join('\n')).toMatch(/checks\[1\]: give exactly one of `port` or `ping: true`/);
  });

  test('instructions in the scenario language are required', () => {
    const text = minimal.replace('  fr: |\n    Réparez le message du jour pour {{ user }}.', '  en: Fix it.');
    expect(problems(text).join('\n')).toMatch(/instructions: instructions in the scenario's language \("fr"\) are required/);
  });
});
