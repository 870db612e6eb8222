import type { ScriptOutput } from '../checks/index.js';
import { powershellCommand, type MachineSession } from '../remote/index.js';
import { TimeoutError, errorMessage } from '../util/errors.js';

/**
 * The grading round trip of a Windows guest: its `command` checks, each a
 * PowerShell script run over one session. No probe: the grader's static
 * tools are Linux programs, so the other check kinds do not apply.
 */
export async function runPowershellScripts(session: MachineSession, scripts: readonly { text: string; timeoutMs: number }[]): Promise<(ScriptOutput | { problem: string })[]> {
  const outputs: (ScriptOutput | { problem: string })[] = [];
  for (const script of scripts) {
    try {
      const { exitCode, stdout, stderr } = await session.exec(powershellCommand(script.text), { timeoutMs: script.timeoutMs, maxOutputBytes: 1 << 20 });
      outputs.push({ exitCode, stdout, stderr });
    } catch (err) {
      if (!(err instanceof TimeoutError)) throw err;
      outputs.push({ problem: `timed out after ${script.timeoutMs / 1000} s (${errorMessage(err)})` });
    }
  }
  return outputs;
}
