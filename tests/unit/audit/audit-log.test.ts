import { AuditLog } from '../../../src/audit/audit-log.js';
import { openDatabase } from '../../../src/util/database.js';

describe('the audit log', () => {
  const fresh = () => {
    const db = openDatabase(':memory:');
    return { db, audit: new AuditLog(db) };
  };

  test('records chain to each other and verify', () => {
    const { audit } = fresh();
    const first = audit.append({ actor: 'operator:ana', action: 'exam.create', examId: 'e1', detail: { candidates: 3 } });
    const second = audit.append({ actor: 'system', action: 'lab.offer', examId: 'e1', candidateId: 'alice', labId: 'l1' });
    expect(first.prevHash).toBe('0'.repeat(64));
    expect(second.prevHash).toBe(first.hash);
    expect(audit.verify()).toEqual({ ok: true, checked: 2 });
    expect(audit.list({ candidateId: 'alice' }).map((r) => r.action)).toEqual(['lab.offer']);
    expect(audit.list({ afterSeq: 1 }).map((r) => r.seq)).toEqual([2]);
  });

  test('is append-only: updates and deletes are refused by the store', () => {
    const { db, audit } = fresh();
    audit.append({ actor: 'a', action: 'x' });
    expect(() => db.prepare(`UPDATE audit SET actor = 'b'`).run()).toThrow(/append-only/);
    expect(() => db.prepare(`DELETE FROM audit`).run()).toThrow(/append-only/);
  });

  test('an edit made behind its back is found, at the record edited', () => {
    const { db, audit } = fresh();
    for (const action of ['a', 'b', 'c']) audit.append({ actor: 'operator:ana', action, detail: { points: 1 } });
    db.exec(`DROP TRIGGER audit_no_update`);
    db.prepare(`UPDATE audit SET detail = '{"points":20}' WHERE seq = 2`).run();
    expect(audit.verify()).toEqual({ ok: false, checked: 2, brokenAt: 2, kind: 'altered', problem: 'record 2 was altered after it was written' });
  });

  test('a record removed from the middle breaks the chain after it', () => {
    const { db, audit } = fresh();
    for (const action of ['a', 'b', 'c']) audit.append({ actor: 's', action });
    db.exec(`DROP TRIGGER audit_no_delete`);
    db.prepare(`DELETE FROM audit WHERE seq = 2`).run();
    expect(audit.verify()).toMatchObject({ ok: false, brokenAt: 3 });
  });

  test('joins the caller\'s transaction: a failed change leaves no record', () => {
    const { db, audit } = fresh();
    expect(() =>
      db.transaction(() => {
        audit.append({ actor: 's', action: 'lab.offer' });
        throw new Error('the change failed');
      })(),
    ).toThrow('the change failed');
    expect(audit.list()).toEqual([]);
  });
});
