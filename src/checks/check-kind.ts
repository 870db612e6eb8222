import type { z } from 'zod';

/**
 * A check kind: the parameters a scenario gives it, what it observes and how
 * it turns what was observed into assertions.
 *
 * Observations are made either on a lab machine, by the grader's own static
 * probe (started by the engine from a read-only volume, or over SSH on a VM),
 * which reads the kernel's and the filesystem's answers itself; or on the
 * grader's side (an HTTP request, a TCP connect, an SSH login). The lab only
 * ever receives what to observe: never a check's id, expected values or the
 * solution. Only `command` checks run the machine's own tools, by design.
 */

/** The fields every check has, whatever its kind. */
export interface CheckCommon {
  id: string;
  title: string;
  description?: string;
  kind: string;
  machine: string;
  points: number;
  competency?: string;
  prerequisites: string[];
  hidden: boolean;
  baseline: 'pass' | 'fail' | 'any';
  partial: boolean;
  /** Per-check time limit, in milliseconds (`timeout: 10s` in YAML). */
  timeout: number;
}

/** One thing a check asserts (e.g. "active", "enabled"); a check passes when all hold. */
export interface Assertion {
  name: string;
  pass: boolean;
  expected: string;
  actual: string;
  /**
   * A precondition of the others ("the file exists"): it earns no partial
   * credit of its own, and when it fails the check earns none at all.
   */
  gate?: boolean;
}

/** What the probe can be asked on a machine (see images/toolbox/examlab-probe.c, `serve`). */
export const PROBE_VERBS = ['lstat', 'read', 'list', 'statfs', 'xattr', 'procs', 'cgroup', 'connect', 'ping', 'dns', 'resolve', 'http', 'run'] as const;
export type ProbeVerb = (typeof PROBE_VERBS)[number];

/** One observation on a machine. */
export interface Observation {
  verb: ProbeVerb;
  args: readonly (string | number)[];
}

/** The probe's answer to one observation: ok, part (cut at its limit), neg (a negative answer), err (could not decide). */
export interface ProbeRecord {
  status: 'ok' | 'part' | 'neg' | 'err';
  data: Buffer;
}

/** What a Windows guest's PowerShell script produced (command checks only). */
export interface ScriptOutput {
  exitCode: number;
  stdout: string;
  stderr: string;
}

/** What the grader can do and know while probing one lab. */
export interface ProbeContext {
  /** The address of `machine` as seen from `from` (a machine name, or the grader). */
  addressOf(machine: string, from?: string): string | undefined;
  /** Tries an SSH password login as `user` on `machine`; never throws. */
  trySshLogin(machine: string, user: string, password: string, timeoutMs: number): Promise<{ ok: boolean; detail: string }>;
  /**
   * The programs a service ran in the sound system (the lab right after its
   * setup, before the faults and before the candidate): a unit counts as
   * running only when one of these runs in its cgroup. Undefined when unknown.
   */
  servicePrograms(machine: string, unit: string): readonly string[] | undefined;
}

/** Where and what a check observes: on a machine of the lab, from the grader, or both. */
export interface ProbePlan {
  /** The machine the observations are made on. */
  machine?: string;
  /** What the probe observes there, by key. */
  probe?: Record<string, Observation>;
  /** A PowerShell script for a Windows guest, run with the machine's own PowerShell (command checks only). */
  powershell?: string;
  /** An observation made from the grader's side. */
  observe?: (ctx: ProbeContext) => Promise<unknown>;
}

/** What a kind concluded: its assertions and the evidence a jury can read. */
export interface Evaluation {
  assertions: Assertion[];
  /** What the probe saw, in words ("ActiveState=inactive, UnitFileState=disabled"). */
  evidence: string;
}

export interface ProbeFacts {
  /** The probe's answers, by the keys of the plan. */
  probe?: ReadonlyMap<string, ProbeRecord>;
  script?: ScriptOutput;
  observed?: unknown;
}

/** A probe whose output makes no sense: the grader cannot decide (status `error`). */
export class ProbeError extends Error {}

export interface CheckKind<P extends CheckCommon = CheckCommon> {
  readonly kind: string;
  /** Kind-specific fields of the scenario format (merged with the common ones). */
  readonly fields: z.ZodRawShape;
  /** Machine names the check's parameters refer to (for reference validation). */
  machinesReferenced(check: P): string[];
  /** Rules across fields that the schema cannot say; each string is one problem. */
  validate(check: P): string[];
  plan(check: P, ctx: ProbeContext): ProbePlan;
  evaluate(check: P, facts: ProbeFacts, ctx?: ProbeContext): Evaluation;
}

/** Defines a kind with its parameter type inferred from its fields. */
export function defineKind<F extends z.ZodRawShape>(
  kind: string,
  fields: F,
  impl: {
    machinesReferenced?: (check: CheckCommon & z.infer<z.ZodObject<F>>) => string[];
    validate?: (check: CheckCommon & z.infer<z.ZodObject<F>>) => string[];
    plan: (check: CheckCommon & z.infer<z.ZodObject<F>>, ctx: ProbeContext) => ProbePlan;
    evaluate: (check: CheckCommon & z.infer<z.ZodObject<F>>, facts: ProbeFacts, ctx?: ProbeContext) => Evaluation;
  },
): CheckKind {
  // The registry erases each kind's own parameter type. The narrowing below is
  // sound because a check reaches its kind only after the scenario schema parsed
  // it with that kind's fields (a union discriminated on `kind`).
  return {
    kind,
    fields,
    machinesReferenced: (check) => impl.machinesReferenced?.(check as never) ?? [],
    validate: (check) => impl.validate?.(check as never) ?? [],
    plan: (check, ctx) => impl.plan(check as never, ctx),
    evaluate: (check, facts, ctx) => impl.evaluate(check as never, facts, ctx),
  };
}
