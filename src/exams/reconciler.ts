import type { Logger } from 'pino';
import { SYSTEM, type AuditLog } from '../audit/index.js';
import { EnvironmentError, errorMessage } from '../util/errors.js';
import type { LabService } from '../labs/index.js';
import type { ProviderRegistry } from '../providers/index.js';
import type { ExamStore } from './exam-store.js';
import type { LabRecord, LabStore } from '../labs/index.js';
import type { Clock } from '../util/retry.js';
import type { LabPipeline } from './lab-pipeline.js';

export const HEARTBEAT_KEY = 'heartbeat';

/** What picks labs up after the engines or the daemon were away: the reconciler at start, the engine watch while running. */
export interface PickUpDeps {
  exams: ExamStore;
  labStore: LabStore;
  labs: LabService;
  audit: AuditLog;
  pipeline: LabPipeline;
  providers: ProviderRegistry;
  clock: Clock;
  log: Logger;
}

export interface ReconcileDeps extends PickUpDeps {
  /** A heartbeat older than this means the daemon was down (not just between two ticks). */
  heartbeatGraceMs: number;
}

export interface ReconcileReport {
  /** How long the daemon was away; active candidates got this time back. */
  outageSeconds: number;
  compensated: number;
  interruptedRuns: number;
  adopted: number;
  rebuilt: number;
  provisioningResumed: number;
  gradingResumed: number;
  cleaned: number;
  /** Labs on the engines that belong to another store: left alone. */
  foreign: number;
}

/**
 * What the daemon does at start, before it serves anything: compare the
 * store with the engines (by the labels on every lab object) and pick up
 * every exam where it was. Candidates get back the time the daemon was
 * away (they could not reach their labs); running labs are adopted, not
 * rebuilt; half-built labs are built again from scratch; interrupted
 * gradings are redone; what the store says is gone is removed.
 */
export async function reconcile(deps: ReconcileDeps): Promise<ReconcileReport> {
  const { exams, labStore, labs, audit, pipeline, log } = deps;
  const report: ReconcileReport = { outageSeconds: 0, compensated: 0, interruptedRuns: 0, adopted: 0, rebuilt: 0, provisioningResumed: 0, gradingResumed: 0, cleaned: 0, foreign: 0 };

  // 1. Who was on the clock when the daemon went away (given the time back at the end).
  const lastSeen = exams.getState(HEARTBEAT_KEY);
  const owed = candidatesOnTheClock(exams);

  // 2. Gradings cut short: recorded as such, redone below where they matter.
  const ours = labStore.list({ includeDestroyed: true }).filter((l) => l.examId && exams.findExam(l.examId));
  for (const lab of ours) {
    for (const run of labStore.runs(lab.id)) {
      if (run.status !== 'running') continue;
      labStore.failRun(run.id, 'interrupted: the daemon stopped during this run');
      report.interruptedRuns++;
    }
  }

  // 3. The engines: what is there that the store says should not be.
  const onEngines = await engineLabIds(deps, ours);
  const byId = new Map(ours.map((l) => [l.id, l]));
  const counted = new Set<string>();
  for (const [engine, ids] of onEngines) {
    for (const id of ids) {
      const lab = byId.get(id);
      if (!lab) {
        if (!counted.has(id)) report.foreign++;
        counted.add(id);
        continue;
      }
      if ((lab.state === 'destroyed' || lab.state === 'failed') && !counted.has(id)) {
        counted.add(id);
        await labs.destroy(id);
        audit.append({ actor: SYSTEM, action: 'lab.cleanup', examId: lab.examId, candidateId: lab.candidateId, labId: id, detail: { state: lab.state } });
        report.cleaned++;
      } else if (lab.host && deps.providers.hostOfEngine(engine) && deps.providers.hostOfEngine(engine)?.key !== lab.host) {
        // Moved to another lab host while this one was away: its remains here go.
        await labs.removeRemains(id, engine);
        audit.append({ actor: SYSTEM, action: 'lab.cleanup', examId: lab.examId, candidateId: lab.candidateId, labId: id, detail: { movedFrom: engine, now: lab.host } });
        report.cleaned++;
      }
    }
  }

  // 4. Every exam that was under way.
  for (const exam of exams.exams({ statuses: ['preparing', 'running', 'ending', 'ended'] })) {
    for (const c of exams.candidates(exam.id)) {
      const lab = labStore.labOf(c);
      const clog = log.child({ exam: exam.id, candidate: c.id, lab: lab?.id });
      switch (c.phase) {
        case 'provisioning':
          pipeline.launchPrepare(exam.id, c.id);
          report.provisioningResumed++;
          break;
        case 'ready':
        case 'active':
          if (lab && (await adopt(deps, lab, c.phase === 'ready' ? 'ready' : 'running', clog))) {
            report.adopted++;
          } else {
            rebuildLostLab(deps, exam.id, c.id, lab, 'while the daemon was away');
            report.rebuilt++;
          }
          break;
        case 'ending':
          pipeline.launchCompletion(exam.id, c.id);
          report.gradingResumed++;
          break;
        case 'ended':
          if (lab?.state === 'frozen') {
            // A regrade was under way.
            pipeline.launchCompletion(exam.id, c.id);
            report.gradingResumed++;
          } else if (lab?.state === 'graded' && !exam.keepLabs && labStore.runs(lab.id).find((r) => r.id === c.finalRunId)?.score?.complete) {
            // Graded, but stopped before the policy removed it.
            await labs.destroy(lab.id);
            audit.append({ actor: SYSTEM, action: 'lab.destroy', examId: exam.id, candidateId: c.id, labId: lab.id, detail: { policy: 'destroy once graded' } });
            report.cleaned++;
          }
          break;
        default:
          break;
      }
    }
    await reconcileSpares(deps, exam.id, exam.status === 'preparing' || exam.status === 'running');
    pipeline.closeExamIfDone(exam.id);
  }

  // 5. Time lost while the daemon was away, up to now: candidates could not
  // reach their labs while the daemon was down, nor while it picked them up.
  giveBackOutage(deps, lastSeen, owed, report);

  audit.append({ actor: SYSTEM, action: 'daemon.start', detail: { ...report } });
  log.info(report, 'reconciled with the engines');
  return report;
}

/** A candidate's lab whose machines are gone: built again from scratch (same seed, same values); the deadline is kept. */
export function rebuildLostLab(deps: Pick<ReconcileDeps, 'exams' | 'labStore' | 'audit' | 'pipeline'>, examId: string, candidateId: string, lab: LabRecord | undefined, when: string): void {
  const { exams, labStore, audit, pipeline } = deps;
  exams.atomically(() => {
    if (lab?.state === 'ready') labStore.transition(lab.id, 'provisioning', `lost ${when}`);
    exams.moveCandidate(examId, candidateId, 'provisioning', { attempts: 0, detail: `the lab was lost ${when}; rebuilding it` });
    audit.append({ actor: SYSTEM, action: 'lab.lost', examId, candidateId, labId: lab?.id });
  });
  pipeline.launchPrepare(examId, candidateId);
}

/** Candidates whose clock ran while the daemon was away: active ones, and those whose lab was being rebuilt (a reset keeps the deadline). */
function candidatesOnTheClock(exams: ExamStore): Array<{ examId: string; candidateId: string }> {
  return exams.exams({ statuses: ['running'] }).flatMap((exam) =>
    exams
      .candidates(exam.id)
      .filter((c) => (c.phase === 'active' || c.phase === 'provisioning') && c.deadline)
      .map((c) => ({ examId: exam.id, candidateId: c.id })),
  );
}

/** Moves the deadlines of those candidates by the time since the last heartbeat, when that is an outage. */
function giveBackOutage(deps: ReconcileDeps, lastSeen: string | undefined, owed: ReturnType<typeof candidatesOnTheClock>, report: ReconcileReport): void {
  const { exams, audit, clock } = deps;
  const now = clock.now();
  const gapMs = lastSeen ? now - Date.parse(lastSeen) : 0;
  if (gapMs > deps.heartbeatGraceMs) {
    report.outageSeconds = Math.round(gapMs / 1000);
    exams.atomically(() => {
      for (const { examId, candidateId } of owed) {
        const c = exams.findCandidate(examId, candidateId);
        if (!c?.deadline) continue;
        exams.updateCandidate(examId, candidateId, { deadline: new Date(Date.parse(c.deadline) + gapMs).toISOString(), extensionMs: c.extensionMs + gapMs });
        report.compensated++;
      }
      audit.append({ actor: SYSTEM, action: 'daemon.outage', detail: { since: lastSeen, seconds: report.outageSeconds, candidates: report.compensated } });
    });
  }
  exams.setState(HEARTBEAT_KEY, new Date(now).toISOString());
}

/** Spare labs: ready ones whose machines are all there are kept, the others removed; a live exam's are topped up. */
async function reconcileSpares(deps: ReconcileDeps, examId: string, live: boolean): Promise<void> {
  for (const spare of deps.labStore.spares(examId)) {
    const keep = live && (await adopt(deps, spare, 'ready', deps.log.child({ exam: examId, lab: spare.id, spare: true })));
    if (!keep) await deps.labs.destroy(spare.id);
  }
  if (live) deps.pipeline.launchSpares(examId);
}

/** Checks that every machine of a candidate's lab (in use, or ready for the start) is still there, and running. */
async function adopt(deps: ReconcileDeps, lab: LabRecord, expected: 'ready' | 'running', log: Logger): Promise<boolean> {
  if (lab.state !== expected) return false;
  let states: Awaited<ReturnType<LabService['machineStates']>>;
  try {
    states = await deps.labs.machineStates(lab.id);
  } catch (err) {
    // One lab host of several does not answer: the lab is built again on another.
    if (!lab.host) throw err;
    log.warn({ host: lab.host, err: errorMessage(err) }, 'lab host not reachable: the lab is built again on another');
    return false;
  }
  const values = Object.values(states);
  if (!values.length || values.includes('missing')) {
    log.warn({ machines: states }, 'lab lost: machines missing on the engine');
    return false;
  }
  if (values.some((s) => s !== 'running')) {
    log.info({ machines: states }, 'restarting stopped or paused machines');
    await deps.labs.resume(lab.id);
  }
  return true;
}

/**
 * Lab ids found on each engine. An engine that does not answer is fatal only
 * if one of our live labs is on it; a lab host is not (its labs are built
 * again on the others).
 */
async function engineLabIds(deps: ReconcileDeps, ours: readonly LabRecord[]): Promise<Map<string, string[]>> {
  const ids = new Map<string, string[]>();
  for (const name of deps.providers.names()) {
    try {
      ids.set(name, await (await deps.providers.get(name)).listLabIds());
    } catch (err) {
      const needed = ours.some((l) => l.state !== 'destroyed' && (l.topology?.machines ?? []).some((m) => m.provider === name));
      // The provider that makes networks holds a part of every lab.
      if (needed || name === deps.providers.networksOn) throw new EnvironmentError(`cannot reconcile with the ${name} engine: ${errorMessage(err)}`);
      deps.log.warn({ provider: name, err: errorMessage(err) }, deps.providers.hostOfEngine(name) ? 'lab host not reachable: its labs are built again on the others' : 'engine not reachable; none of our labs use it');
    }
  }
  return ids;
}
