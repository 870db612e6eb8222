import type { GradingAccess, Toolbox } from '../grading/index.js';
import { runOnMachine, runPowershellChecks } from '../grading/index.js';
import { openMachineSession, SshSession, withMachineSession, type SshTarget } from '../remote/index.js';
import { errorMessage } from '../util/errors.js';
import { retryUntil } from '../util/retry.js';
import type { LabRecord } from './lab-store.js';
import type { MachineAccess } from './machine-access.js';
import { rebootMachine } from './reboot.js';

/**
 * Machines reached over SSH as root with the lab's grader key (host keys
 * pinned once learnt), or through a VM's guest agent when SSH does not answer.
 */
export class SshMachineAccess implements MachineAccess {
  constructor(private readonly toolbox: () => Promise<Toolbox>) {}

  async waitReady(lab: LabRecord, machine: { name: string; address: string }, timeoutMs: number): Promise<string> {
    const session = await retryUntil(
      () => SshSession.connect({ host: machine.address, username: 'root', privateKey: lab.secrets.graderPrivateKey }, 5000),
      () => true,
      { what: `SSH on machine ${machine.name} (${machine.address})`, timeoutMs, intervalMs: 300 },
    );
    session.close();
    return session.hostKey;
  }

  open(lab: LabRecord, machine: string, timeoutMs: number) {
    return openMachineSession(requireTarget(lab, machine), timeoutMs);
  }

  reboot(lab: LabRecord, machine: string, timeoutMs: number): Promise<string> {
    return rebootMachine(requireTarget(lab, machine), timeoutMs);
  }

  async runChecks(lab: LabRecord, machine: string, fragments: Parameters<MachineAccess['runChecks']>[2], options: { powershell: boolean; connectTimeoutMs: number }) {
    const toolbox = options.powershell ? undefined : await this.toolbox();
    return withMachineSession(requireTarget(lab, machine), options.connectTimeoutMs, (session) =>
      toolbox ? runOnMachine(session, toolbox, fragments) : runPowershellChecks(session, fragments),
    );
  }

  async trySshLogin(lab: LabRecord, machine: string, user: string, password: string, timeoutMs: number): Promise<{ ok: boolean; detail: string }> {
    const m = lab.topology?.machines.find((x) => x.name === machine);
    if (!m) return { ok: false, detail: `no machine ${machine}` };
    try {
      const session = await SshSession.connect({ host: m.address, username: user, password, hostKey: m.hostKey }, timeoutMs);
      session.close();
      return { ok: true, detail: `${user} logged in` };
    } catch (err) {
      const message = errorMessage(err);
      // A refused login is the answer; an unreachable machine is not (the grader cannot decide).
      if (/authentication methods failed/i.test(message)) return { ok: false, detail: `${user} cannot log in (authentication refused)` };
      throw err;
    }
  }
}

/** What the grader may do on one lab: run fragments on its machines, try logins, know addresses. */
export function gradingAccess(lab: LabRecord, machines: MachineAccess): GradingAccess {
  const byName = new Map((lab.topology?.machines ?? []).map((m) => [m.name, m]));
  return {
    runFragments: (machine, fragments, options) => machines.runChecks(lab, machine, fragments, options),
    trySshLogin: (machine, user, password, timeoutMs) => machines.trySshLogin(lab, machine, user, password, timeoutMs),
    addressOf(machine, from) {
      const target = byName.get(machine);
      if (!target) return undefined;
      const origin = from ? byName.get(from) : undefined;
      if (!origin) return target.address;
      // An address on a network both machines are on, so the check tests a path that exists.
      const shared = Object.keys(target.addresses).find((n) => n in origin.addresses);
      return shared ? target.addresses[shared] : target.address;
    },
  };
}

/** Root's SSH target for `machine` of the lab, which must exist: the grader's key, the pinned host key, the guest agent. */
export function requireTarget(lab: LabRecord, machine: string): SshTarget {
  const m = lab.topology?.machines.find((x) => x.name === machine);
  if (!m) throw new Error(`lab ${lab.id} has no machine ${machine}`);
  return { host: m.address, username: 'root', privateKey: lab.secrets.graderPrivateKey, hostKey: m.hostKey, agentSocket: m.console?.agent };
}
