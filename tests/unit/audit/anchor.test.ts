import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jest } from '@jest/globals';
import { AuditAnchor } from '../../../src/audit/anchor.js';
import { AuditLog, LATE_ANCHOR_LIMIT } from '../../../src/audit/audit-log.js';
import { openDatabase, type Db } from '../../../src/util/database.js';
import { tamper } from '../../fakes/audit-tamper.js';

/**
 * The audit chain against its anchor, on a real SQLite file in a temporary
 * data directory: every way of changing the store behind the daemon's back
 * that keeps the store's own chain intact is found, and named.
 */
describe('the audit anchor', () => {
  let dir: string;
  let db: Db | undefined;
  const store = () => join(dir, 'examlab.db');
  const files = () => ({ keyFile: join(dir, 'audit.key'), anchorFile: join(dir, 'audit.anchor') });
  /** A daemon start: the store opened, the audit log over it and its anchor. */
  const open = () => {
    db?.close();
    db = openDatabase(store());
    return new AuditLog(db, files());
  };
  const close = () => {
    db?.close();
    db = undefined;
  };
  const write = (audit: AuditLog, n: number) => {
    for (let i = 0; i < n; i++) audit.append({ actor: 'operator:ana', action: 'mark.set', candidateId: `c${i}`, detail: { points: i } });
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'examlab-anchor-'));
  });
  afterEach(() => {
    close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a key is made at first start, beside the store and private; every record is anchored as it is written', () => {
    const audit = open();
    write(audit, 5);
    expect(statSync(files().keyFile).mode & 0o777).toBe(0o600);
    expect(statSync(files().anchorFile).mode & 0o777).toBe(0o600);
    expect(readFileSync(files().anchorFile, 'utf8').trim().split('\n')).toHaveLength(5);
    // The key is nowhere in the store.
    const key = readFileSync(files().keyFile, 'utf8').trim();
    expect(readFileSync(store()).includes(Buffer.from(key))).toBe(false);
    const check = audit.verify();
    expect(check).toMatchObject({ ok: true, checked: 5, anchor: { seq: 5, digest: expect.stringMatching(/^[0-9a-f]{16}$/) } });
    expect(check.anchor?.text).toBe(`5:${check.anchor?.digest}`);
  });

  test('the tail cut: records missing after the last one left, named', () => {
    write(open(), 6);
    close();
    tamper.cutAfter(store(), 4);
    const check = open().verify();
    expect(check).toMatchObject({ ok: false, kind: 'missing', missingAfter: 4, brokenAt: 5 });
    expect(check.problem).toMatch(/records 5 to 6 are missing: the store ends at record 4 but the anchor holds 6 records/);
  });

  test('the database rolled back to a copy taken earlier: older than the anchor', () => {
    write(open(), 3);
    close(); // the copy is the file itself, as a backup tool takes it (closed: no WAL left aside)
    copyFileSync(store(), join(dir, 'copy.db'));
    write(open(), 4);
    close();
    copyFileSync(join(dir, 'copy.db'), store());
    for (const side of ['-wal', '-shm']) if (existsSync(store() + side)) unlinkSync(store() + side);
    const audit = open();
    expect(audit.verify()).toMatchObject({ ok: false, kind: 'missing', missingAfter: 3, problem: expect.stringMatching(/the database is an older copy than the anchor/) });
    // Written again from there, the rolled-back store still disagrees with the anchor, at the first record it rewrote.
    write(audit, 2);
    expect(audit.verify()).toMatchObject({ ok: false, kind: 'rewritten', brokenAt: 4 });
  });

  test('the triggers dropped and every hash recomputed from an edited record: that record is named', () => {
    write(open(), 6);
    close();
    tamper.rewriteFrom(store(), 3, { points: 20 });
    const check = open().verify();
    expect(check).toMatchObject({ ok: false, kind: 'rewritten', brokenAt: 3, checked: 3 });
    expect(check.problem).toMatch(/^record 3 is not the record anchored under its number/);
  });

  test('a record edited in place: that record is named', () => {
    write(open(), 4);
    close();
    tamper.edit(store(), 2, { points: 99 });
    expect(open().verify()).toMatchObject({ ok: false, kind: 'altered', brokenAt: 2, problem: 'record 2 was altered after it was written' });
  });

  test('the triggers dropped and left so: said, though no record changed', () => {
    const audit = open();
    write(audit, 2);
    db?.exec('DROP TRIGGER audit_no_delete');
    expect(audit.verify()).toMatchObject({ ok: false, kind: 'triggers', problem: expect.stringMatching(/audit_no_delete/) });
  });

  test('a restarted daemon keeps verifying and anchoring', () => {
    write(open(), 3);
    close();
    const again = open();
    expect(again.verify()).toMatchObject({ ok: true, checked: 3, anchor: { seq: 3 } });
    write(again, 2);
    close();
    const third = open();
    expect(third.resume()).toMatchObject({ ok: true, checked: 5, anchor: { seq: 5 } });
    tamper.rewriteFrom(store(), 5, { points: -1 });
    expect(third.verify()).toMatchObject({ ok: false, brokenAt: 5, kind: 'rewritten' });
  });

  test('inside a transaction: anchored once it commits, never when it rolls back', async () => {
    const audit = open();
    write(audit, 1);
    expect(() =>
      db!.transaction(() => {
        audit.append({ actor: 's', action: 'lab.offer' });
        throw new Error('the change failed');
      })(),
    ).toThrow('the change failed');
    db!.transaction(() => audit.append({ actor: 's', action: 'lab.ready' }))();
    await Promise.resolve();
    const lines = readFileSync(files().anchorFile, 'utf8').trim().split('\n');
    expect(lines).toHaveLength(2);
    expect(audit.verify()).toMatchObject({ ok: true, checked: 2 });
  });

  test('the anchor file edited, or cut while the daemon runs: said', () => {
    const audit = open();
    write(audit, 4);
    expect(audit.verify().ok).toBe(true); // what was read is remembered: an edit made after must still be found
    const text = readFileSync(files().anchorFile, 'utf8');
    const lines = text.trim().split('\n');
    // A line rewritten without the key: its HMAC does not match.
    const forged = lines.map((l, i) => (i === 2 ? l.replace(/ ([0-9a-f]{64}) /, ` ${'e'.repeat(64)} `) : l));
    writeFileSync(files().anchorFile, `${forged.join('\n')}\n`);
    expect(audit.verify()).toMatchObject({ ok: false, kind: 'anchor', problem: expect.stringMatching(/line 3 of the anchor file \(record 3\) is not signed with this daemon's key/) });
    // Cut: this daemon knows it anchored 4 records.
    writeFileSync(files().anchorFile, `${lines.slice(0, 2).join('\n')}\n`);
    expect(audit.verify()).toMatchObject({ ok: false, kind: 'anchor', problem: expect.stringMatching(/the anchor file ends at record 2, but this daemon anchored up to record 4/) });
    // A line removed from the middle.
    writeFileSync(files().anchorFile, `${[lines[0], lines[1], lines[3]].join('\n')}\n`);
    expect(audit.verify()).toMatchObject({ ok: false, kind: 'anchor', brokenAt: 3, problem: expect.stringMatching(/skips from record 2 to 4/) });
  });

  test('the key missing, or replaced, after a restart: said, and the daemon still runs', () => {
    write(open(), 2);
    close();
    const key = readFileSync(files().keyFile, 'utf8');
    unlinkSync(files().keyFile);
    const missing = open();
    expect(missing.verify()).toMatchObject({ ok: false, kind: 'anchor', problem: expect.stringMatching(/the audit key .*audit\.key is missing/) });
    missing.append({ actor: 's', action: 'daemon.start' }); // the exam goes on
    expect(missing.head()).toBeUndefined();
    close();
    writeFileSync(files().keyFile, `${'ab'.repeat(32)}\n`);
    expect(open().verify()).toMatchObject({ ok: false, kind: 'anchor', problem: expect.stringMatching(/the key was replaced/) });
    close();
    writeFileSync(files().keyFile, key);
    // The right key back: the record written meanwhile is not anchored, and said so.
    expect(open().verify()).toMatchObject({ ok: false, kind: 'unanchored', brokenAt: 3 });
  });

  test('the anchor file cannot be written: the append still succeeds (the exam goes on), and the check says why', () => {
    const audit = open();
    write(audit, 2);
    // The disk full: the anchor's write fails.
    const full = jest.spyOn(AuditAnchor.prototype, 'write').mockImplementation(() => {
      throw new Error('ENOSPC: no space left on device, write');
    });
    try {
      expect(audit.append({ actor: 's', action: 'lab.ready' }).seq).toBe(3);
      expect(audit.verify()).toMatchObject({ ok: false, kind: 'unanchored', brokenAt: 3, problem: expect.stringMatching(/record.* 3 to 3 are not anchored: the anchor could not be written \(ENOSPC/) });
    } finally {
      full.mockRestore();
    }
    // Room again: the next append anchors both.
    audit.append({ actor: 's', action: 'lab.offer' });
    expect(audit.verify()).toMatchObject({ ok: true, checked: 4 });
    // The anchor file replaced by a directory: said, no exception (GET /api/audit answers).
    rmSync(files().anchorFile);
    mkdirSync(files().anchorFile);
    expect(audit.append({ actor: 's', action: 'lab.ready' }).seq).toBe(5);
    expect(audit.verify()).toMatchObject({ ok: false, kind: 'anchor', problem: expect.stringMatching(/audit\.anchor cannot be read: EISDIR/) });
  });

  test('a printed anchor given back: it matches until the chain is rewritten under it', () => {
    const audit = open();
    write(audit, 4);
    const printed = audit.head()?.text as string;
    write(audit, 2);
    expect(audit.verify(printed).printed).toEqual({ text: printed, matches: true });
    expect(audit.verify(printed.replace(/:./, (m) => (m === ':0' ? ':1' : ':0'))).printed).toMatchObject({ matches: false });
    expect(audit.verify('999:0123456789abcdef').printed).toMatchObject({ matches: false, problem: 'the store has no record 999' });
    close();
    // Store and anchor both cut back by someone without the key: locally consistent, but the paper disagrees.
    tamper.rewriteFrom(store(), 2, { points: 7 });
    truncateSync(files().anchorFile, 0);
    const later = open();
    expect(later.verify(printed).printed).toMatchObject({ matches: false, problem: 'record 4 of the store is not the record printed: it was changed since' });
  });

  test('the daemon stopped between a commit and its anchor: anchored late at start, with a record saying so', () => {
    write(open(), 2);
    close();
    // The same store written without its anchor (what a kill between the two leaves).
    const raw = openDatabase(store());
    write(new AuditLog(raw), 2);
    raw.close();
    const audit = open();
    expect(audit.verify()).toMatchObject({ ok: false, kind: 'unanchored', brokenAt: 3 });
    expect(audit.resume()).toMatchObject({ ok: true, checked: 5, anchor: { seq: 5 } });
    expect(audit.list({ afterSeq: 4 })[0]).toMatchObject({ action: 'audit.anchor.late', detail: { from: 3, to: 4 } });
  });

  test('more records than a crash leaves unanchored are not laundered at start', () => {
    write(open(), 1);
    close();
    const raw = openDatabase(store());
    write(new AuditLog(raw), LATE_ANCHOR_LIMIT + 1);
    raw.close();
    expect(open().resume()).toMatchObject({ ok: false, kind: 'unanchored', brokenAt: 2 });
  });

  test('a store from before anchors: its records are anchored at the first start with a key', () => {
    const raw = openDatabase(store());
    write(new AuditLog(raw), 3);
    raw.close();
    const audit = open();
    expect(audit.verify()).toMatchObject({ ok: true, checked: 3, anchor: { seq: 3 } });
  });

  test('a line cut by a crash mid-write is dropped, not glued to the next one', () => {
    const audit = open();
    write(audit, 2);
    close();
    writeFileSync(files().anchorFile, `${readFileSync(files().anchorFile, 'utf8')}v1 3 abc`);
    const again = open();
    expect(again.verify()).toMatchObject({ ok: true, checked: 2 });
    write(again, 1);
    expect(again.verify()).toMatchObject({ ok: true, checked: 3 });
    expect(readFileSync(files().anchorFile, 'utf8').trim().split('\n')).toHaveLength(3);
  });
});
