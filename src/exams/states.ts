import { ConflictError } from '../util/errors.js';

/**
 * An exam's lifecycle. The clock is per candidate (see CandidatePhase); the
 * exam is running from its start until every candidate is done. A prepared
 * exam has its labs built and verified before the start, access still shut.
 *
 *   scheduled → (preparing) → running → ending → ended
 *       │            └──────────────────↗   ↑
 *       └─────────────────────────────────────────┘ (ended before start, or every candidate done)
 */
export const EXAM_STATUSES = ['scheduled', 'preparing', 'running', 'ending', 'ended'] as const;
export type ExamStatus = (typeof EXAM_STATUSES)[number];

const EXAM_TRANSITIONS: Record<ExamStatus, readonly ExamStatus[]> = {
  scheduled: ['preparing', 'running', 'ended'],
  preparing: ['running', 'ending', 'ended'],
  running: ['ending', 'ended'],
  ending: ['ended'],
  ended: [],
};

/**
 * One candidate's exam:
 *
 *   waiting → provisioning → (ready) → active → ending → ended
 *                 ↓  ↑                   │
 *               failed ←─────────────────┘ (reset: back to provisioning; the deadline is kept)
 *
 * The clock starts when the lab is offered (active): a lab that took longer
 * to build costs its candidate nothing. In a prepared exam a lab built
 * before the start waits `ready` (access shut, no clock) until the start
 * offers them all at once. Any phase but ended may go to ending.
 */
export const CANDIDATE_PHASES = ['waiting', 'provisioning', 'ready', 'active', 'failed', 'ending', 'ended'] as const;
export type CandidatePhase = (typeof CANDIDATE_PHASES)[number];

const CANDIDATE_TRANSITIONS: Record<CandidatePhase, readonly CandidatePhase[]> = {
  waiting: ['provisioning', 'ending', 'ended'],
  provisioning: ['ready', 'active', 'failed', 'ending'],
  ready: ['active', 'provisioning', 'ending'],
  active: ['provisioning', 'ending'],
  failed: ['provisioning', 'ending'],
  ending: ['ended'],
  ended: [],
};

export function assertExamTransition(examId: string, from: ExamStatus, to: ExamStatus): void {
  if (!EXAM_TRANSITIONS[from].includes(to)) {
    throw new ConflictError(`exam ${examId} is ${from}; it cannot become ${to} (allowed: ${EXAM_TRANSITIONS[from].join(', ') || 'none'})`);
  }
}

export function canMoveCandidate(from: CandidatePhase, to: CandidatePhase): boolean {
  return CANDIDATE_TRANSITIONS[from].includes(to);
}

export function assertCandidateTransition(who: string, from: CandidatePhase, to: CandidatePhase): void {
  if (!canMoveCandidate(from, to)) {
    throw new ConflictError(`candidate ${who} is ${from}; they cannot become ${to} (allowed: ${CANDIDATE_TRANSITIONS[from].join(', ') || 'none'})`);
  }
}

/** The candidate's exam is over (or closing): no more access, time or changes. */
export function hasFinished(phase: CandidatePhase): boolean {
  return phase === 'ending' || phase === 'ended';
}
