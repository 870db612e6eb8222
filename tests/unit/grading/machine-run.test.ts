import tar from 'tar-stream';
import { buildScripts, fragmentRuns, readReport, type MachineFragment } from '../../../src/grading/machine-run.js';

const fragments: MachineFragment[] = [
  { id: 'a', fragment: 'echo a', timeoutMs: 10_000 },
  { id: 'b', fragment: 'echo b', timeoutMs: 2_500 },
];

/** The archive the runner sends back: out.N and err.N per check. */
async function archive(files: Record<string, string>): Promise<string> {
  const pack = tar.pack();
  for (const [name, content] of Object.entries(files)) pack.entry({ name }, content);
  pack.finalize();
  const chunks: Buffer[] = [];
  for await (const chunk of pack) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('base64');
}

describe('one round trip per machine', () => {
  test('each check becomes a function, run under its own timeout', () => {
    const { checks, runner } = buildScripts(fragments, 'n0nce');
    expect(checks).toContain('check_0() {\necho a\n}');
    expect(runner).toContain('run_check 0 10');
    expect(runner).toContain('run_check 1 3');
    expect(runner).toContain('tar -c -C "$D/o" .');
  });

  test('results are read back by index; outputs come from the archive', async () => {
    const stdout = [
      '@@n0nce hash busybox abc',
      '@@n0nce check 0 0 120',
      'noise a candidate printed',
      '@@n0nce check 1 137 3000',
      `@@n0nce outputs ${await archive({ './out.0': 'hello\n', './err.0': '', './f.0.stat': 'x', './out.1': '', './err.1': '' })}`,
    ].join('\n');
    const report = await readReport(stdout, 'n0nce');
    expect(report.hashes.get('busybox')).toBe('abc');
    const runs = fragmentRuns(report, fragments);
    expect(runs[0]).toEqual({ output: { exitCode: 0, stdout: 'hello\n', stderr: '', facts: new Map([['stat', 'x']]) }, durationMs: 120 });
    expect(runs[1]?.problem).toBe('timed out after 2.5 s');
  });

  test('a command that exits 137 before its limit is a result, not a timeout', async () => {
    const stdout = `@@n0nce check 1 137 40\n@@n0nce outputs ${await archive({ 'out.1': '', 'err.1': 'Killed\n' })}`;
    expect(fragmentRuns(await readReport(stdout, 'n0nce'), fragments)[1]?.output?.exitCode).toBe(137);
  });

  test('a missing line, or a forged duplicate, makes the check undecidable rather than trusted', async () => {
    const line = '@@n0nce check 0 0 1';
    const runs = fragmentRuns(await readReport(`${line}\n${line}`, 'n0nce'), fragments);
    expect(runs[0]?.problem).toMatch(/conflicting/);
    expect(runs[1]?.problem).toMatch(/no result/);
  });
});
