import { errorMessage } from '../util/errors.js';
import { SshError, SshSession, type ExecOptions, type ExecResult, type SshTarget } from './ssh-client.js';
import { GuestAgentSession } from './guest-agent.js';

/** What steps do on a machine as root: run commands with its shell. */
export interface MachineSession {
  exec(command: string, options: ExecOptions): Promise<ExecResult>;
  close(): void;
}

/** A root session that can also receive files (SSH over SFTP, a VM's guest agent). */
export interface UploadingSession extends MachineSession {
  /** Creates `dirName` (mode 0700, failing if it exists) and writes `files` into it; returns its path. */
  uploadToNewDir(dirName: string, files: readonly { name: string; data: Buffer | string; mode: number }[]): Promise<string>;
}

/**
 * A root session on a machine: SSH, or, when SSH does not answer and the
 * machine is a VM with a guest agent (`agentSocket`), the agent. So a VM
 * with no network (emergency mode, a broken interface) can still be set up,
 * repaired by a solution and graded.
 *
 * A VM whose SSH host key was never pinned (one deployed over the network:
 * examlab never logged in to it, nothing of it existed when its lab was
 * built) is reached through its agent only: whatever answers SSH at its
 * address could be another machine of the lab, the agent's channel cannot.
 */
export async function openMachineSession(target: SshTarget, timeoutMs: number): Promise<UploadingSession> {
  if (target.agentSocket && target.hostKey === undefined) {
    try {
      return await GuestAgentSession.connect(target.agentSocket, Math.min(timeoutMs, 10_000), target.agentStream);
    } catch (agentErr) {
      throw new SshError(`${target.host} is reached only through its guest agent (examlab never pinned an SSH host key for it), which does not answer: ${errorMessage(agentErr)}`);
    }
  }
  try {
    return await SshSession.connect(target, timeoutMs);
  } catch (sshErr) {
    if (!target.agentSocket) throw sshErr;
    try {
      return await GuestAgentSession.connect(target.agentSocket, Math.min(timeoutMs, 10_000), target.agentStream);
    } catch (agentErr) {
      throw new SshError(`${errorMessage(sshErr)}; nor through its guest agent: ${errorMessage(agentErr)}`);
    }
  }
}

/** Opens a session, runs `fn`, always closes. */
export async function withMachineSession<T>(target: SshTarget, timeoutMs: number, fn: (session: MachineSession) => Promise<T>): Promise<T> {
  const session = await openMachineSession(target, timeoutMs);
  try {
    return await fn(session);
  } finally {
    session.close();
  }
}
