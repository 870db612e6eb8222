import { existsSync } from 'node:fs';
import type { Db } from '../util/database.js';
import { now } from '../util/database.js';
import { StorageError } from '../util/errors.js';
import { sha256 } from '../util/ids.js';
import { AuditAnchor, type AnchorFiles, type AnchorLine, type PrintedAnchor } from './anchor.js';

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
  /** The first record that broke: its hash does not follow from its content and its predecessor, or is not the one anchored under its number. */
  brokenAt?: number;
  problem?: string;
  /** What broke: a record `altered`, `unlinked` from the one before, `rewritten` (differs from the anchor), `missing` records, records `unanchored`, the `anchor` itself, or the `triggers` dropped. */
  kind?: ChainProblem;
  /** The store ends at this record while the anchor holds later ones: its tail was cut, or it is an older copy than the anchor. */
  missingAfter?: number;
  /** The head of the chain as the anchor holds it (printed on every export and report). */
  anchor?: PrintedAnchor;
  /** A printed anchor given back (`?anchor=seq:digest`): whether the chain still holds that record with that digest. */
  printed?: { text: string; matches: boolean; problem?: string };
}

export type ChainProblem = 'altered' | 'unlinked' | 'rewritten' | 'missing' | 'unanchored' | 'anchor' | 'triggers';

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

/** Where the store says which anchor key it was anchored with (a store from before anchoring has none). */
const KEY_MARKER = 'audit.anchor.key';
/** At start, at most this many records written after the anchor's head are anchored late (a crash between commit and anchor). */
export const LATE_ANCHOR_LIMIT = 10;
/** Records of what already happened kept while the store refuses writes (appendLater); past this many, only counted. */
export const HELD_RECORDS_LIMIT = 1000;

/**
 * Who did what, when, to which exam, candidate and lab. Append-only (SQLite
 * triggers refuse UPDATE and DELETE) and hash-chained: each record's hash
 * covers its content and the previous hash, so an edit made behind the
 * daemon's back breaks the chain at that record.
 *
 * The chain alone proves only that the store agrees with itself. With
 * anchor files (see anchor.ts) every record's number and hash is also
 * written, under a key kept out of the store, to a file beside it, once the
 * record is committed: a store whose tail was cut, that was put back to an
 * older copy, or whose hashes were all recomputed no longer matches it.
 *
 * `append` joins the caller's transaction when there is one, so a state
 * change and its record are written together or not at all.
 */
export class AuditLog {
  private readonly anchor?: AuditAnchor;
  /** Why the anchor cannot be trusted or kept (key missing or replaced, store unknown to it). */
  private readonly anchorProblem?: string;
  /** The last record this process knows to be anchored (from the file at open, then its own writes). */
  private anchored = { seq: 0, hash: GENESIS };
  /** Records appended by this process, not yet anchored: anchored once their transaction has committed. */
  private readonly pending = new Map<number, string>();
  private flushQueued = false;
  private writeFailure?: string;
  /** Records the store refused (appendLater), with when they happened: written once it takes writes again. */
  private held: AuditEntry[] = [];
  private heldDropped = 0;

  constructor(
    private readonly db: Db,
    files?: AnchorFiles,
  ) {
    if (!files) return;
    const marker = (db.prepare(`SELECT value FROM daemon_state WHERE key = ?`).get(KEY_MARKER) as { value: string } | undefined)?.value;
    if (!existsSync(files.keyFile)) {
      if (marker) {
        this.anchorProblem = `the audit key ${files.keyFile} is missing (the store was anchored with key ${marker}): restore it from a backup`;
        return;
      }
      if (existsSync(files.anchorFile)) {
        this.anchorProblem = `the audit key ${files.keyFile} is missing but the anchor ${files.anchorFile} exists: restore the key from a backup`;
        return;
      }
    }
    let anchor: AuditAnchor;
    try {
      anchor = AuditAnchor.open(files, true) as AuditAnchor;
    } catch (err) {
      // A full disk is not a key problem: said as such, and the daemon does not start on it.
      if (err instanceof StorageError) throw err;
      // An unreadable key is reported by every check; the daemon still starts (the exam goes on).
      this.anchorProblem = `the audit key cannot be used: ${(err as Error).message}`;
      return;
    }
    this.anchor = anchor;
    const read = anchor.read();
    const last = read.lines[read.lines.length - 1];
    if (last) this.anchored = { seq: last.seq, hash: last.hash };
    if (marker === undefined) {
      if (read.lines.length > 0) {
        this.anchorProblem = `the store does not know the anchor key ${anchor.fingerprint} that anchored ${read.lines.length} records: it is older than the anchor (a copy from before anchoring began) or another store`;
        return;
      }
      // First start with an anchor (a new store, or one from before anchors): every record so far is anchored now.
      const rows = db.prepare(`SELECT seq, hash FROM audit ORDER BY seq`).all() as { seq: number; hash: string }[];
      try {
        anchor.write(rows);
      } catch (err) {
        if (err instanceof StorageError) throw err;
        this.anchorProblem = `the anchor ${files.anchorFile} cannot be written: ${(err as Error).message}`;
        return;
      }
      db.prepare(`INSERT INTO daemon_state (key, value) VALUES (?, ?) ON CONFLICT (key) DO NOTHING`).run(KEY_MARKER, anchor.fingerprint);
      const head = rows[rows.length - 1];
      if (head) this.anchored = { seq: head.seq, hash: head.hash };
    } else if (marker !== anchor.fingerprint) {
      this.anchorProblem = `the store was anchored with key ${marker}, but ${files.keyFile} is key ${anchor.fingerprint}: the key was replaced`;
    }
  }

  /** Whether records are anchored (and the anchor can be trusted). */
  get anchoring(): boolean {
    return this.anchor !== undefined && this.anchorProblem === undefined;
  }

  append(entry: AuditEntry): AuditRecord {
    const nested = this.db.inTransaction;
    const record = this.db.transaction(() => {
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
    if (this.anchoring) {
      this.pending.set(record.seq, record.hash);
      // Committed now, or (inside the caller's transaction) once that synchronous transaction has ended.
      if (nested) this.queueFlush();
      else this.flush();
    }
    return record;
  }

  /**
   * A record of something that already happened and changes no state (a
   * session closed): appended now, or, while the store refuses writes (its
   * disk full), held in memory with the time it happened and appended by
   * `appendHeld` once the store takes writes again. Never throws for the
   * disk: it is called where nothing could handle it (an event of a socket).
   */
  appendLater(entry: AuditEntry): void {
    try {
      this.append(entry);
    } catch (err) {
      if (!(err instanceof StorageError)) throw err;
      if (this.held.length < HELD_RECORDS_LIMIT) this.held.push({ ...entry, detail: { ...entry.detail, happenedAt: now(), recordedLate: err.message } });
      else this.heldDropped++;
    }
  }

  /** Appends the records `appendLater` held, oldest first; stops at the first the store refuses (kept for the next call). Returns how many are still held. */
  appendHeld(): number {
    while (this.held.length > 0) {
      try {
        this.append(this.held[0] as AuditEntry);
      } catch (err) {
        if (err instanceof StorageError) return this.held.length;
        throw err;
      }
      this.held.shift();
    }
    if (this.heldDropped > 0) {
      try {
        this.append({ actor: SYSTEM, action: 'audit.dropped', detail: { records: this.heldDropped, reason: `more than ${HELD_RECORDS_LIMIT} records came while the store refused writes` } });
        this.heldDropped = 0;
      } catch (err) {
        if (!(err instanceof StorageError)) throw err;
      }
    }
    return this.held.length;
  }

  list(filter: { examId?: string; candidateId?: string; afterSeq?: number; limit?: number } = {}): AuditRecord[] {
    const rows = this.db
      .prepare(
        `SELECT * FROM audit WHERE (@exam IS NULL OR exam_id = @exam) AND (@candidate IS NULL OR candidate_id = @candidate) AND seq > @after ORDER BY seq LIMIT @limit`,
      )
      .all({ exam: filter.examId ?? null, candidate: filter.candidateId ?? null, after: filter.afterSeq ?? 0, limit: filter.limit ?? 1000 }) as Row[];
    return rows.map(toRecord);
  }

  /** The chain's anchored head as printed on exports and reports; undefined when nothing is anchored. */
  head(): PrintedAnchor | undefined {
    if (!this.anchoring || !this.anchor) return undefined;
    if (!this.db.inTransaction) this.flush();
    return this.anchored.seq > 0 ? this.anchor.printed(this.anchored.seq, this.anchored.hash) : undefined;
  }

  /**
   * At the daemon's start: records committed after the anchor's head (the
   * daemon stopped between a commit and its anchor) are anchored late, at
   * most LATE_ANCHOR_LIMIT and only when the chain up to the head is intact,
   * with a record saying so. Then the whole chain is verified.
   */
  resume(): ChainCheck {
    const check = this.verify();
    const first = this.anchored.seq + 1;
    if (this.anchoring && check.kind === 'unanchored' && check.brokenAt === first) {
      const rows = this.db.prepare(`SELECT seq, hash FROM audit WHERE seq >= ? ORDER BY seq`).all(first) as { seq: number; hash: string }[];
      if (rows.length <= LATE_ANCHOR_LIMIT) {
        this.anchorRows(rows);
        const to = rows[rows.length - 1]?.seq;
        this.append({ actor: SYSTEM, action: 'audit.anchor.late', detail: { from: first, to, reason: 'committed but not anchored when the daemon stopped' } });
        return this.verify();
      }
    }
    return check;
  }

  /** Recomputes the whole chain and compares it with the anchor; `printed` is an anchor read off an export, to check. */
  verify(printed?: string): ChainCheck {
    if (this.anchoring && !this.db.inTransaction) this.flush();
    const read = this.anchor?.read() ?? { lines: [] };
    const anchoredHash = new Map<number, AnchorLine>();
    let anchorGap: { seq: number; problem: string; kind: ChainProblem } | undefined;
    let expected = 1;
    for (const line of read.lines) {
      const seen = anchoredHash.get(line.seq);
      if (seen && seen.hash === line.hash) continue;
      if (seen) {
        anchorGap ??= { seq: line.seq, kind: 'anchor', problem: `the anchor holds two hashes for record ${line.seq} (lines ${seen.line} and ${line.line})` };
        continue;
      }
      if (line.seq !== expected) anchorGap ??= { seq: expected, kind: 'anchor', problem: `the anchor file skips from record ${expected - 1} to ${line.seq} at line ${line.line}: lines were removed` };
      anchoredHash.set(line.seq, line);
      expected = line.seq + 1;
    }
    const fileHead = read.lines.reduce((max, l) => Math.max(max, l.seq), 0);

    let prevHash = GENESIS;
    let checked = 0;
    let lastSeq = 0;
    let broken: { seq: number; problem: string; kind: ChainProblem } | undefined;
    for (const row of this.db.prepare(`SELECT * FROM audit ORDER BY seq`).iterate() as IterableIterator<Row>) {
      checked++;
      lastSeq = row.seq;
      if (row.prev_hash !== prevHash) {
        broken = { seq: row.seq, kind: 'unlinked', problem: `record ${row.seq} does not follow the record before it` };
        break;
      }
      const expectedHash = hashOf(prevHash, { seq: row.seq, at: row.at, actor: row.actor, action: row.action, examId: row.exam_id ?? undefined, candidateId: row.candidate_id ?? undefined, labId: row.lab_id ?? undefined, detail: row.detail });
      if (expectedHash !== row.hash) {
        broken = { seq: row.seq, kind: 'altered', problem: `record ${row.seq} was altered after it was written` };
        break;
      }
      const line = anchoredHash.get(row.seq);
      if (this.anchor && line && line.hash !== row.hash) {
        broken = { seq: row.seq, kind: 'rewritten', problem: `record ${row.seq} is not the record anchored under its number (anchor line ${line.line}): the chain was rewritten from there and every hash recomputed` };
        break;
      }
      prevHash = row.hash;
    }

    const fail = (kind: ChainProblem, seq: number | undefined, problem: string, extra: Partial<ChainCheck> = {}): ChainCheck => ({ ok: false, checked, ...(seq !== undefined ? { brokenAt: seq } : {}), problem, kind, ...extra, ...this.summary(printed) });
    if (this.anchorProblem) return fail('anchor', broken?.seq, this.anchorProblem);
    if (broken) return fail(broken.kind, broken.seq, broken.problem);
    if (this.anchor) {
      if (read.bad) return fail('anchor', (read.lines.at(-1)?.seq ?? 0) + 1, read.bad.problem);
      if (anchorGap) return fail(anchorGap.kind, anchorGap.seq, anchorGap.problem);
      if (fileHead < this.anchored.seq) return fail('anchor', fileHead + 1, `the anchor file ends at record ${fileHead}, but this daemon anchored up to record ${this.anchored.seq}: the anchor file was cut`);
      if (lastSeq < fileHead) {
        return fail('missing', lastSeq + 1, `records ${lastSeq + 1} to ${fileHead} are missing: the store ends at record ${lastSeq} but the anchor holds ${fileHead} records (its tail was cut, or the database is an older copy than the anchor)`, { missingAfter: lastSeq });
      }
      if (lastSeq > fileHead) {
        // Appended inside a transaction still open: anchored once it commits, not missing.
        const waiting = !this.writeFailure && this.db.inTransaction && [...this.pending.keys()].some((seq) => seq === fileHead + 1);
        const why = this.writeFailure ? `the anchor could not be written (${this.writeFailure})` : "they were added to the store behind the daemon's back, or the daemon stopped before anchoring them";
        if (!waiting) return fail('unanchored', fileHead + 1, `records ${fileHead + 1} to ${lastSeq} are not anchored: ${why}`);
      }
    }
    const missingTriggers = ['audit_no_update', 'audit_no_delete'].filter((name) => !this.db.prepare(`SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?`).get(name));
    if (missingTriggers.length > 0) return fail('triggers', undefined, `the store's append-only triggers (${missingTriggers.join(', ')}) were dropped`);
    const result: ChainCheck = { ok: true, checked, ...this.summary(printed) };
    return result;
  }

  /** The anchored head, and the check of a printed anchor. */
  private summary(printed: string | undefined): Pick<ChainCheck, 'anchor' | 'printed'> {
    const out: Pick<ChainCheck, 'anchor' | 'printed'> = {};
    const head = this.head();
    if (head) out.anchor = head;
    if (printed !== undefined) out.printed = this.checkPrinted(printed);
    return out;
  }

  private checkPrinted(text: string): NonNullable<ChainCheck['printed']> {
    const m = /^([1-9][0-9]{0,15}):([0-9a-f]{8,64})$/.exec(text.trim().toLowerCase());
    if (!m) return { text, matches: false, problem: 'a printed anchor reads "record:digest", for example 42:1a2b3c4d5e6f7a8b' };
    if (!this.anchor || this.anchorProblem) return { text, matches: false, problem: this.anchorProblem ?? 'this store keeps no anchor' };
    const seq = Number(m[1]);
    const row = this.db.prepare(`SELECT hash FROM audit WHERE seq = ?`).get(seq) as { hash: string } | undefined;
    if (!row) return { text, matches: false, problem: `the store has no record ${seq}` };
    const matches = this.anchor.mac(seq, row.hash).startsWith(m[2] as string);
    return matches ? { text, matches } : { text, matches, problem: `record ${seq} of the store is not the record printed: it was changed since` };
  }

  private queueFlush(): void {
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      // A transaction opened by hand (BEGIN) may span ticks: wait for it to end.
      if (this.db.inTransaction) setImmediate(() => this.queueFlush());
      else this.flush();
    });
  }

  /** Anchors this process's committed records. Those whose transaction rolled back are not in the store: they are dropped. */
  private flush(): void {
    if (this.pending.size === 0 || !this.anchor) return;
    const rows = this.db.prepare(`SELECT seq, hash, prev_hash FROM audit WHERE seq > ? ORDER BY seq`).all(this.anchored.seq) as { seq: number; hash: string; prev_hash: string }[];
    const mine: { seq: number; hash: string }[] = [];
    let prev = this.anchored.hash;
    // Only records this process appended, in an unbroken chain from the anchored head: a record slipped in by someone else is never anchored.
    for (const row of rows) {
      if (this.pending.get(row.seq) !== row.hash || row.prev_hash !== prev) break;
      mine.push(row);
      prev = row.hash;
    }
    try {
      this.anchorRows(mine);
      this.pending.clear();
      this.writeFailure = undefined;
    } catch (err) {
      // Kept pending: anchored by the next write that succeeds; verify reports them meanwhile.
      this.writeFailure = err instanceof Error ? err.message : String(err);
    }
  }

  private anchorRows(rows: readonly { seq: number; hash: string }[]): void {
    if (!this.anchor || rows.length === 0) return;
    this.anchor.write(rows);
    const last = rows[rows.length - 1] as { seq: number; hash: string };
    this.anchored = { seq: last.seq, hash: last.hash };
  }
}

/** A record's hash: its content and its predecessor's hash (the chain's one formula). */
export function hashOf(prevHash: string, r: { seq: number; at: string; actor: string; action: string; examId?: string; candidateId?: string; labId?: string; detail: string }): string {
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
