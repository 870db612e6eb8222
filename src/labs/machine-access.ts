import type { MachineRunner } from '../grading/index.js';
import type { MachineSession } from '../remote/index.js';
import type { LabRecord, LabTopology } from './lab-store.js';

export type PlacedMachine = LabTopology['machines'][number];

/**
 * How the lab logic reaches a lab's machines as root: the one seam between
 * what a lab does (accounts, steps, grading) and the transports that carry
 * it (the engine's exec API for containers; SSH or a guest agent for VMs).
 * Unit tests put an in-memory fake here.
 */
export interface MachineAccess {
  /** Waits until the machine takes root commands and has booted; returns its SSH host key fingerprint, pinned for candidates' sessions, when it has one. */
  waitReady(lab: LabRecord, machine: PlacedMachine, timeoutMs: number): Promise<string | undefined>;
  /** A root session on the machine, running the machine's own shell. */
  open(lab: LabRecord, machine: string, timeoutMs: number): Promise<MachineSession>;
  /** Restarts the machine and waits until it has booted again; returns systemd's state. */
  reboot(lab: LabRecord, machine: string, timeoutMs: number): Promise<string>;
  /** How the grader asks the machine: its probe, or a Windows guest's PowerShell. */
  runner(lab: LabRecord, machine: string): MachineRunner;
  /** Tries a password login as `user` over SSH: a refusal is an answer, an unreachable machine throws. */
  trySshLogin(lab: LabRecord, machine: string, user: string, password: string, timeoutMs: number): Promise<{ ok: boolean; detail: string }>;
}
