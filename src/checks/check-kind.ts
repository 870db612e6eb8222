import type { z } from 'zod';

/**
 * A check kind: the parameters a scenario gives it, the probe it runs and how
 * it turns what the probe saw into assertions.
 *
 * A probe runs either on a lab machine (a shell fragment executed by the
 * grader's own busybox, with its own static `examlab-probe` at hand) or on the
 * grader's side (an observation made from outside the machine: an HTTP
 * request, a TCP connect, an SSH login). Kinds never run tools from the
 * machine's PATH unless the scenario asked for exactly that (`command`).
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

/** What a machine-side fragment produced. */
export interface FragmentOutput {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** What the fragment reported with `emit KEY COMMAND...` / `emitv KEY VALUE`, by key. */
  facts: Map<string, string>;
}

/** What the grader can do and know while probing one lab. */
export interface ProbeContext {
  /** The address of `machine` as seen from `from` (a machine name, or the grader). */
  addressOf(machine: string, from?: string): string | undefined;
  /** Tries an SSH password login as `user` on `machine`; never throws. */
  trySshLogin(machine: string, user: string, password: string, timeoutMs: number): Promise<{ ok: boolean; detail: string }>;
}

/** Where a check's probe runs: a machine of the lab, the grader, or both. */
export interface ProbePlan {
  /** Machine whose round trip carries the fragment; undefined when only the grader observes. */
  machine?: string;
  /**
   * Shell fragment for busybox sh; `$B` is busybox, `$P` the probe, `$D` a private work dir.
   * It reports facts with `emit KEY COMMAND...` (the command's output) or `emitv KEY VALUE`.
   */
  fragment?: string;
  /** Observation made from the grader's side. */
  observe?: (ctx: ProbeContext) => Promise<unknown>;
  /** The fragment is a PowerShell script for a Windows guest, not a busybox sh fragment (command checks only). */
  powershell?: boolean;
}

/** What a kind concluded: its assertions and the evidence a jury can read. */
export interface Evaluation {
  assertions: Assertion[];
  /** What the probe saw, in words ("ActiveState=inactive, UnitFileState=disabled"). */
  evidence: string;
}

export interface ProbeFacts {
  fragment?: FragmentOutput;
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
  evaluate(check: P, facts: ProbeFacts): Evaluation;
}

/** Defines a kind with its parameter type inferred from its fields. */
export function defineKind<F extends z.ZodRawShape>(
  kind: string,
  fields: F,
  impl: {
    machinesReferenced?: (check: CheckCommon & z.infer<z.ZodObject<F>>) => string[];
    validate?: (check: CheckCommon & z.infer<z.ZodObject<F>>) => string[];
    plan: (check: CheckCommon & z.infer<z.ZodObject<F>>, ctx: ProbeContext) => ProbePlan;
    evaluate: (check: CheckCommon & z.infer<z.ZodObject<F>>, facts: ProbeFacts) => Evaluation;
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
    evaluate: (check, facts) => impl.evaluate(check as never, facts),
  };
}
