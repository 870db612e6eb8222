import { buildScripts, parseRunOutput, type MachineFragment } from '../../../src/grading/machine-run.js';

const fragments: MachineFragment[] = [
  { id: 'a', fragment: 'echo a', timeoutMs: 10_000 },
  { id: 'b', fragment: 'echo b', timeoutMs: 2_500 },
];
const b64 = (s: string) => Buffer.from(s).toString('base64');

describe('one round trip per machine', () => {
  test('each check becomes a function, run under its own timeout', () => {
    const { checks, runner } = buildScripts(fragments, 'n0nce');
    expect(checks).toContain('check_0() {\necho a\n}');
    expect(runner).toContain('run_check 0 10');
    expect(runner).toContain('run_check 1 3');
    expect(runner).toContain('@@n0nce');
  });

  test('results are read back by index; timeouts and missing lines are problems', () => {
    const stdout = [
      'toolbox x y',
      `@@n0nce 0 0 120 ${b64('hello\n')} ${b64('')}`,
      'noise a candidate printed',
    ].join('\n');
    const runs = parseRunOutput(stdout, fragments, 'n0nce');
    expect(runs[0]).toEqual({ output: { exitCode: 0, stdout: 'hello\n', stderr: '' }, durationMs: 120 });
    expect(runs[1]?.problem).toMatch(/no result/);
    const timedOut = parseRunOutput(`@@n0nce 1 timeout 2500  `, fragments, 'n0nce');
    expect(timedOut[1]?.problem).toBe('timed out after 2.5 s');
  });

  test('a forged duplicate line makes the check undecidable rather than trusted', () => {
    const line = `@@n0nce 0 0 1 ${b64('x')} `;
    expect(parseRunOutput(`${line}\n${line}`, fragments, 'n0nce')[0]?.problem).toMatch(/conflicting/);
  });
});
