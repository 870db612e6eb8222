import { everyOption, type FaultDraw, type LoadedScenario } from '../scenario/index.js';
import { mapLimit } from '../util/concurrency.js';
import type { CheckStatus } from '../grading/index.js';
import type { Score } from '../grading/index.js';
import { EnvironmentError, errorMessage } from '../util/errors.js';
import type { LabService } from './lab-service.js';

export interface ScenarioTestReport {
  scenario: string;
  ok: boolean;
  labId?: string;
  /** The option of each fault pool this lab drew. */
  draw: FaultDraw;
  /** The lab was left up after a failure, to look at what went wrong (`keep`). */
  kept?: boolean;
  /** What went wrong, in plain words; empty when ok. */
  problems: string[];
  broken?: { score: Score; checks: { id: string; status: CheckStatus; baseline: string }[] };
  solved?: { score: Score; checks: { id: string; status: CheckStatus }[] };
  timings: Record<string, number>;
}

/**
 * Proves a scenario on a real engine: provision, apply the faults, every
 * check must fail (baseline: pass ones must pass), apply the solution, every
 * check must pass; the lab is torn down, unless it failed with `keep` set
 * (and was built: a provisioning that fails leaves nothing).
 */
export async function testScenario(labs: LabService, loaded: LoadedScenario, progress: (line: string) => void = () => undefined, options: { keep?: boolean; draw?: FaultDraw } = {}): Promise<ScenarioTestReport> {
  const draw = options.draw ?? everyOption(loaded.scenario.faultPools)[0] ?? {};
  const report: ScenarioTestReport = { scenario: loaded.scenario.id, ok: false, draw, problems: [], timings: {} };
  const timed = async <T>(name: string, fn: () => Promise<T>): Promise<T> => {
    const started = Date.now();
    try {
      return await fn();
    } finally {
      report.timings[name] = Date.now() - started;
    }
  };
  const lab = labs.create(loaded, { candidateId: 'scenario-test', draw });
  report.labId = lab.id;
  let environment: EnvironmentError | undefined;
  try {
    progress(`provisioning lab ${lab.id} (setup and faults)`);
    await timed('provisionMs', () => labs.provision(lab.id));
    progress('grading the broken state');
    const baseline = await timed('gradeBrokenMs', () => labs.verifyBaseline(lab.id));
    report.broken = {
      score: baseline.run.score as Score,
      checks: baseline.run.results.map((r) => ({ id: r.checkId, status: r.status, baseline: r.baseline })),
    };
    for (const p of baseline.problems) report.problems.push(`broken state: check ${p.checkId} should ${p.expected === 'pass' ? 'pass' : 'fail'} but is ${p.status}${p.detail ? ` (${p.detail})` : ''}`);
    progress('applying the reference solution');
    await timed('solutionMs', () => labs.applySolution(lab.id));
    progress('grading the solved state');
    const solved = await timed('gradeSolvedMs', () => labs.grade(lab.id, 'solution'));
    report.solved = { score: solved.score as Score, checks: solved.results.map((r) => ({ id: r.checkId, status: r.status })) };
    for (const r of solved.results) {
      if (r.status !== 'pass') report.problems.push(`solved state: check ${r.checkId} is ${r.status}${r.message ? ` (${r.message})` : r.actual ? ` (expected: ${r.expected} — observed: ${r.actual})` : ''}`);
    }
  } catch (err) {
    // An engine that is down says nothing about the scenario: it is reported as such, not as a failed test.
    if (err instanceof EnvironmentError) environment = err;
    report.problems.push(errorMessage(err));
  } finally {
    const built = labs.get(lab.id).state === 'ready';
    if (options.keep && built && report.problems.length && !environment) {
      report.kept = true;
    } else {
      progress('tearing down');
      await timed('teardownMs', () => labs.destroy(lab.id)).catch((err) => report.problems.push(`teardown: ${errorMessage(err)}`));
    }
  }
  if (environment) throw environment;
  report.ok = report.problems.length === 0;
  return report;
}

export interface ScenarioProof {
  scenario: string;
  ok: boolean;
  /** One proof per draw; together they use every option of every fault pool. */
  variants: ScenarioTestReport[];
}

/**
 * Proves a scenario and every variant of it: a scenario with fault pools
 * is built once per draw of `everyOption` (side by side, `parallel` at a
 * time), so each option of each pool is shown to break the checks and to
 * be repaired by the solution.
 */
export async function proveScenario(
  labs: LabService,
  loaded: LoadedScenario,
  progress: (line: string) => void = () => undefined,
  options: { keep?: boolean; parallel?: number } = {},
): Promise<ScenarioProof> {
  const draws = everyOption(loaded.scenario.faultPools);
  const name = (draw: FaultDraw) => Object.entries(draw).map(([pool, option]) => `${pool}=${option}`).join(', ');
  const variants = await mapLimit(draws, options.parallel ?? 2, (draw) =>
    testScenario(labs, loaded, draws.length > 1 ? (line) => progress(`[${name(draw)}] ${line}`) : progress, { keep: options.keep, draw }),
  );
  return { scenario: loaded.scenario.id, ok: variants.every((v) => v.ok), variants };
}
