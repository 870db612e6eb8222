import type { Db } from '../util/database.js';
import { now } from '../util/database.js';
import { sha256 } from '../util/ids.js';

/** Who did something: a named operator or jury token, a candidate, or the daemon itself. */
export type Actor = string;
export const SYSTEM: Actor = 'system';

export interface AuditEntry {
  actor: Actor;
  action: string;
  examId?: string;
  candidateId?: string;
  labId?: string;
  detail?: Record<string, unknown>;
}

export interface AuditRecord extends Required<Omit<AuditEntry, 'examId' | 'candidateId' | 'labId'>> {
  seq: number;
  at: string;
  examId?: string;
  candidateId?: string;
  labId?: string;
  prevHash: string;
  hash: string;
}

export interface ChainCheck {
  ok: boolean;
  checked: number;
  /** The first record whose hash does not follow from its content and its predecessor. */
  brokenAt?: number;
  problem?: string;
}

const GENESIS = '0'.repeat(64);

interface Row {
  seq: number;
  at: string;
  actor: string;
  action: string;
  exam_id: string | null;
  candidate_id: string | null;
  lab_id: string | null;
  detail: string;
  prev_hash: string;
  hash: string;
}

/**
 * Who did what, when, to which exam, candidate and lab. Append-only (SQLite
 * triggers refuse UPDATE and DELETE) and hash-chained: each record's hash
 * covers its content and the previous hash, so an edit made behind the
 * daemon's back breaks the chain at that record.
 *
 * `append` joins the caller's transaction when there is one, so a state
 * change and its record are written together or not at all.
 */
export class AuditLog {
  constructor(private readonly db: Db) {}

  append(entry: AuditEntry): AuditRecord {
    return this.db.transaction(() => {
      const last = this.db.prepare(`SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1`).get() as { seq: number; hash: string } | undefined;
      const seq = (last?.seq ?? 0) + 1;
      const prevHash = last?.hash ?? GENESIS;
      const at = now();
      const detail = JSON.stringify(entry.detail ?? {});
      const hash = hashOf(prevHash, { seq, at, actor: entry.actor, action: entry.action, examId: entry.examId, candidateId: entry.candidateId, labId: entry.labId, detail });
      this.db
        .prepare(`INSERT INTO audit (seq, at, actor, action, exam_id, candidate_id, lab_id, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
        .run(seq, at, entry.actor, entry.action, entry.examId ?? null, entry.candidateId ?? null, entry.labId ?? null, detail, prevHash, hash);
      return toRecord({ seq, at, actor: entry.actor, action: entry.action, exam_id: entry.examId ?? null, candidate_id: entry.candidateId ?? null, lab_id: entry.labId ?? null, detail, prev_hash: prevHash, hash });
    }).immediate();
  }

  list(filter: { examId?: string; candidateId?: string; afterSeq?: number; limit?: number } = {}): AuditRecord[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM audit WHERE (@exam IS NULL OR exam_id = @exam) AND (@candidate IS NULL OR candidate_id = @candidate) AND seq > @after ORDER BY seq LIMIT @limit`,
      )
      .all({ exam: filter.examId ?? null, candidate: filter.candidateId ?? null, after: filter.afterSeq ?? 0, limit: filter.limit ?? 1000 }) as Row[];
    return rows.map(toRecord);
  }

  /** Recomputes the whole chain. */
  verify(): ChainCheck {
    let prevHash = GENESIS;
    let checked = 0;
    for (const row of this.db.prepare(`SELECT * FROM audit ORDER BY seq`).iterate() as IterableIterator<Row>) {
      checked++;
      if (row.prev_hash !== prevHash) return { ok: false, checked, brokenAt: row.seq, problem: `record ${row.seq} does not follow the record before it` };
      const expected = hashOf(prevHash, { seq: row.seq, at: row.at, actor: row.actor, action: row.action, examId: row.exam_id ?? undefined, candidateId: row.candidate_id ?? undefined, labId: row.lab_id ?? undefined, detail: row.detail });
      if (expected !== row.hash) return { ok: false, checked, brokenAt: row.seq, problem: `record ${row.seq} was altered after it was written` };
      prevHash = row.hash;
    }
    return { ok: true, checked };
  }
}

function hashOf(prevHash: string, r: { seq: number; at: string; actor: string; action: string; examId?: string; candidateId?: string; labId?: string; detail: string }): string {
  return sha256(`${prevHash}\n${JSON.stringify([r.seq, r.at, r.actor, r.action, r.examId ?? null, r.candidateId ?? null, r.labId ?? null, r.detail])}`);
}

function toRecord(row: Row): AuditRecord {
  return {
    seq: row.seq,
    at: row.at,
    actor: row.actor,
    action: row.action,
    examId: row.exam_id ?? undefined,
    candidateId: row.candidate_id ?? undefined,
    labId: row.lab_id ?? undefined,
    detail: JSON.parse(row.detail) as Record<string, unknown>,
    prevHash: row.prev_hash,
    hash: row.hash,
  };
}
