import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../../src/daemon/config.js';
import { match } from '../../../src/checks/matchers.js';
import { applyDraw, everyOption, findPlaceholders, loadScenarioFile, parseScenario, renderDeep, renderScenario, renderText, resolveVariables, ScenarioLibrary, scenarioWarnings, type Scenario } from '../../../src/scenario/index.js';
import { InputError } from '../../../src/util/errors.js';
import { ExamHarness } from '../../fakes/exam-harness.js';
import { flagScenario } from '../../fakes/flag-scenarios.js';

/** Roster names a hostile or unlucky candidate could have. */
const HOSTILE = [
  "Zoé N'Diaye",
  "'; touch PWNED; '",
  '$(touch PWNED)',
  '`touch PWNED`',
  '"; touch PWNED; "',
  '\\"; touch PWNED; #',
  '${PWNED:=x}$(touch PWNED)',
  '.*',
  '-n',
  '*',
  ' spaces  inside ',
  '#not a comment',
  '',
];

/** Runs a shell script in an empty folder: what it printed, and whether it created anything. */
function run(shell: string, script: string): { out: string; created: boolean } {
  const dir = mkdtempSync(join(tmpdir(), 'examlab-tpl-'));
  try {
    const out = execFileSync(shell, ['-c', script], { cwd: dir, encoding: 'utf8', env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
    return { out, created: existsSync(join(dir, 'PWNED')) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Every quoting a trainer may write around a placeholder, each printing the value on a line. */
const SCRIPT = [
  `printf '%s\\n' {{ candidate.name }}`,
  `printf '%s\\n' pre{{ candidate.name }}post`,
  `printf '%s\\n' '{{ candidate.name }}'`,
  `printf '%s\\n' "Bonjour {{ candidate.name }} !"`,
  `printf '%s\\n' "$(printf '%s' {{ candidate.name }})"`,
  `printf '%s\\n' "$(printf '%s' "{{ candidate.name }}")"`,
  `x=$(printf '%s' '{{ candidate.name }}'); printf '%s\\n' "$x"`,
  `cat <<EOF`,
  `{{ candidate.name }}`,
  `EOF`,
  `cat <<'EOF'`,
  `{{ candidate.name }}`,
  `EOF`,
  `cat <<-"END" # {{ candidate.name }}`,
  `\t{{ candidate.name }}`,
  `\tEND`,
  `# {{ candidate.name }}`,
  `( printf '%s\\n' {{ candidate.name }} )`,
].join('\n');
const LINES = 11; // printed lines (the comment prints none)

/** Whether a value, alone at the start of one of SCRIPT's here-document lines, starts like its end (EOF, END) and then goes on with non-ASCII. */
function dashMangles(value: string): boolean {
  return ['EOF', 'END'].some((delim) => {
    const differs = [...delim].findIndex((c, k) => value[k] !== c);
    const same = differs === -1 ? delim.length : differs;
    return same > 0 && (value.codePointAt(same) ?? 0) >= 0x80;
  });
}

describe('template values in shell scripts', () => {
  test.each(HOSTILE.map((name) => [name]))('%j is printed verbatim by sh and bash in every quoting, and runs nothing', (name) => {
    const script = renderText(SCRIPT, new Map([['candidate.name', name]]), 'sh', 'setup[0].run');
    for (const shell of ['sh', 'bash']) {
      const { out, created } = run(shell, script);
      expect(created).toBe(false);
      expect(out.split('\n').slice(0, -1)).toEqual([name, `pre${name}post`, name, `Bonjour ${name} !`, ...Array(LINES - 4).fill(name)]);
    }
  });

  test('any value without a control character is printed verbatim and runs nothing (fuzzed)', () => {
    const shellish = fc.constantFrom(...`'"\\$\`;&|<>(){}[]*?~#!= \t-._éN`.split(''));
    const value = fc.oneof(fc.string({ unit: shellish, maxLength: 24 }), fc.string({ unit: 'grapheme', maxLength: 16 })).filter((v) => !/[\p{Cc}]/u.test(v));
    fc.assert(
      fc.property(value, (name) => {
        // Refused where dash would mangle it (see below): only a value that starts like a here-document's end, then non-ASCII.
        if (dashMangles(name)) return expect(() => renderText(SCRIPT, new Map([['candidate.name', name]]), 'sh')).toThrow(/dash/);
        const { out, created } = run('sh', renderText(SCRIPT, new Map([['candidate.name', name]]), 'sh'));
        expect(created).toBe(false);
        expect(out.split('\n').slice(0, -1)).toEqual([name, `pre${name}post`, name, `Bonjour ${name} !`, ...Array(LINES - 4).fill(name)]);
      }),
      { numRuns: Number(process.env.EXAMLAB_FUZZ_RUNS) || 150 },
    );
  }, 600_000);

  test('a value that would start a here-document line like its end, then go on with non-ASCII, is refused: dash drops a byte of it', () => {
    // Debian's /bin/sh (dash 0.5.12) reads "E" + "\u0327" under <<EOF as "E" and a stray byte, whatever the quoting.
    const raw = renderDeep("cat <<'EOF'\n{{ v }}\nEOF", new Map([['v', 'E\u0327']]));
    expect(run('sh', raw).out).not.toBe('E\u0327\n');
    for (const [script, value] of [
      ["cat <<'EOF'\n{{ v }}\nEOF", 'E\u0327'],
      ['cat <<EOF\n{{ v }}\nEOF', 'Eşref'],
      ['cat <<-END\n\t{{ v }}\nEND', 'ENDé'],
    ] as const) {
      expect(() => renderText(script, new Map([['v', value]]), 'sh', 'setup[0].run')).toThrow(/setup\[0\]\.run: \{\{ v \}\} is ".*", which would start its line with "E.*" .*dash \(Debian's \/bin\/sh\) drops a byte/);
    }
    // Anywhere else on the line it is printed as it is.
    const fine = renderText("cat <<'EOF'\nNom : {{ v }}\nEOF\nprintf '%s\\n' {{ v }}", new Map([['v', 'E\u0327']]), 'sh');
    expect(run('sh', fine).out).toBe('Nom : E\u0327\nE\u0327\n');
  });

  test('without escaping, the same script runs the name (the test can fail)', () => {
    const raw = renderDeep(SCRIPT, new Map([['candidate.name', '$(touch PWNED)']]));
    expect(run('sh', raw).created).toBe(true);
  });

  test('a value made of plain characters is inserted unchanged, whatever the quoting', () => {
    expect(renderText(`a={{ v }} b='{{ v }}' c="{{ v }}"`, new Map([['v', '10.231.0.5']]), 'sh')).toBe(`a=10.231.0.5 b='10.231.0.5' c="10.231.0.5"`);
  });

  test('where a value cannot be quoted it is refused, naming the field and the value', () => {
    const values = new Map([['candidate.name', 'a b']]);
    expect(() => renderText('echo `echo {{ candidate.name }}`', values, 'sh', 'checks[1].run')).toThrow(InputError);
    expect(() => renderText('echo `echo {{ candidate.name }}`', values, 'sh', 'checks[1].run')).toThrow(/checks\[1\]\.run: \{\{ candidate\.name \}\} is "a b".*\$\(…\)/);
    expect(() => renderText('echo \\{{ candidate.name }}', values, 'sh')).toThrow(InputError);
    expect(() => renderText('echo "${UNSET:-{{ candidate.name }}}"', values, 'sh')).toThrow(/inside \$\{…\}/);
    expect(() => renderText('cat <<EOF\n{{ v }}\nEOF', new Map([['v', 'x\nEOF\ntouch PWNED']]), 'sh')).toThrow(/here-document/);
    // A name that is the delimiter (or completes it) would end the document early: what follows would run.
    expect(() => renderText('cat <<EOF\n{{ v }}\n$(touch PWNED)\nEOF', new Map([['v', 'EOF']]), 'sh')).toThrow(/"EOF", the end of the here-document/);
    expect(() => renderText("cat <<-'EOF'\n\tE{{ v }}\nEOF", new Map([['v', 'OF']]), 'sh')).toThrow(/here-document/);
    expect(renderText('cat <<EOF\n{{ v }}\nEOF', new Map([['v', 'EOF2']]), 'sh')).toBe('cat <<EOF\nEOF2\nEOF');
  });
});

describe('template values in PowerShell scripts', () => {
  const values = (v: string) => new Map([['candidate.name', v]]);
  test.each([
    ["Zoé N'Diaye", `Write-Output 'Zoé N''Diaye'`],
    ['$(Remove-Item C:\\)', `Write-Output '$(Remove-Item C:\\)'`],
    ['x’; calc; ’', `Write-Output 'x’’; calc; ’’'`],
  ])('%j outside quotes is one single-quoted string', (name, expected) => {
    expect(renderText('Write-Output {{ candidate.name }}', values(name), 'powershell')).toBe(expected);
  });
  test('inside "…" the value is escaped with backticks, inside \'…\' its quotes are doubled', () => {
    expect(renderText('Write-Output "Hi {{ candidate.name }}"', values('$env:X "`'), 'powershell')).toBe('Write-Output "Hi `$env:X `"``"');
    expect(renderText("Write-Output 'Hi {{ candidate.name }}'", values("O'Neil"), 'powershell')).toBe("Write-Output 'Hi O''Neil'");
  });
});

describe('template values in regular expressions and paths', () => {
  test.each([['.*'], ['a+b'], ['(x|y)'], ['[ab]'], ['^$'], ['Zoé N\'Diaye'], ['\\d']])('%j in `matches` matches itself and nothing wider', (name) => {
    const scenario = oneCheck({ kind: 'command', run: 'true', stdout: { matches: '^Hello {{ candidate.name }}$' } });
    const rendered = renderScenario(scenario, new Map([['candidate.name', name]]));
    const source = (rendered.checks[0]?.stdout as { matches: string }).matches;
    expect(match({ matches: source }, `Hello ${name}`).pass).toBe(true);
    expect(match({ matches: source }, 'Hello someone else entirely').pass).toBe(false);
    expect(match({ matches: source }, 'Hello ').pass).toBe(false);
  });

  test('without escaping, ".*" would match anyone (the test can fail)', () => {
    expect(match({ matches: renderDeep('^Hello {{ n }}$', new Map([['n', '.*']])) }, 'Hello someone else').pass).toBe(true);
  });

  test.each([['..'], ['.'], ['../../etc'], ['a/b'], ['']])('%j cannot be part of a path', (name) => {
    const scenario = oneCheck({ kind: 'file', path: '/home/{{ candidate.name }}/notes.txt', exists: true });
    expect(() => renderScenario(scenario, new Map([['candidate.name', name]]))).toThrow(/checks\[0\]\.path: \{\{ candidate\.name \}\} is .*(path|file name)/);
  });

  test('paths of steps and tmpfs are paths too; a file name with spaces or quotes is fine', () => {
    const scenario = oneCheck({ kind: 'file', path: '/home/{{ candidate.name }}', exists: true });
    scenario.setup = [{ machine: 'pc', file: '/srv/{{ candidate.name }}.txt', content: 'x', timeout: 60_000 } as Scenario['setup'][number]];
    expect(() => renderScenario(scenario, new Map([['candidate.name', '../x']]))).toThrow(/setup\[0\]\.file/);
    const ok = renderScenario(scenario, new Map([['candidate.name', "Zoé N'Diaye"]]));
    expect(ok.setup[0]?.file).toBe("/srv/Zoé N'Diaye.txt");
  });

  test('a templated field with a shape (user, unit, DNS name, URL) keeps it once rendered', () => {
    const user = oneCheck({ kind: 'user', name: '{{ candidate.name }}', exists: true });
    expect(() => renderScenario(user, new Map([['candidate.name', 'root:x:0:0']]))).toThrow(/checks\[0\]\.name: "\{\{ candidate\.name \}\}" gives "root:x:0:0" .*not a valid user name/);
    expect(renderScenario(user, new Map([['candidate.name', 'zoe']])).checks[0]?.name).toBe('zoe');
    const dns = oneCheck({ kind: 'dns', name: 'pc-{{ candidate.name }}.lan', addresses: { contains: '10.0.0.1' } });
    expect(() => renderScenario(dns, new Map([['candidate.name', 'a b']]))).toThrow(/not a valid DNS name/);
    const named = oneCheck({ kind: 'file', path: '/etc/hostname', exists: true });
    (named.machines[0] as { hostname?: string }).hostname = 'pc-{{ candidate.name }}';
    expect(() => renderScenario(named, new Map([['candidate.name', 'Zoé']]))).toThrow(/machines\[0\]\.hostname: .* not a host name/);
    expect(renderScenario(named, new Map([['candidate.name', 'zoe-2']])).machines[0]?.hostname).toBe('pc-zoe-2');
    const http = oneCheck({ kind: 'http', url: 'http://srv/{{ candidate.name }}', from: 'grader' });
    expect(() => renderScenario(http, new Map([['candidate.name', "Zoé N'Diaye"]]))).toThrow(/must be an http/);
  });

  test('a run step and a command check are shell, instructions are text', () => {
    const scenario = oneCheck({ kind: 'command', run: 'echo {{ candidate.name }}', stdout: { contains: '{{ candidate.name }}' } });
    scenario.setup = [{ machine: 'pc', run: 'echo {{ candidate.name }}', timeout: 60_000 } as Scenario['setup'][number]];
    scenario.instructions = { fr: 'Bonjour {{ candidate.name }}' };
    const r = renderScenario(scenario, new Map([['candidate.name', '$(id)']]));
    expect(r.setup[0]?.run).toBe("echo '$(id)'");
    expect(r.checks[0]?.run).toBe("echo '$(id)'");
    expect(r.checks[0]?.stdout).toEqual({ contains: '$(id)' });
    expect(r.instructions.fr).toBe('Bonjour $(id)');
  });
});

describe('a roster the scenario cannot place', () => {
  test('is refused when the exam is created or its roster replaced, naming the candidate, the field and the value', async () => {
    const h = ExamHarness.create();
    try {
      const yaml = flagScenario().replace('checks:\n', 'checks:\n  - { id: notes, title: notes, machine: pc, kind: file, path: "/home/{{ candidate.name }}/notes", points: 0, baseline: any }\n');
      const roster = [{ id: 'a1', name: 'Ana Lima' }, { id: 'b2', name: 'AC/DC' }];
      const created = h.service.create({ scenario: { yaml }, roster, start: { policy: 'manual' }, autoFreeze: true, keepLabs: true, mode: 'exam' }, 'operator');
      await expect(created).rejects.toThrow(InputError);
      await expect(created).rejects.toMatchObject({ details: [{ where: 'candidates[1] name', message: expect.stringMatching(/checks\[\d+\]\.path: \{\{ candidate\.name \}\} is "AC\/DC"/) }] });
      const { exam } = await h.createExam(yaml, ['a1']);
      expect(() => h.service.setRoster(exam.id, roster, 'operator')).toThrow(/cannot use one entry/);
      expect(h.service.setRoster(exam.id, [roster[0] as { id: string; name: string }], 'operator')).toHaveLength(1);
    } finally {
      h.db.close();
    }
  });

  test('`scenario validate` warns, at the line, where an ordinary name could not be placed', () => {
    const yaml = flagScenario().replace('setup:\n', 'setup:\n  - machine: pc\n    run: echo `echo {{ candidate.name }}`\n');
    const warnings = scenarioWarnings({ scenario: parseScenario(yaml, 'w.yaml'), file: 'w.yaml', text: yaml });
    expect(warnings).toContainEqual({ where: expect.stringMatching(/^w\.yaml:\d+:\d+ setup\[0\]\.run$/), message: expect.stringMatching(/roster .* cannot be placed here.*inside `…`/) });
    expect(scenarioWarnings({ scenario: parseScenario(flagScenario(), 'w.yaml'), file: 'w.yaml', text: flagScenario() }).filter((w) => /roster/.test(w.message))).toEqual([]);
  });
});

/** Every shipped scenario, with every draw of its faults. */
const files = [...new ScenarioLibrary([join(PACKAGE_ROOT, 'scenarios')]).list().map((e) => e.file), join(PACKAGE_ROOT, 'scenarios', 'template', 'scenario.yaml')];

describe('the shipped scenarios render as before', () => {
  test.each(files.map((f) => [f.slice(PACKAGE_ROOT.length + 1), f]))('%s: scripts and paths byte for byte, regular expressions as literals', async (_name, file) => {
    const loaded = await loadScenarioFile(file);
    for (const draw of everyOption(loaded.scenario.faultPools)) {
      const scenario = applyDraw(loaded.scenario, draw);
      const values = new Map(resolveVariables(scenario.variables, 'seed'));
      for (const { name } of findPlaceholders(loaded.text)) if (!values.has(name)) values.set(name, name.endsWith('ip') ? '10.231.7.5' : name.endsWith('prefix') ? '10.231.7' : name.endsWith('subnet') ? '10.231.7.0/24' : `${name.split('.').pop()}-x`);
      const before = renderDeep(scenario, values);
      const after = renderScenario(scenario, values);
      // Only regular expressions may differ, and only by escaping the values' dots.
      expect(stripMatches(after)).toEqual(stripMatches(before));
      const regexes = (s: unknown) => JSON.stringify(s).match(/"matches":"(?:[^"\\]|\\.)*"/g) ?? [];
      regexes(after).forEach((r, i) => expect(r.replace(/\\\\\./g, '.')).toBe((regexes(before)[i] as string).replace(/\\\\\./g, '.')));
    }
  });
});

function stripMatches(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, (k, v: unknown) => (k === 'matches' ? '(regex)' : v)));
}

function oneCheck(check: Record<string, unknown>): Scenario {
  return {
    machines: [{ name: 'pc', shell: 'sh', tmpfs: [] }],
    setup: [],
    faults: [],
    solution: [],
    faultPools: [],
    instructions: {},
    checks: [{ id: 'c', title: 'c', machine: 'pc', ...check }],
  } as unknown as Scenario;
}
