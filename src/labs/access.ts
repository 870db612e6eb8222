import { errorMessage } from '../util/errors.js';
import type { GradingAccess } from '../grading/index.js';
import { SshSession, type SshTarget } from '../remote/index.js';
import type { LabRecord } from './lab-store.js';

/** How the grader reaches the machines of one lab: root with the lab's grader key, host keys pinned. */
export function labAccess(lab: LabRecord): GradingAccess {
  const machines = lab.topology?.machines ?? [];
  const byName = new Map(machines.map((m) => [m.name, m]));
  const sshTarget = (machine: string): SshTarget | undefined => {
    const m = byName.get(machine);
    if (!m) return undefined;
    return { host: m.address, username: 'root', privateKey: lab.secrets.graderPrivateKey, hostKey: m.hostKey, agentSocket: m.console?.agent };
  };
  return {
    sshTarget,
    addressOf(machine, from) {
      const target = byName.get(machine);
      if (!target) return undefined;
      const origin = from ? byName.get(from) : undefined;
      if (!origin) return target.address;
      // An address on a network both machines are on, so the check tests a path that exists.
      const shared = Object.keys(target.addresses).find((n) => n in origin.addresses);
      return shared ? target.addresses[shared] : target.address;
    },
    async trySshLogin(machine, user, password, timeoutMs) {
      const m = byName.get(machine);
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
    },
  };
}

/** The lab's SSH target for `machine`, which must exist. */
export function requireTarget(lab: LabRecord, machine: string): SshTarget {
  const target = labAccess(lab).sshTarget(machine);
  if (!target) throw new Error(`lab ${lab.id} has no machine ${machine}`);
  return target;
}
