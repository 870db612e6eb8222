import { chmodSync, mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

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
];

/** Opens (creating if needed) the store, private to its owner, and brings its schema up to date. */
export function openDatabase(file: string, migrations: readonly string[] = MIGRATIONS): Db {
  if (file !== ':memory:') {
    mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  }
  const db = new Database(file);
  if (file !== ':memory:') chmodSync(file, 0o600);
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

export function now(): string {
  return new Date().toISOString();
}
