import { powershellCommand, type MachineSession } from '../remote/index.js';
import { TimeoutError, errorMessage } from '../util/errors.js';
import type { FragmentRun, MachineFragment } from './machine-run.js';

/**
 * The grading round trip of a Windows guest: its `command` checks, each a
 * PowerShell script run over one SSH connection. No toolbox: the grader's
 * static tools are Linux programs, so the other check kinds do not apply.
 */
export async function runPowershellChecks(session: MachineSession, fragments: readonly MachineFragment[]): Promise<FragmentRun[]> {
  const runs: FragmentRun[] = [];
  for (const f of fragments) {
    const started = Date.now();
    try {
      const output = await session.exec(powershellCommand(f.fragment), { timeoutMs: f.timeoutMs });
      runs.push({ output: { ...output, facts: new Map() }, durationMs: Date.now() - started });
    } catch (err) {
      if (!(err instanceof TimeoutError)) throw err;
      runs.push({ problem: `timed out after ${f.timeoutMs / 1000} s (${errorMessage(err)})`, durationMs: Date.now() - started });
    }
  }
  return runs;
}
