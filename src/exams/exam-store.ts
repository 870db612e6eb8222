import type { Db } from '../util/database.js';
import { hostTimeZone } from '../util/dates.js';
import { now, storeRefusal, underFloor } from '../util/database.js';
import type { StorageFullError } from '../util/errors.js';
import { NotFoundError } from '../util/errors.js';
import { assertCandidateTransition, assertExamTransition, type CandidatePhase, type ExamStatus } from './states.js';

export type ExamMode = 'exam' | 'practice';
export type StartPolicyKind = 'now' | 'manual' | 'at';

export interface ExamRecord {
  id: string;
  title: string;
  scenarioId: string;
  scenarioFile: string;
  /** The exact scenario text: later edits of the file never change an exam. */
  scenarioText: string;
  /** practice: candidates may grade their own lab and see their score. */
  mode: ExamMode;
  durationMs: number;
  startPolicy: StartPolicyKind;
  startAt?: string;
  /** Freeze and grade each lab at its candidate's deadline. */
  autoFreeze: boolean;
  /** Keep graded labs (frozen) for regrading; otherwise destroy them once their grade is complete. */
  keepLabs: boolean;
  /** The IANA time zone dates are shown in to people (pages, reports, exports). */
  timeZone: string;
  /** Labs kept built and verified beside the candidates' while the exam is prepared or runs: a reset takes one. */
  spares: number;
  status: ExamStatus;
  createdBy: string;
  createdAt: string;
  startedAt?: string;
  endedAt?: string;
  updatedAt: string;
}

export interface CandidateRecord {
  examId: string;
  id: string;
  position: number;
  name: string;
  email?: string;
  phase: CandidatePhase;
  /** What is happening or went wrong, in words. */
  detail?: string;
  /** Seeds the per-candidate scenario values; kept across resets. */
  seed: string;
  labId?: string;
  revoked: boolean;
  extensionMs: number;
  offeredAt?: string;
  deadline?: string;
  attempts: number;
  finalRunId?: string;
  updatedAt: string;
}

export interface MarkRecord {
  examId: string;
  candidateId: string;
  criterionId: string;
  level: string;
  points: number;
  comment?: string;
  markedBy: string;
  markedAt: string;
}

export interface ReportRecord {
  examId: string;
  candidateId: string;
  diagnosis: string;
  actions: string;
  result: string;
  revision: number;
  submittedAt: string;
}

export type NewCandidate = Pick<CandidateRecord, 'id' | 'name' | 'email' | 'seed'> & { tokenHash: string };

interface ExamRow {
  id: string;
  title: string;
  scenario_id: string;
  scenario_file: string;
  scenario_text: string;
  mode: ExamMode;
  duration_ms: number;
  start_policy: StartPolicyKind;
  start_at: string | null;
  auto_freeze: number;
  keep_labs: number;
  time_zone: string | null;
  spares: number;
  status: ExamStatus;
  created_by: string;
  created_at: string;
  started_at: string | null;
  ended_at: string | null;
  updated_at: string;
}

interface CandidateRow {
  exam_id: string;
  id: string;
  position: number;
  name: string;
  email: string | null;
  phase: CandidatePhase;
  detail: string | null;
  seed: string;
  lab_id: string | null;
  revoked: number;
  extension_ms: number;
  offered_at: string | null;
  deadline: string | null;
  attempts: number;
  final_run_id: string | null;
  updated_at: string;
}

/** Fields of a candidate that change outside phase moves; null clears a field. */
export interface CandidateUpdate {
  detail?: string | null;
  labId?: string;
  /** The values of their lab (a spare swapped in brings its own). */
  seed?: string;
  revoked?: boolean;
  extensionMs?: number;
  offeredAt?: string;
  deadline?: string | null;
  attempts?: number;
  finalRunId?: string | null;
  tokenHash?: string;
}

const COLUMNS: Record<keyof CandidateUpdate, string> = {
  detail: 'detail',
  labId: 'lab_id',
  seed: 'seed',
  revoked: 'revoked',
  extensionMs: 'extension_ms',
  offeredAt: 'offered_at',
  deadline: 'deadline',
  attempts: 'attempts',
  finalRunId: 'final_run_id',
  tokenHash: 'token_hash',
};

/** Exams, their candidates, the jury's marks and the candidates' reports, in SQLite. */
export class ExamStore {
  constructor(private readonly db: Db) {}

  /** Runs `fn` in one transaction (nested calls join it): state changes and their audit records land together. */
  atomically<T>(fn: () => T): T {
    return this.db.transaction(fn).immediate();
  }

  createExam(exam: Omit<ExamRecord, 'status' | 'createdAt' | 'updatedAt' | 'startedAt' | 'endedAt'>, candidates: readonly NewCandidate[]): ExamRecord {
    const at = now();
    this.atomically(() => {
      this.db
        .prepare(
          `INSERT INTO exams (id, title, scenario_id, scenario_file, scenario_text, mode, duration_ms, start_policy, start_at, auto_freeze, keep_labs, time_zone, spares, status, created_by, created_at, updated_at)
           VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'scheduled', ?, ?, ?)`,
        )
        .run(exam.id, exam.title, exam.scenarioId, exam.scenarioFile, exam.scenarioText, exam.mode, exam.durationMs, exam.startPolicy, exam.startAt ?? null, exam.autoFreeze ? 1 : 0, exam.keepLabs ? 1 : 0, exam.timeZone, exam.spares, exam.createdBy, at, at);
      this.insertCandidates(exam.id, candidates);
    });
    return this.exam(exam.id);
  }

  /** Replaces the roster of an exam that has not started. */
  replaceRoster(examId: string, candidates: readonly NewCandidate[]): void {
    this.atomically(() => {
      this.db.prepare(`DELETE FROM marks WHERE exam_id = ?`).run(examId);
      this.db.prepare(`DELETE FROM reports WHERE exam_id = ?`).run(examId);
      this.db.prepare(`DELETE FROM candidates WHERE exam_id = ?`).run(examId);
      this.insertCandidates(examId, candidates);
      this.touchExam(examId);
    });
  }

  private insertCandidates(examId: string, candidates: readonly NewCandidate[]): void {
    const at = now();
    const insert = this.db.prepare(
      `INSERT INTO candidates (exam_id, id, position, name, email, phase, seed, token_hash, updated_at) VALUES (?, ?, ?, ?, ?, 'waiting', ?, ?, ?)`,
    );
    candidates.forEach((c, i) => insert.run(examId, c.id, i, c.name, c.email ?? null, c.seed, c.tokenHash, at));
  }

  findExam(id: string): ExamRecord | undefined {
    const row = this.db.prepare(`SELECT * FROM exams WHERE id = ?`).get(id) as ExamRow | undefined;
    return row ? toExam(row) : undefined;
  }

  exam(id: string): ExamRecord {
    const exam = this.findExam(id);
    if (!exam) throw new NotFoundError(`no exam ${id}`);
    return exam;
  }

  exams(filter: { statuses?: readonly ExamStatus[] } = {}): ExamRecord[] {
    const rows = this.db.prepare(`SELECT * FROM exams ORDER BY created_at, id`).all() as ExamRow[];
    return rows.map(toExam).filter((e) => !filter.statuses || filter.statuses.includes(e.status));
  }

  moveExam(id: string, to: ExamStatus, fields: { startedAt?: string; endedAt?: string } = {}): ExamRecord {
    this.atomically(() => {
      const exam = this.exam(id);
      assertExamTransition(id, exam.status, to);
      this.db
        .prepare(`UPDATE exams SET status = ?, started_at = COALESCE(?, started_at), ended_at = COALESCE(?, ended_at), updated_at = ? WHERE id = ?`)
        .run(to, fields.startedAt ?? null, fields.endedAt ?? null, now(), id);
    });
    return this.exam(id);
  }

  private touchExam(id: string): void {
    this.db.prepare(`UPDATE exams SET updated_at = ? WHERE id = ?`).run(now(), id);
  }

  /** How many candidates of the exams not yet ended are in each phase. */
  countCandidatesByPhase(): Map<string, number> {
    const rows = this.db.prepare(`SELECT c.phase, count(*) AS n FROM candidates c JOIN exams e ON e.id = c.exam_id WHERE e.status != 'ended' GROUP BY c.phase`).all() as { phase: string; n: number }[];
    return new Map(rows.map((r) => [r.phase, r.n]));
  }

  candidates(examId: string): CandidateRecord[] {
    const rows = this.db.prepare(`SELECT * FROM candidates WHERE exam_id = ? ORDER BY position`).all(examId) as CandidateRow[];
    return rows.map(toCandidate);
  }

  findCandidate(examId: string, id: string): CandidateRecord | undefined {
    const row = this.db.prepare(`SELECT * FROM candidates WHERE exam_id = ? AND id = ?`).get(examId, id) as CandidateRow | undefined;
    return row ? toCandidate(row) : undefined;
  }

  candidate(examId: string, id: string): CandidateRecord {
    const c = this.findCandidate(examId, id);
    if (!c) throw new NotFoundError(`exam ${examId} has no candidate ${id}`);
    return c;
  }

  candidateByTokenHash(hash: string): CandidateRecord | undefined {
    const row = this.db.prepare(`SELECT * FROM candidates WHERE token_hash = ?`).get(hash) as CandidateRow | undefined;
    return row ? toCandidate(row) : undefined;
  }

  /** Candidates of running exams whose deadline is at or before `at`. */
  dueCandidates(at: string): CandidateRecord[] {
    const rows = this.db
      .prepare(
        `SELECT c.* FROM candidates c JOIN exams e ON e.id = c.exam_id
         WHERE e.status = 'running' AND e.auto_freeze = 1 AND c.phase IN ('provisioning', 'active') AND c.deadline IS NOT NULL AND c.deadline <= ?`,
      )
      .all(at) as CandidateRow[];
    return rows.map(toCandidate);
  }

  /** Moves a candidate to a new phase, checked against the lifecycle; atomic. */
  moveCandidate(examId: string, id: string, to: CandidatePhase, fields: CandidateUpdate = {}): CandidateRecord {
    this.atomically(() => {
      const c = this.candidate(examId, id);
      assertCandidateTransition(`${id} of exam ${examId}`, c.phase, to);
      this.db.prepare(`UPDATE candidates SET phase = ?, updated_at = ? WHERE exam_id = ? AND id = ?`).run(to, now(), examId, id);
      this.updateCandidate(examId, id, fields);
    });
    return this.candidate(examId, id);
  }

  updateCandidate(examId: string, id: string, fields: CandidateUpdate): CandidateRecord {
    const entries = Object.entries(fields).filter(([, v]) => v !== undefined) as [keyof CandidateUpdate, unknown][];
    if (entries.length) {
      const sets = entries.map(([k]) => `${COLUMNS[k]} = ?`).join(', ');
      const values = entries.map(([, v]) => (typeof v === 'boolean' ? (v ? 1 : 0) : v));
      this.db.prepare(`UPDATE candidates SET ${sets}, updated_at = ? WHERE exam_id = ? AND id = ?`).run(...values, now(), examId, id);
    }
    return this.candidate(examId, id);
  }

  setMark(mark: Omit<MarkRecord, 'markedAt'>): MarkRecord {
    const markedAt = now();
    this.db
      .prepare(
        `INSERT INTO marks (exam_id, candidate_id, criterion_id, level, points, comment, marked_by, marked_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
         ON CONFLICT (exam_id, candidate_id, criterion_id) DO UPDATE SET level = excluded.level, points = excluded.points, comment = excluded.comment, marked_by = excluded.marked_by, marked_at = excluded.marked_at`,
      )
      .run(mark.examId, mark.candidateId, mark.criterionId, mark.level, mark.points, mark.comment ?? null, mark.markedBy, markedAt);
    return { ...mark, markedAt };
  }

  marks(examId: string, candidateId?: string): MarkRecord[] {
    const rows = this.db
      .prepare(`SELECT * FROM marks WHERE exam_id = ? AND (? IS NULL OR candidate_id = ?) ORDER BY candidate_id, criterion_id`)
      .all(examId, candidateId ?? null, candidateId ?? null) as {
      exam_id: string;
      candidate_id: string;
      criterion_id: string;
      level: string;
      points: number;
      comment: string | null;
      marked_by: string;
      marked_at: string;
    }[];
    return rows.map((r) => ({
      examId: r.exam_id,
      candidateId: r.candidate_id,
      criterionId: r.criterion_id,
      level: r.level,
      points: r.points,
      comment: r.comment ?? undefined,
      markedBy: r.marked_by,
      markedAt: r.marked_at,
    }));
  }

  saveReport(report: Pick<ReportRecord, 'examId' | 'candidateId' | 'diagnosis' | 'actions' | 'result'>): ReportRecord {
    this.db
      .prepare(
        `INSERT INTO reports (exam_id, candidate_id, diagnosis, actions, result, revision, submitted_at) VALUES (?, ?, ?, ?, ?, 1, ?)
         ON CONFLICT (exam_id, candidate_id) DO UPDATE SET diagnosis = excluded.diagnosis, actions = excluded.actions, result = excluded.result, revision = revision + 1, submitted_at = excluded.submitted_at`,
      )
      .run(report.examId, report.candidateId, report.diagnosis, report.actions, report.result, now());
    return this.report(report.examId, report.candidateId) as ReportRecord;
  }

  report(examId: string, candidateId: string): ReportRecord | undefined {
    const r = this.db.prepare(`SELECT * FROM reports WHERE exam_id = ? AND candidate_id = ?`).get(examId, candidateId) as
      | { exam_id: string; candidate_id: string; diagnosis: string; actions: string; result: string; revision: number; submitted_at: string }
      | undefined;
    return r
      ? { examId: r.exam_id, candidateId: r.candidate_id, diagnosis: r.diagnosis, actions: r.actions, result: r.result, revision: r.revision, submittedAt: r.submitted_at }
      : undefined;
  }

  /** A value the daemon keeps about itself (its heartbeat). */
  getState(key: string): string | undefined {
    return (this.db.prepare(`SELECT value FROM daemon_state WHERE key = ?`).get(key) as { value: string } | undefined)?.value;
  }

  /** `evenWhenFull`: written even under the store's floor (the heartbeat), as long as SQLite can. */
  setState(key: string, value: string, options: { evenWhenFull?: boolean } = {}): void {
    const write = () => void this.db.prepare(`INSERT INTO daemon_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value`).run(key, value);
    if (options.evenWhenFull) underFloor(this.db, write);
    else write();
  }

  /** Why the store refuses writes now (its disk under the floor), or undefined when it takes them. */
  refusal(): StorageFullError | undefined {
    return storeRefusal(this.db);
  }
}

function toExam(r: ExamRow): ExamRecord {
  return {
    id: r.id,
    title: r.title,
    scenarioId: r.scenario_id,
    scenarioFile: r.scenario_file,
    scenarioText: r.scenario_text,
    mode: r.mode,
    durationMs: r.duration_ms,
    startPolicy: r.start_policy,
    startAt: r.start_at ?? undefined,
    autoFreeze: r.auto_freeze === 1,
    keepLabs: r.keep_labs === 1,
    timeZone: r.time_zone ?? hostTimeZone(),
    spares: r.spares,
    status: r.status,
    createdBy: r.created_by,
    createdAt: r.created_at,
    startedAt: r.started_at ?? undefined,
    endedAt: r.ended_at ?? undefined,
    updatedAt: r.updated_at,
  };
}

function toCandidate(r: CandidateRow): CandidateRecord {
  return {
    examId: r.exam_id,
    id: r.id,
    position: r.position,
    name: r.name,
    email: r.email ?? undefined,
    phase: r.phase,
    detail: r.detail ?? undefined,
    seed: r.seed,
    labId: r.lab_id ?? undefined,
    revoked: r.revoked === 1,
    extensionMs: r.extension_ms,
    offeredAt: r.offered_at ?? undefined,
    deadline: r.deadline ?? undefined,
    attempts: r.attempts,
    finalRunId: r.final_run_id ?? undefined,
    updatedAt: r.updated_at,
  };
}
