import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { expect, test } from '@jest/globals';
import { AuditLog } from '../../src/audit/index.js';
import { PACKAGE_ROOT } from '../../src/daemon/config.js';
import { openDatabase, type Db } from '../../src/util/database.js';

/**
 * What the audit anchor costs: an append in its own transaction (the store
 * synced, then the anchor file synced), and `GET /api/audit`'s check of the
 * whole chain, with and without the anchor, side by side on real files
 * (the store as the daemon opens it: WAL, synchronous FULL).
 */
const APPENDS = 200;
const RECORDS = 20_000;
const ROUNDS = 5;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

function fresh(anchored: boolean): { dir: string; db: Db; audit: AuditLog } {
  const dir = mkdtempSync(join(tmpdir(), 'examlab-bench-audit-'));
  const db = openDatabase(join(dir, 'examlab.db'));
  const audit = new AuditLog(db, anchored ? { keyFile: join(dir, 'audit.key'), anchorFile: join(dir, 'audit.anchor') } : undefined);
  return { dir, db, audit };
}

test('the audit anchor: append and verify, with and without', async () => {
  const ms = { appendPlain: [] as number[], appendAnchored: [] as number[], verifyPlain: [] as number[], verifyAnchored: [] as number[], verifyAnchoredFirst: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    // Interleaved, so both see the same machine load.
    for (const anchored of [false, true]) {
      const { dir, db, audit } = fresh(anchored);
      try {
        let start = performance.now();
        for (let i = 0; i < APPENDS; i++) audit.append({ actor: 'operator:bench', action: 'mark.set', examId: 'e1', candidateId: `c${i % 30}`, detail: { points: i } });
        (anchored ? ms.appendAnchored : ms.appendPlain).push((performance.now() - start) / APPENDS);
        // The rest in one transaction, as a busy exam's records would be (one anchor write, once committed).
        db.transaction(() => {
          for (let i = APPENDS; i < RECORDS; i++) audit.append({ actor: 'system', action: 'lab.ready', examId: 'e1', candidateId: `c${i % 30}`, labId: `l${i}` });
        })();
        await Promise.resolve();
        start = performance.now();
        const first = audit.verify();
        const firstMs = performance.now() - start;
        start = performance.now();
        const again = audit.verify();
        const againMs = performance.now() - start;
        expect(first).toMatchObject({ ok: true, checked: RECORDS });
        expect(again).toMatchObject({ ok: true, checked: RECORDS });
        if (anchored) {
          ms.verifyAnchoredFirst.push(firstMs);
          ms.verifyAnchored.push(againMs);
        } else ms.verifyPlain.push(againMs);
      } finally {
        db.close();
        rmSync(dir, { recursive: true, force: true });
      }
    }
  }
  const figures = {
    rounds: ROUNDS,
    records: RECORDS,
    appendPlainMedianMs: +median(ms.appendPlain).toFixed(2),
    appendAnchoredMedianMs: +median(ms.appendAnchored).toFixed(2),
    verifyPlainMedianMs: Math.round(median(ms.verifyPlain)),
    verifyAnchoredFirstMedianMs: Math.round(median(ms.verifyAnchoredFirst)),
    verifyAnchoredMedianMs: Math.round(median(ms.verifyAnchored)),
    ms,
  };
  mkdirSync(join(PACKAGE_ROOT, 'build/bench'), { recursive: true });
  writeFileSync(join(PACKAGE_ROOT, 'build/bench/audit.json'), `${JSON.stringify(figures, null, 2)}\n`);
  const { ms: _raw, ...summary } = figures;
  process.stdout.write(`audit bench: ${JSON.stringify(summary)}\n`);
}, 600_000);
