import { readFile, realpath } from 'node:fs/promises';
import { join, dirname, sep } from 'node:path';
import { ExamlabError, errorMessage } from '../util/errors.js';
import type { Step } from '../scenario/index.js';
import { powershellCommand, powershellWriteStdin, type ExecResult, type MachineSession } from '../remote/index.js';
import { shq } from '../util/shell.js';

/** A setup, fault or solution step that did not work: names the step, the machine and what it said. */
export class StepError extends ExamlabError {}

export type StepSection = 'setup' | 'faults' | 'solution';

/** The lab's machines as steps reach them: a root session, a reboot. */
export interface StepMachines {
  open(machine: string, timeoutMs: number): Promise<MachineSession>;
  reboot(machine: string, timeoutMs: number): Promise<string>;
}

/**
 * Runs steps in order, each as root on its machine. Scripts run with
 * `sh -e`, so the first failing command stops the step.
 */
export async function runSteps(
  section: StepSection,
  steps: readonly Step[],
  machines: StepMachines,
  scenarioDir: string,
  /** Windows guests run their steps with PowerShell. */
  shellOf: (machine: string) => 'sh' | 'powershell' = () => 'sh',
): Promise<void> {
  for (const [index, step] of steps.entries()) {
    const label = `${section}[${index}]${step.id ? ` (${step.id})` : ''} on ${step.machine}`;
    if (step.reboot) {
      try {
        await machines.reboot(step.machine, step.timeout);
      } catch (err) {
        throw new StepError(`${label}: ${errorMessage(err)}`);
      }
      continue;
    }
    const { command, stdin } = await stepCommand(step, scenarioDir, shellOf(step.machine));
    let result: ExecResult;
    try {
      const session = await machines.open(step.machine, 15_000);
      try {
        result = await session.exec(command, { stdin, timeoutMs: step.timeout });
      } finally {
        session.close();
      }
    } catch (err) {
      throw new StepError(`${label}: ${errorMessage(err)}`);
    }
    if (result.exitCode !== 0) {
      const output = (result.stderr.trim() || result.stdout.trim()).split('\n').slice(-15).join('\n');
      throw new StepError(`${label} exited ${result.exitCode}${output ? `:\n${output}` : ''}`);
    }
  }
}

async function stepCommand(step: Step, scenarioDir: string, shell: 'sh' | 'powershell'): Promise<{ command: string; stdin?: string | Buffer }> {
  if (step.run !== undefined) {
    // PowerShell stops at the first error only when told to, as sh -e does.
    if (shell === 'powershell') return { command: powershellCommand(`$ErrorActionPreference = 'Stop'\n${step.run}`) };
    return { command: '/bin/sh -e -s', stdin: step.run };
  }
  const path = (step.file ?? step.to) as string;
  let content: string | Buffer;
  if (step.upload !== undefined) {
    const source = join(scenarioDir, step.upload);
    try {
      // The file itself, symbolic links followed, must be in the scenario's folder.
      const [base, real] = await Promise.all([realpath(scenarioDir), realpath(source)]);
      if (!real.startsWith(base + sep)) throw new StepError(`upload ${step.upload} leads outside the scenario's folder (to ${real})`);
      content = await readFile(real);
    } catch (err) {
      if (err instanceof StepError) throw err;
      throw new StepError(`cannot read ${source} for upload: ${errorMessage(err)}`);
    }
  } else {
    content = step.content ?? '';
  }
  if (shell === 'powershell') return { command: powershellWriteStdin(path), stdin: content };
  const parts = [`mkdir -p ${shq(dirname(path))}`, `cat > ${shq(path)}`];
  if (step.mode) parts.push(`chmod ${step.mode} ${shq(path)}`);
  if (step.owner) parts.push(`chown ${shq(step.owner)} ${shq(path)}`);
  return { command: parts.join(' && '), stdin: content };
}
