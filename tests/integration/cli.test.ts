import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from '@jest/globals';
import { PACKAGE_ROOT } from '../../src/daemon/config.js';

/** Runs the built `examlab` binary; `make test` builds it first. */
function examlab(args: string[], dataDir: string): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(PACKAGE_ROOT, 'dist/cli/bin.js'), '--data', dataDir, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }));
  });
}

const dir = mkdtempSync(join(tmpdir(), 'examlab-cli-'));
const data = join(dir, 'data');
const scenario = join(dir, 'tiny.yaml');
writeFileSync(
  scenario,
  `apiVersion: examlab/v1
id: tiny
title: Tiny
ccp: CCP1
competencies: [{ id: C, title: c }]
duration: 10m
instructions: { fr: Créez le fichier /etc/ok. }
machines:
  - { name: box, image: base, login: { user: technicien } }
faults:
  - { machine: box, run: rm -f /etc/ok }
solution:
  - { machine: box, run: touch /etc/ok }
checks:
  - { id: ok, title: Le fichier existe, machine: box, kind: file, path: /etc/ok, competency: C }
`,
);
// The same scenario with a reference solution that repairs nothing.
const unsolved = join(dir, 'unsolved.yaml');
writeFileSync(unsolved, readFileSync(scenario, 'utf8').replace('run: touch /etc/ok', 'run: "true"'));
const invalid = join(dir, 'invalid.yaml');
writeFileSync(invalid, 'apiVersion: examlab/v1\nid: Bad Id\ntitle: x\n');

afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('the examlab command', () => {
  test.each([[[]], [['scenario']], [['scenario', 'validate']], [['scenario', 'test']], [['scenario', 'new']], [['lab', 'up']], [['lab', 'ls']], [['lab', 'show']], [['lab', 'grade']], [['lab', 'down']], [['images', 'build']], [['demo']]])(
    '%j --help',
    async (words) => {
      const { code, stdout } = await examlab([...words, '--help'], data);
      expect(code).toBe(0);
      expect(stdout).toMatch(/^Usage: examlab/m);
    },
  );

  test('usage errors exit 2', async () => {
    expect((await examlab(['frobnicate'], data)).code).toBe(2);
    expect((await examlab(['lab', 'grade'], data)).code).toBe(2);
  }, 30_000);

  test('validate: 0 when valid, 1 with every located problem when not', async () => {
    const ok = await examlab(['scenario', 'validate', scenario], data);
    expect(ok).toMatchObject({ code: 0, stdout: `${scenario}: ok\n` });
    const bad = await examlab(['scenario', 'validate', invalid], data);
    expect(bad.code).toBe(1);
    const lines = bad.stdout.trim().split('\n');
    expect(lines).toContain(`${invalid}:2:5 id: use lowercase letters, digits, ".", "_" or "-" (starting with a letter or digit)`);
    expect(lines).toContain(`${invalid}:1:1 ccp: required: one of "CCP1", "CCP2", "CCP3"`);
    expect(lines.length).toBeGreaterThanOrEqual(5);
    const json = JSON.parse((await examlab(['scenario', 'validate', '--json', invalid, scenario], data)).stdout);
    expect(json.map((r: { ok: boolean }) => r.ok)).toEqual([false, true]);
  }, 60_000);

  test('an unknown lab is a usage error that says so', async () => {
    const result = await examlab(['lab', 'grade', 'nope'], data);
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('no lab nope');
  }, 30_000);

  test('lab up, ls, grade, down', async () => {
    const up = await examlab(['lab', 'up', scenario, '--candidate', 'alice', '--json'], data);
    expect(up.code).toBe(0);
    const lab = JSON.parse(up.stdout);
    expect(lab).toMatchObject({ scenario: 'tiny', candidate: 'alice', state: 'ready' });
    expect(lab.machines[0]).toMatchObject({ name: 'box', loginUser: 'technicien' });

    const show = await examlab(['lab', 'show', lab.id], data);
    expect(show.code).toBe(0);
    expect(show.stdout).toContain(`lab ${lab.id} (tiny) is ready`);
    expect(show.stdout).toMatch(/technicien@10\.231\.\d+\.\d+/);
    expect(show.stdout).toContain('Créez le fichier /etc/ok.');

    const ls = JSON.parse((await examlab(['lab', 'ls', '--json'], data)).stdout);
    expect(ls.map((l: { id: string }) => l.id)).toContain(lab.id);

    const graded = await examlab(['lab', 'grade', lab.id, '--json'], data);
    expect(graded.code).toBe(1); // the fault removed the file: under the pass mark
    const run = JSON.parse(graded.stdout);
    expect(run.results[0]).toMatchObject({ checkId: 'ok', status: 'fail' });
    expect(run.score.byCompetency[0]).toMatchObject({ id: 'C', points: 0, maxPoints: 1 });

    const table = await examlab(['lab', 'grade', lab.id], data);
    expect(table.stdout).toMatch(/^FAIL\s+0\/1\s+ok\s+box\s+Le fichier existe$/m);
    expect(table.stdout).toMatch(/Total: 0\/1 \(0%\), pass mark 50%: NOT PASSED/);

    const down = await examlab(['lab', 'down', lab.id], data);
    expect(down).toMatchObject({ code: 0, stdout: `lab ${lab.id} destroyed\n` });
    const again = await examlab(['lab', 'grade', lab.id], data);
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/is destroyed/);
  }, 120_000);

  test('scenario test --keep: a failed test leaves its lab up and says how to get in', async () => {
    const failed = await examlab(['scenario', 'test', unsolved, '--keep'], data);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toContain('solved state: check ok is fail');
    expect(failed.stdout).toContain('the lab is kept, as the solution left it:');
    expect(failed.stdout).toMatch(/technicien@10\.231\.\d+\.\d+/);
    const id = /remove it with: examlab lab down (\w+)/.exec(failed.stdout)?.[1] as string;
    const graded = JSON.parse((await examlab(['lab', 'grade', id, '--json'], data)).stdout);
    expect(graded.results[0]).toMatchObject({ checkId: 'ok', status: 'fail' });
    expect((await examlab(['lab', 'down', id], data)).code).toBe(0);
    // Without --keep, nothing is left.
    const before = JSON.parse((await examlab(['lab', 'ls', '--json'], data)).stdout).length;
    expect((await examlab(['scenario', 'test', unsolved], data)).code).toBe(1);
    expect(JSON.parse((await examlab(['lab', 'ls', '--json'], data)).stdout)).toHaveLength(before);
  }, 180_000);

  test('scenario new: a trainer\'s folder, outside the checkout, with an image of its own, that passes its own test', async () => {
    const folder = join(dir, 'formations', 'intranet-accueil');
    const made = await examlab(['scenario', 'new', folder], data);
    expect(made.code).toBe(0);
    const file = join(folder, 'intranet-accueil.yaml');
    expect(made.stdout).toContain(`${file}: new scenario`);
    expect(readFileSync(file, 'utf8')).toMatch(/\nid: intranet-accueil\n/);
    // The folder's own image is known to its scenarios, and only to them.
    const images = JSON.parse((await examlab(['images', 'ls', '--json', '--scenario', file], data)).stdout) as { name: string }[];
    expect(images.map((i) => i.name)).toContain('poste-accueil');
    expect((JSON.parse((await examlab(['images', 'ls', '--json'], data)).stdout) as { name: string }[]).map((i) => i.name)).not.toContain('poste-accueil');
    expect((await examlab(['scenario', 'validate', file], data)).stdout).toContain(`${file}: ok`);
    const proved = await examlab(['scenario', 'test', file], data);
    expect(proved.stdout).toContain(`${file}: scenario test passed`);
    expect(proved.code).toBe(0);
    // A folder that holds something is never written into.
    const again = await examlab(['scenario', 'new', folder], data);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain(`${folder} is not empty`);
  }, 300_000);

  test('lab up --fault names a pool and option that do not exist', async () => {
    const pooled = join(dir, 'pooled.yaml');
    writeFileSync(
      pooled,
      `${readFileSync(scenario, 'utf8')}faultPools:
  - id: panne
    title: Panne
    options:
      - { id: a, title: A, steps: [{ machine: box, run: "true" }] }
      - { id: b, title: B, steps: [{ machine: box, run: "true" }] }
`,
    );
    const pool = await examlab(['lab', 'up', pooled, '--fault', 'disque=a'], data);
    expect(pool.stderr).toContain('--fault disque=a: no fault pool "disque"; pools: panne');
    const option = await examlab(['lab', 'up', pooled, '--fault', 'panne=c'], data);
    expect(option.stderr).toContain('--fault panne=c: pool "panne" has no option "c"; options: a, b');
    expect([pool.code, option.code]).toEqual([1, 1]);
  }, 60_000);
});
