import type { Logger } from 'pino';
import { errorMessage } from '../util/errors.js';
import type { Check } from '../scenario/index.js';
import { withTimeout } from '../util/retry.js';
import { checkKind, ProbeError, type Assertion, type Evaluation, type ProbeContext, type ProbeFacts, type ProbePlan } from '../checks/index.js';
import { runMachine, type MachineAnswer, type MachineRunner } from './machine-run.js';
import type { CheckResult } from './results.js';

/** What the grader needs to reach one lab. */
export interface GradingAccess extends ProbeContext {
  /** How to ask one machine of the lab. */
  machine(name: string): MachineRunner;
}

export interface GradeOptions {
  log: Logger;
}

interface Planned {
  check: Check;
  plan?: ProbePlan;
  problem?: string;
}

/**
 * Grades checks against a live lab: all checks of a machine in one round
 * trip of the grader's probe, machines in parallel, grader-side
 * observations alongside. Never throws for a lab problem: a machine that
 * cannot answer, or stalls, makes its checks `error` within a bound.
 */
export async function gradeChecks(checks: readonly Check[], access: GradingAccess, options: GradeOptions): Promise<CheckResult[]> {
  const planned: Planned[] = checks.map((check) => {
    try {
      return { check, plan: checkKind(check.kind).plan(check, access) };
    } catch (err) {
      return { check, problem: errorMessage(err) };
    }
  });

  const byMachine = new Map<string, Planned[]>();
  for (const p of planned) {
    const machine = p.plan?.probe || p.plan?.powershell !== undefined ? p.plan.machine : undefined;
    if (machine !== undefined) byMachine.set(machine, [...(byMachine.get(machine) ?? []), p]);
  }
  const answers = new Map<Planned, MachineAnswer & { durationMs: number }>();
  const observations = new Map<Planned, { value?: unknown; problem?: string; durationMs: number }>();

  const machineRuns = [...byMachine].map(async ([machine, items]) => {
    const started = Date.now();
    const results = await runMachine(
      items.map((p) => ({ probe: p.plan?.probe, script: p.plan?.powershell !== undefined ? { text: p.plan.powershell, timeoutMs: p.check.timeout } : undefined, timeoutMs: p.check.timeout })),
      access.machine(machine),
    );
    const durationMs = Date.now() - started;
    items.forEach((p, i) => {
      const answer = results[i] ?? { problem: 'no answer' };
      answers.set(p, { ...answer, problem: answer.problem && `machine ${machine} could not be graded: ${answer.problem}`, durationMs });
    });
    const failed = results.find((r) => r.problem);
    if (failed) options.log.warn({ machine, err: failed.problem }, 'machine could not be graded');
    options.log.debug({ machine, checks: items.length, ms: durationMs }, 'machine graded');
  });
  const observed = planned
    .filter((p) => p.plan?.observe)
    .map(async (p) => {
      const started = Date.now();
      try {
        const value = await withTimeout((p.plan?.observe as NonNullable<ProbePlan['observe']>)(access), p.check.timeout, `check ${p.check.id}`);
        observations.set(p, { value, durationMs: Date.now() - started });
      } catch (err) {
        observations.set(p, { problem: errorMessage(err), durationMs: Date.now() - started });
      }
    });
  await Promise.all([...machineRuns, ...observed]);

  const results = planned.map((p) => evaluate(p, answers.get(p), observations.get(p), access));
  return applyPrerequisites(results, checks);
}

function evaluate(p: Planned, run: (MachineAnswer & { durationMs: number }) | undefined, observation: { value?: unknown; problem?: string; durationMs: number } | undefined, ctx: ProbeContext): CheckResult {
  const { check } = p;
  const durationMs = Math.max(run?.durationMs ?? 0, observation?.durationMs ?? 0);
  const base = {
    checkId: check.id,
    title: check.title,
    kind: check.kind,
    machine: check.machine,
    competency: check.competency,
    hidden: check.hidden,
    baseline: check.baseline,
    maxPoints: check.points,
    durationMs,
  };
  const error = (message: string): CheckResult => ({ ...base, status: 'error', points: 0, expected: '', actual: '', evidence: '', message });
  const problem = p.problem ?? run?.problem ?? observation?.problem;
  if (problem) return error(problem);
  let evaluation: Evaluation;
  try {
    const facts: ProbeFacts = { probe: run?.probe, script: run?.script, observed: observation?.value };
    evaluation = checkKind(check.kind).evaluate(check, facts, ctx);
  } catch (err) {
    return error(err instanceof ProbeError ? err.message : `the grader could not read the result: ${errorMessage(err)}`);
  }
  const { assertions, evidence } = evaluation;
  const pass = assertions.length > 0 && assertions.every((a) => a.pass);
  return {
    ...base,
    status: pass ? 'pass' : 'fail',
    points: Math.round(check.points * creditFraction(assertions, pass, check.partial) * 100) / 100,
    expected: assertions.map((a) => a.expected).join('; '),
    actual: assertions.map((a) => a.actual).join('; '),
    evidence,
  };
}

/** Share of the points earned: all or nothing, or (partial credit) the share of non-gate assertions that hold. */
export function creditFraction(assertions: readonly Assertion[], pass: boolean, partial: boolean): number {
  if (pass) return 1;
  if (!partial || assertions.some((a) => a.gate && !a.pass)) return 0;
  const counted = assertions.filter((a) => !a.gate);
  return counted.length ? counted.filter((a) => a.pass).length / counted.length : 0;
}

/** A check whose prerequisite did not pass is skipped, whatever it found itself. */
function applyPrerequisites(results: CheckResult[], checks: readonly Check[]): CheckResult[] {
  const byId = new Map(results.map((r) => [r.checkId, r]));
  const prerequisites = new Map(checks.map((c) => [c.id, c.prerequisites]));
  const settle = (id: string, seen: Set<string>): CheckResult => {
    const result = byId.get(id) as CheckResult;
    if (seen.has(id)) return result;
    seen.add(id);
    for (const pre of prerequisites.get(id) ?? []) {
      const before = byId.get(pre);
      if (!before) continue;
      const settled = settle(pre, seen);
      if (settled.status !== 'pass') {
        const skipped: CheckResult = { ...result, status: 'skipped', points: 0, message: `prerequisite "${pre}" did not pass (${settled.status})` };
        byId.set(id, skipped);
        return skipped;
      }
    }
    return result;
  };
  return results.map((r) => settle(r.checkId, new Set()));
}
