import type { FragmentRun, MachineFragment } from '../grading/index.js';
import type { MachineSession } from '../remote/index.js';
import type { LabRecord, LabTopology } from './lab-store.js';

export type PlacedMachine = LabTopology['machines'][number];

/**
 * How the lab logic reaches a lab's machines as root: the one seam between
 * what a lab does (accounts, steps, grading) and the transports that carry
 * it (SSH, a VM's guest agent). Unit tests put an in-memory fake here.
 */
export interface MachineAccess {
  /** Waits until the machine takes root commands; returns its SSH host key, pinned for later sessions. */
  waitReady(lab: LabRecord, machine: PlacedMachine, timeoutMs: number): Promise<string>;
  /** A root session on the machine. */
  open(lab: LabRecord, machine: string, timeoutMs: number): Promise<MachineSession>;
  /** Restarts the machine and waits until it has booted again; returns systemd's state. */
  reboot(lab: LabRecord, machine: string, timeoutMs: number): Promise<string>;
  /** One grading round trip: every fragment of this machine. Throws when the machine cannot be reached. */
  runChecks(lab: LabRecord, machine: string, fragments: readonly MachineFragment[], options: { powershell: boolean; connectTimeoutMs: number }): Promise<FragmentRun[]>;
  /** Tries a password login as `user`: a refusal is an answer, an unreachable machine throws. */
  trySshLogin(lab: LabRecord, machine: string, user: string, password: string, timeoutMs: number): Promise<{ ok: boolean; detail: string }>;
}
