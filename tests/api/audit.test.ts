import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ExcelJS from 'exceljs';
import { createApp } from '../../src/daemon/app.js';
import { loadConfig, storeFile } from '../../src/daemon/config.js';
import { Daemon } from '../../src/daemon/daemon.js';
import { daemonConfigSchema } from '../../src/daemon/settings.js';
import { createLogger } from '../../src/util/log.js';
import { tamper } from '../fakes/audit-tamper.js';
import { api, destroyAllLabs, JURY, OPERATOR, TEST_CONFIG } from './helpers.js';
import { SMALL_SCENARIO } from './scenarios.js';

/** A daemon over a data directory that outlives it, so that it can be started again on the same store and anchor. */
async function serve(dataDir: string): Promise<{ daemon: Daemon; url: string }> {
  const log = createLogger({ level: process.env.EXAMLAB_TEST_LOG ?? 'silent' });
  const daemon = new Daemon(createApp(loadConfig({ dataDir }), log), daemonConfigSchema.parse(TEST_CONFIG), log);
  const started = await daemon.start();
  return { daemon, url: `http://127.0.0.1:${started.http.port}` };
}

/**
 * The audit chain against its anchor through the API: every export shows
 * the anchored head, and a chain rewritten behind the daemon's back is
 * reported with the record that broke, before and after a restart. No lab
 * is built (the exam starts by hand and is never started).
 */
describe('GET /api/audit says which record broke; exports carry the anchor', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'examlab-api-'));
  let d: { daemon: Daemon; url: string } | undefined;
  let examId: string;
  let printed: string;
  const jury = () => api((d as { url: string }).url, JURY);

  beforeAll(async () => {
    d = await serve(dataDir);
    const created = await api(d.url, OPERATOR).post('/api/exams').send({ scenarioYaml: SMALL_SCENARIO, candidates: [{ id: 'alice', name: 'Alice' }], start: 'manual' });
    expect(created.status).toBe(201);
    examId = created.body.exam.id;
  }, 180_000);
  afterAll(async () => {
    await d?.daemon.stop();
    await destroyAllLabs(dataDir);
  }, 180_000);

  test('the results JSON, CSV (header), XLSX (exam sheet) and the printable report carry the anchored head, which GET /api/audit takes back', async () => {
    const audit = (await jury().get('/api/audit')).body;
    expect(audit.chain).toMatchObject({ ok: true, anchor: { seq: audit.records.at(-1).seq, text: expect.stringMatching(/^\d+:[0-9a-f]{16}$/) } });
    printed = audit.chain.anchor.text;

    expect((await jury().get(`/api/exams/${examId}/results`)).body.audit).toEqual({ anchor: audit.chain.anchor });
    const csv = await jury().get(`/api/exams/${examId}/results.csv`);
    expect(csv.status).toBe(200);
    expect(csv.headers['x-examlab-audit-anchor']).toBe(printed);
    const xlsx = await jury()
      .get(`/api/exams/${examId}/results.xlsx`)
      .buffer(true)
      .parse((res, done) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => done(null, Buffer.concat(chunks)));
      });
    const book = new ExcelJS.Workbook();
    await book.xlsx.load(xlsx.body as Parameters<typeof book.xlsx.load>[0]);
    const about: string[] = [];
    book.getWorksheet('Épreuve')?.eachRow((row) => about.push(String(row.getCell(2).value)));
    expect(about.at(-1)).toContain(printed);
    expect((await jury().get(`/api/exams/${examId}/candidates/alice/report.html`)).text).toContain(`Ancre du journal d&#39;audit: ${printed}`);

    expect((await jury().get(`/api/audit?anchor=${printed}`)).body.chain.printed).toEqual({ text: printed, matches: true });
    const bad = await jury().get('/api/audit?anchor=yesterday');
    expect(bad.status).toBe(400);
    expect(bad.body.details).toEqual([{ where: 'query.anchor', message: expect.stringMatching(/record:digest/) }]);
  });

  test('the chain rewritten behind the daemon (triggers dropped, every hash recomputed): the record is named, and still after a restart', async () => {
    const records = (await jury().get('/api/audit')).body.records as { seq: number; action: string }[];
    const created = records.find((r) => r.action === 'exam.create')?.seq as number;
    tamper.rewriteFrom(storeFile(loadConfig({ dataDir })), created, { scenario: 'another', candidates: 30 });

    const expectBroken = async () => {
      const { chain } = (await jury().get('/api/audit')).body;
      expect(chain).toMatchObject({ ok: false, kind: 'rewritten', brokenAt: created, problem: expect.stringContaining(`record ${created} is not the record anchored under its number`) });
      // The head printed on the exports earlier no longer matches the store.
      expect((await jury().get(`/api/audit?anchor=${printed}`)).body.chain.printed).toMatchObject({ matches: false });
    };
    await expectBroken();
    await d?.daemon.stop();
    d = await serve(dataDir);
    await expectBroken();
  }, 180_000);
});
