import { chmodSync } from 'node:fs';
import { makeDirs } from './dirs.js';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';
import type { StorageFullError } from './errors.js';
import { belowFloorError, freeSpace, storageError, STORE_FLOOR_BYTES, type FreeSpace } from './storage.js';

export type Db = Database.Database;

/**
 * Schema versions, applied in order; the database records how far it got
 * (PRAGMA user_version). Never edit a released step: add a new one.
 */
const MIGRATIONS: string[] = [
  `CREATE TABLE labs (
     id TEXT PRIMARY KEY,
     exam_id TEXT,
     candidate_id TEXT,
     scenario_id TEXT NOT NULL,
     scenario_file TEXT NOT NULL,
     scenario_text TEXT NOT NULL,
     scenario_hash TEXT NOT NULL,
     state TEXT NOT NULL,
     state_detail TEXT,
     seed TEXT NOT NULL,
     variables TEXT NOT NULL,
     topology TEXT,
     secrets TEXT NOT NULL,
     created_at TEXT NOT NULL,
     updated_at TEXT NOT NULL
   );
   CREATE INDEX labs_exam ON labs (exam_id);
   CREATE TABLE lab_events (
     id INTEGER PRIMARY KEY AUTOINCREMENT,
     lab_id TEXT NOT NULL REFERENCES labs (id),
     at TEXT NOT NULL,
     from_state TEXT,
     to_state TEXT NOT NULL,
     detail TEXT
   );
   CREATE INDEX lab_events_lab ON lab_events (lab_id);
   CREATE TABLE runs (
     id TEXT PRIMARY KEY,
     lab_id TEXT NOT NULL REFERENCES labs (id),
     purpose TEXT NOT NULL,
     status TEXT NOT NULL,
     started_at TEXT NOT NULL,
     finished_at TEXT,
     score TEXT,
     error TEXT
   );
   CREATE INDEX runs_lab ON runs (lab_id);
   CREATE TABLE check_results (
     run_id TEXT NOT NULL REFERENCES runs (id),
     position INTEGER NOT NULL,
     check_id TEXT NOT NULL,
     status TEXT NOT NULL,
     points REAL NOT NULL,
     max_points REAL NOT NULL,
     result TEXT NOT NULL,
     PRIMARY KEY (run_id, check_id)
   );`,
  // The exam daemon: exams and their candidates, jury marks, intervention reports,
  // API tokens (hashed), the hash-chained audit log and the daemon's own heartbeat.
  `CREATE TABLE exams (
     id TEXT PRIMARY KEY,
     title TEXT NOT NULL,
     scenario_id TEXT NOT NULL,
     scenario_file TEXT NOT NULL,
     scenario_text TEXT NOT NULL,
     mode TEXT NOT NULL,
     duration_ms INTEGER NOT NULL,
     start_policy TEXT NOT NULL,
     start_at TEXT,
     auto_freeze INTEGER NOT NULL,
     keep_labs INTEGER NOT NULL,
     status TEXT NOT NULL,
     created_by TEXT NOT NULL,
     created_at TEXT NOT NULL,
     started_at TEXT,
     ended_at TEXT,
     updated_at TEXT NOT NULL
   );
   CREATE TABLE candidates (
     exam_id TEXT NOT NULL REFERENCES exams (id),
     id TEXT NOT NULL,
     position INTEGER NOT NULL,
     name TEXT NOT NULL,
     email TEXT,
     phase TEXT NOT NULL,
     detail TEXT,
     seed TEXT NOT NULL,
     token_hash TEXT NOT NULL UNIQUE,
     lab_id TEXT REFERENCES labs (id),
     revoked INTEGER NOT NULL DEFAULT 0,
     extension_ms INTEGER NOT NULL DEFAULT 0,
     offered_at TEXT,
     deadline TEXT,
     attempts INTEGER NOT NULL DEFAULT 0,
     final_run_id TEXT REFERENCES runs (id),
     updated_at TEXT NOT NULL,
     PRIMARY KEY (exam_id, id)
   );
   CREATE TABLE marks (
     exam_id TEXT NOT NULL,
     candidate_id TEXT NOT NULL,
     criterion_id TEXT NOT NULL,
     level TEXT NOT NULL,
     points REAL NOT NULL,
     comment TEXT,
     marked_by TEXT NOT NULL,
     marked_at TEXT NOT NULL,
     PRIMARY KEY (exam_id, candidate_id, criterion_id),
     FOREIGN KEY (exam_id, candidate_id) REFERENCES candidates (exam_id, id)
   );
   CREATE TABLE reports (
     exam_id TEXT NOT NULL,
     candidate_id TEXT NOT NULL,
     diagnosis TEXT NOT NULL,
     actions TEXT NOT NULL,
     result TEXT NOT NULL,
     revision INTEGER NOT NULL,
     submitted_at TEXT NOT NULL,
     PRIMARY KEY (exam_id, candidate_id),
     FOREIGN KEY (exam_id, candidate_id) REFERENCES candidates (exam_id, id)
   );
   CREATE TABLE api_tokens (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     role TEXT NOT NULL,
     hash TEXT NOT NULL UNIQUE,
     source TEXT NOT NULL,
     created_at TEXT NOT NULL,
     revoked_at TEXT
   );
   CREATE TABLE audit (
     seq INTEGER PRIMARY KEY,
     at TEXT NOT NULL,
     actor TEXT NOT NULL,
     action TEXT NOT NULL,
     exam_id TEXT,
     candidate_id TEXT,
     lab_id TEXT,
     detail TEXT NOT NULL,
     prev_hash TEXT NOT NULL,
     hash TEXT NOT NULL
   );
   CREATE INDEX audit_exam ON audit (exam_id);
   CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
   CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
   CREATE TABLE daemon_state (
     key TEXT PRIMARY KEY,
     value TEXT NOT NULL
   );`,
  // The time zone an exam's dates are shown in (IANA name); older exams use the host's.
  `ALTER TABLE exams ADD COLUMN time_zone TEXT;`,
  // Spare labs kept ready per exam, so that a reset is a swap.
  `ALTER TABLE exams ADD COLUMN spares INTEGER NOT NULL DEFAULT 0;`,
  // The lab host a lab lives on (its Docker engine), when the daemon has several.
  `ALTER TABLE labs ADD COLUMN host TEXT;`,
];

/**
 * Opens (creating if needed) the store, private to its owner, and brings
 * its schema up to date. A store in a file refuses every write while its
 * filesystem has less than the floor free, and its failures of the disk
 * (full, I/O) come out as StorageFullError / StorageError (see guardDisk).
 */
export function openDatabase(file: string, migrations: readonly string[] = MIGRATIONS, options: { freeSpace?: (dir: string) => FreeSpace | undefined } = {}): Db {
  if (file === ':memory:') return prepareSchema(new Database(file), migrations);
  const dir = dirname(file);
  makeDirs(dir);
  try {
    const db = new Database(file);
    chmodSync(file, 0o600);
    return guardDisk(prepareSchema(db, migrations), dir, options.freeSpace ?? freeSpace);
  } catch (err) {
    throw storageError(err, dir);
  }
}

function prepareSchema(db: Db, migrations: readonly string[]): Db {
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = FULL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  const current = db.pragma('user_version', { simple: true }) as number;
  for (let version = current; version < migrations.length; version++) {
    db.transaction(() => {
      db.exec(migrations[version] as string);
      db.pragma(`user_version = ${version + 1}`);
    })();
  }
  return db;
}

/**
 * The store's side of a full disk, in one place for every store on it.
 * A write that starts (a statement outside a transaction, a transaction,
 * an exec) first looks at the free space of the store's filesystem: under
 * STORE_FLOOR_BYTES it is refused before SQLite is asked. Whatever SQLite
 * or the system then says of the disk (SQLITE_FULL, SQLITE_IOERR…, ENOSPC)
 * is mapped by storageError. SQLite rolls the transaction back: a refused
 * change leaves nothing behind, and the store stays whole.
 */
function guardDisk(db: Db, dir: string, read: (dir: string) => FreeSpace | undefined): Db {
  const guard: Guard = { dir, read, underFloor: false };
  guards.set(db, guard);
  const room = () => {
    if (db.inTransaction || guard.underFloor) return; // checked when the transaction began
    const refusal = refusalOf(guard);
    if (refusal) throw refusal;
  };
  const guarded = <A extends unknown[], R>(call: (...args: A) => R, write: boolean) =>
    function guarded(this: unknown, ...args: A): R {
      if (write) room();
      try {
        return call.apply(this, args);
      } catch (err) {
        throw storageError(err, dir);
      }
    };
  const prepare = db.prepare.bind(db);
  db.prepare = ((source: string) => {
    const statement = prepare(source);
    statement.run = guarded(statement.run.bind(statement), true);
    statement.get = guarded(statement.get.bind(statement), false);
    statement.all = guarded(statement.all.bind(statement), false);
    statement.iterate = guarded(statement.iterate.bind(statement), false);
    return statement;
  }) as Db['prepare'];
  db.exec = guarded(db.exec.bind(db), true);
  const transaction = db.transaction.bind(db);
  db.transaction = ((fn: (...args: unknown[]) => unknown) => {
    const made = transaction(fn);
    const wrapped = guarded(made, true);
    for (const kind of ['default', 'deferred', 'immediate', 'exclusive'] as const) Object.defineProperty(wrapped, kind, { value: guarded(made[kind], true) });
    return wrapped;
  }) as Db['transaction'];
  return db;
}

interface Guard {
  dir: string;
  /** The free space of the store's filesystem (statfs; a fake in tests). */
  read: (dir: string) => FreeSpace | undefined;
  /** A write let through under the floor is running (see underFloor). */
  underFloor: boolean;
}

const guards = new WeakMap<Db, Guard>();

function refusalOf(guard: Guard): StorageFullError | undefined {
  const space = guard.read(guard.dir);
  return space && space.freeBytes < STORE_FLOOR_BYTES ? belowFloorError(guard.dir, space) : undefined;
}

/** Why the store refuses writes now (under the floor), or undefined when it takes them (always, for a store in memory). */
export function storeRefusal(db: Db): StorageFullError | undefined {
  const guard = guards.get(db);
  return guard ? refusalOf(guard) : undefined;
}

/**
 * Runs one small write even under the floor, for what must not wait for
 * room: the heartbeat (lost, a full disk would read as the daemon being
 * away at its next start, and the candidates would get that time back).
 * SQLite may still refuse it when the disk has no room left at all.
 */
export function underFloor<T>(db: Db, write: () => T): T {
  const guard = guards.get(db);
  if (!guard || guard.underFloor) return write();
  guard.underFloor = true;
  try {
    return write();
  } finally {
    guard.underFloor = false;
  }
}

export function now(): string {
  return new Date().toISOString();
}
