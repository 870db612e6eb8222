import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { toHttpError } from '../../../src/http/errors.js';
import { Recordings, type LineWriter } from '../../../src/terminal/index.js';
import { openDatabase } from '../../../src/util/database.js';
import { StorageError, StorageFullError } from '../../../src/util/errors.js';
import { appendWhole, storageError, writeFileWhole } from '../../../src/util/storage.js';
import { formatBytes } from '../../../src/util/units.js';

const errno = (code: string) => Object.assign(new Error(`${code}: something, write`), { code });

describe('a full disk, said once and the same way everywhere', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'examlab-storage-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test("SQLite's and the system's words for a full disk become a StorageFullError naming the directory and its free space", () => {
    for (const raw of [new Database.SqliteError('database or disk is full', 'SQLITE_FULL'), errno('ENOSPC'), errno('EDQUOT')]) {
      const mapped = storageError(raw, dir);
      expect(mapped).toBeInstanceOf(StorageFullError);
      const err = mapped as StorageFullError;
      expect(err.message).toMatch(new RegExp(`^the data directory's filesystem is full \\(.+ free of .+, at ${dir}\\): nothing was saved; free space on it$`));
      expect(err.details).toEqual([{ where: dir, message: `${(raw as { code: string }).code}: ${raw.message}` }]);
      expect(err.cause).toBe(raw);
    }
  });

  test('an I/O error with room left is a StorageError, not a full disk; anything else is left alone', () => {
    const io = storageError(new Database.SqliteError('disk I/O error', 'SQLITE_IOERR_WRITE'), dir);
    expect(io).toBeInstanceOf(StorageError);
    expect(io).not.toBeInstanceOf(StorageFullError);
    expect((io as Error).message).toMatch(new RegExp(`^cannot write to the data directory ${dir}: disk I/O error \\(.+ free of .+\\)$`));
    for (const other of [new Database.SqliteError('UNIQUE constraint failed', 'SQLITE_CONSTRAINT_UNIQUE'), errno('EACCES'), new Error('plain'), 'text']) {
      expect(storageError(other, dir)).toBe(other);
    }
  });

  test('over HTTP: 507 for a full disk, 503 for another disk error, in the usual {error, message}', () => {
    const full = storageError(errno('ENOSPC'), dir);
    expect(toHttpError(full)).toEqual({ status: 507, body: { error: 'insufficient_storage', message: (full as Error).message, details: (full as StorageError).details } });
    expect(toHttpError(storageError(errno('EIO'), dir)).status).toBe(503);
    expect(toHttpError(storageError(errno('EIO'), dir)).body.error).toBe('storage_unavailable');
  });

  test('sizes for people', () => {
    expect([0, 512, 12 * 1024, 40.5 * 1024 ** 2, 2 * 1024 ** 3].map(formatBytes)).toEqual(['0 B', '512 B', '12.0 KiB', '40.5 MiB', '2.0 GiB']);
  });

  test('a file is written whole or the old one is kept; nothing half-written is left beside it', () => {
    const file = join(dir, 'daemon.json');
    writeFileWhole(file, 'first\n');
    writeFileWhole(file, 'second\n');
    expect(readFileSync(file, 'utf8')).toBe('second\n');
    expect(() => writeFileWhole(join(dir, 'missing', 'x.json'), 'y')).toThrow(/ENOENT/);
    expect(readdirSync(dir)).toEqual(['daemon.json']);
  });
});

describe("the store's writes on a full disk", () => {
  let dir: string;
  let db: ReturnType<typeof openDatabase>;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'examlab-store-full-'));
    db = openDatabase(join(dir, 'examlab.db'), ['CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT NOT NULL);']);
    for (let i = 0; i < 20; i++) db.prepare('INSERT INTO t (v) VALUES (?)').run('x'.repeat(100));
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** SQLite's own SQLITE_FULL, without filling a disk: the file may not grow past the pages it has. */
  const fullFile = () => db.pragma(`max_page_count = ${db.pragma('page_count', { simple: true }) as number}`);

  test('a statement refused by SQLITE_FULL is a StorageFullError naming the directory; the store stays whole and readable', () => {
    fullFile();
    expect(() => db.prepare('INSERT INTO t (v) VALUES (?)').run('y'.repeat(100_000))).toThrow(StorageFullError);
    expect(() => db.prepare('INSERT INTO t (v) VALUES (?)').run('y'.repeat(100_000))).toThrow(new RegExp(`is full \\(.+, at ${dir}\\)`));
    expect((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n).toBe(20);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  });

  test('a transaction refused whole: nothing of it is kept; writes go on once there is room', () => {
    fullFile();
    const both = db.transaction(() => {
      db.prepare('UPDATE t SET v = ? WHERE id = 1').run('changed');
      db.prepare('INSERT INTO t (v) VALUES (?)').run('y'.repeat(100_000));
    });
    expect(() => both.immediate()).toThrow(StorageFullError);
    expect(db.inTransaction).toBe(false);
    expect((db.prepare('SELECT v FROM t WHERE id = 1').get() as { v: string }).v).toBe('x'.repeat(100));
    db.pragma('max_page_count = 1000000');
    both.immediate();
    expect((db.prepare('SELECT count(*) AS n FROM t').get() as { n: number }).n).toBe(21);
    expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
  });
});

describe('a recording while the disk refuses its writes', () => {
  let dir: string;
  let full = false;
  const writes: LineWriter = (fd, data, size, at) => {
    if (full) throw storageError(errno('ENOSPC'), at);
    appendWhole(fd, data, size, at);
  };
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'examlab-rec-full-'));
    full = false;
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const events = (file: string) =>
    readFileSync(file, 'utf8')
      .split('\n')
      .filter(Boolean)
      .slice(1)
      .map((l) => (JSON.parse(l) as [number, string, string])[2]);

  test('the session goes on: its events are held, in order, and written once the disk takes them', () => {
    const recordings = new Recordings(dir, { write: writes });
    const rec = recordings.start({ examId: 'e1', candidateId: 'bob', machine: 'pc', via: 'ssh', cols: 80, rows: 24, term: 'xterm' });
    rec.output(Buffer.from('before\n'));
    full = true;
    for (const line of ['one\n', 'two\n', 'three\n']) expect(() => rec.output(Buffer.from(line))).not.toThrow();
    expect(events(rec.file)).toEqual(['before\n']);
    full = false;
    rec.end();
    expect(rec.settled).toBe(true);
    expect(events(rec.file)).toEqual(['before\n', 'one\n', 'two\n', 'three\n']);
    expect(recordings.list('e1', 'bob')).toMatchObject([{ id: rec.id, live: false, endedAt: expect.any(String) }]);
  });

  test('ended while the disk is full: written when it takes writes again, its description too', () => {
    const recordings = new Recordings(dir, { write: writes });
    const rec = recordings.start({ examId: 'e1', candidateId: 'bob', machine: 'pc', via: 'ssh', cols: 80, rows: 24, term: 'xterm' });
    full = true;
    rec.output(Buffer.from('held\n'));
    rec.end();
    expect(rec.settled).toBe(false);
    expect(events(rec.file)).toEqual([]);
    full = false;
    expect(rec.settle()).toBe(true);
    expect(events(rec.file)).toEqual(['held\n']);
    expect(recordings.list('e1', 'bob')[0]?.endedAt).toEqual(expect.any(String));
  });

  test('a session whose recording cannot even start is refused, and leaves no file behind', () => {
    full = true;
    const recordings = new Recordings(dir, { write: writes });
    expect(() => recordings.start({ examId: 'e1', candidateId: 'bob', machine: 'pc', via: 'ssh', cols: 80, rows: 24, term: 'xterm' })).toThrow(StorageFullError);
    expect(readdirSync(join(dir, 'e1', 'bob'))).toEqual([]);
  });
});
