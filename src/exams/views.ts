import type { CandidateRecord, ExamRecord } from './exam-store.js';
import type { LabRecord, RunRecord } from '../labs/index.js';
import type { Language } from '../util/dates.js';
import { CANDIDATE_PHASES } from './states.js';

/** How candidates reach their lab: the gateway's address, for the SSH command. */
export interface AccessInfo {
  sshCommand(candidateId: string, machine?: string): string;
}

export function remainingSeconds(deadline: string | undefined, now: number): number | undefined {
  return deadline ? Math.max(0, Math.round((Date.parse(deadline) - now) / 1000)) : undefined;
}

/** A candidate's live terminal sessions and their last activity (from the session layer). */
export interface Presence {
  connected: number;
  lastActivityAt?: string;
}

/** A candidate as the operator and the jury see them (never their token). */
export function candidateSummary(c: CandidateRecord, lab: LabRecord | undefined, now: number, presence?: Presence) {
  return {
    id: c.id,
    name: c.name,
    email: c.email,
    phase: c.phase,
    detail: c.detail,
    revoked: c.revoked,
    attempts: c.attempts,
    extensionMs: c.extensionMs,
    offeredAt: c.offeredAt,
    deadline: c.deadline,
    remainingSeconds: c.phase === 'active' || c.phase === 'provisioning' ? remainingSeconds(c.deadline, now) : undefined,
    lab: lab ? { id: lab.id, state: lab.state, detail: lab.stateDetail } : undefined,
    finalRunId: c.finalRunId,
    /** Open terminal sessions (SSH or browser) and the last keystroke or login. */
    connected: presence?.connected ?? 0,
    lastActivityAt: presence?.lastActivityAt,
  };
}

export function examSummary(
  exam: ExamRecord,
  candidates: readonly CandidateRecord[],
  labs: ReadonlyMap<string, LabRecord>,
  spares: readonly LabRecord[],
  now: number,
  language?: Language,
  presence?: (candidateId: string) => Presence,
) {
  const byPhase = Object.fromEntries(CANDIDATE_PHASES.map((p) => [p, candidates.filter((c) => c.phase === p).length]));
  const labStates: Record<string, number> = {};
  for (const c of candidates) {
    const state = c.labId ? labs.get(c.labId)?.state : undefined;
    if (state) labStates[state] = (labStates[state] ?? 0) + 1;
  }
  return {
    id: exam.id,
    title: exam.title,
    scenario: { id: exam.scenarioId, file: exam.scenarioFile, language },
    /** Dates for people are shown in this time zone, in the scenario's language. */
    timeZone: exam.timeZone,
    mode: exam.mode,
    status: exam.status,
    durationMs: exam.durationMs,
    start: { policy: exam.startPolicy, at: exam.startAt },
    end: { autoFreeze: exam.autoFreeze, keepLabs: exam.keepLabs },
    createdBy: exam.createdBy,
    createdAt: exam.createdAt,
    startedAt: exam.startedAt,
    endedAt: exam.endedAt,
    progress: {
      total: candidates.length,
      /** Labs offered to their candidate so far, and those that could not be made. */
      ready: candidates.filter((c) => c.offeredAt).length,
      failed: byPhase.failed ?? 0,
      byPhase,
      labs: labStates,
      /** Spare labs (built for no one yet): ready to swap in at a reset, and being built. */
      spares: { wanted: exam.spares, ready: spares.filter((l) => l.state === 'ready').length, building: spares.filter((l) => l.state === 'requested' || l.state === 'provisioning').length },
    },
    candidates: candidates.map((c) => candidateSummary(c, c.labId ? labs.get(c.labId) : undefined, now, presence?.(c.id))),
  };
}

/** A grading run without the checks' definitions: what a practising candidate may see. */
export function candidateRunView(run: RunRecord) {
  return {
    id: run.id,
    status: run.status,
    finishedAt: run.finishedAt,
    score: run.score ? { points: run.score.points, maxPoints: run.score.maxPoints, percent: run.score.percent, passed: run.score.passed } : undefined,
    checks: run.results.filter((r) => !r.hidden).map((r) => ({ title: r.title, status: r.status, points: r.points, maxPoints: r.maxPoints })),
  };
}

/** A grading run in full, for staff. */
export function runView(run: RunRecord) {
  return { id: run.id, purpose: run.purpose, status: run.status, startedAt: run.startedAt, finishedAt: run.finishedAt, error: run.error, score: run.score, results: run.results };
}
