import type { LabStore } from '../labs/index.js';
import type { CandidateRecord, CandidateUpdate, ExamRecord, ExamStore } from './exam-store.js';

/**
 * Hands a built lab to its candidate, inside the caller's transaction: the
 * lab runs and the candidate is active, their clock started at `at` (or
 * kept where it was: a lab rebuilt or swapped after a reset keeps the
 * deadline and the first offer time).
 */
export function offerLab(stores: { exams: ExamStore; labStore: LabStore }, exam: ExamRecord, c: CandidateRecord, labId: string, at: Date, fields: CandidateUpdate = {}): CandidateRecord {
  stores.labStore.transition(labId, 'running', 'offered to the candidate');
  const deadline = c.deadline ?? new Date(at.getTime() + exam.durationMs + c.extensionMs).toISOString();
  return stores.exams.moveCandidate(exam.id, c.id, 'active', { ...fields, offeredAt: c.offeredAt ?? at.toISOString(), deadline, detail: null });
}
