import Database from 'better-sqlite3';
import { hashOf } from '../../src/audit/index.js';

/**
 * What someone who can write the SQLite file (and has read examlab's
 * source) does to the audit log behind the daemon's back: each opens the
 * file on its own connection, as the sqlite3 tool would.
 */
export const tamper = {
  /** Drops the append-only triggers, edits record `seq`'s detail, and recomputes every hash from there on so the chain agrees with itself again; the triggers are put back. */
  rewriteFrom(file: string, seq: number, detail: Record<string, unknown>): void {
    withDb(file, (db) => {
      dropTriggers(db);
      db.prepare(`UPDATE audit SET detail = ? WHERE seq = ?`).run(JSON.stringify(detail), seq);
      const rows = db.prepare(`SELECT * FROM audit WHERE seq >= ? ORDER BY seq`).all(seq) as Row[];
      let prev = (db.prepare(`SELECT hash FROM audit WHERE seq = ?`).get(seq - 1) as { hash: string } | undefined)?.hash ?? '0'.repeat(64);
      for (const r of rows) {
        // Recomputed as examlab does (its source is known): the chain agrees with itself again.
        const hash = hashOf(prev, { seq: r.seq, at: r.at, actor: r.actor, action: r.action, examId: r.exam_id ?? undefined, candidateId: r.candidate_id ?? undefined, labId: r.lab_id ?? undefined, detail: r.detail });
        db.prepare(`UPDATE audit SET prev_hash = ?, hash = ? WHERE seq = ?`).run(prev, hash, r.seq);
        prev = hash;
      }
      restoreTriggers(db);
    });
  },
  /** Edits one record's detail in place, nothing recomputed. */
  edit(file: string, seq: number, detail: Record<string, unknown>): void {
    withDb(file, (db) => {
      dropTriggers(db);
      db.prepare(`UPDATE audit SET detail = ? WHERE seq = ?`).run(JSON.stringify(detail), seq);
      restoreTriggers(db);
    });
  },
  /** Deletes every record after `seq`: the chain that is left is intact. */
  cutAfter(file: string, seq: number): void {
    withDb(file, (db) => {
      dropTriggers(db);
      db.prepare(`DELETE FROM audit WHERE seq > ?`).run(seq);
      restoreTriggers(db);
    });
  },
};

interface Row {
  seq: number;
  at: string;
  actor: string;
  action: string;
  exam_id: string | null;
  candidate_id: string | null;
  lab_id: string | null;
  detail: string;
}

function withDb(file: string, change: (db: Database.Database) => void): void {
  const db = new Database(file);
  try {
    db.transaction(() => change(db))();
  } finally {
    db.close();
  }
}

function dropTriggers(db: Database.Database): void {
  db.exec(`DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;`);
}

function restoreTriggers(db: Database.Database): void {
  db.exec(`CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
    CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;`);
}
