import Dockerode from 'dockerode';
import { parse } from 'csv-parse/sync';
import ExcelJS from 'exceljs';
import type { Response } from 'superagent';
import { api, examObjects, JURY, OPERATOR, sshExec, startTestDaemon, waitFor, type TestDaemon } from './helpers.js';

interface Line {
  id: string;
  source: string;
  status: string;
  points: number;
  maxPoints: number;
  expected: string;
  actual: string;
}

/**
 * A real exam, as an exam centre runs it, through the API only: three
 * candidates on the default scenario, one of whom repairs part of their
 * workstation through the gateway, a reset, an extension, the jury's
 * marks, the end, the results in every export, a regrade.
 */
describe('a three-candidate exam from creation to exported results', () => {
  let d: TestDaemon;
  let op: ReturnType<typeof api>;
  let jury: ReturnType<typeof api>;
  let examId: string;
  const tokens: Record<string, string> = {};
  const timings: Record<string, number> = {};
  const path = (rest = '') => `/api/exams/${examId}${rest}`;
  const exam = async () => (await op.get(path())).body;
  const candidate = async (id: string) => (await op.get(path(`/candidates/${id}`))).body;

  beforeAll(async () => {
    d = await startTestDaemon();
    op = api(d.url, OPERATOR);
    jury = api(d.url, JURY);
  }, 180_000);
  afterAll(async () => {
    await d?.close();
    process.stdout.write(`three-candidate exam timings (s): ${JSON.stringify(timings)}\n`);
  }, 180_000);

  test('the operator creates the exam from a CSV roster and starts it; every lab is built, verified broken and offered', async () => {
    const started = Date.now();
    const created = await op.post('/api/exams').send({
      title: 'Session CCP1 test',
      scenario: 'broken-workstation',
      rosterCsv: 'id,name,email\nalice,Alice Martin,alice@example.org\nbruno,Bruno Petit,\nchloe,Chloé Durand,chloe@example.org\n',
      duration: '45m',
      start: 'now',
    });
    expect(created.status).toBe(201);
    examId = created.body.exam.id;
    for (const c of created.body.candidates) tokens[c.id] = c.token;
    expect(Object.keys(tokens)).toEqual(['alice', 'bruno', 'chloe']);
    expect(created.body.exam).toMatchObject({ status: 'running', progress: { total: 3, byPhase: { provisioning: 3 } } });

    const ready = await waitFor('three labs offered', exam, (e) => e.progress.byPhase.active + e.progress.byPhase.failed === 3, 300_000);
    timings.allLabsOffered = (Date.now() - started) / 1000;
    expect(ready.progress).toMatchObject({ ready: 3, failed: 0, labs: { running: 3 } });
    for (const c of ready.candidates) {
      expect(Date.parse(c.deadline) - Date.parse(c.offeredAt)).toBe(45 * 60_000);
      const detail = await candidate(c.id);
      // The broken state was verified before the lab was offered.
      expect(detail.runs).toEqual([expect.objectContaining({ purpose: 'baseline', status: 'done' })]);
      expect(detail.labEvents.map((e: { to: string }) => e.to)).toEqual(['requested', 'provisioning', 'ready', 'running']);
    }
  }, 330_000);

  test('alice repairs printing and the log partition through the gateway; the operator grades her lab now', async () => {
    const me = (await api(d.url, tokens.alice).get('/api/me')).body;
    expect(me.instructions).toMatch(/Ticket n° 4127/);
    const sudo = me.access.sudoPassword as string;
    // Printing breaks one of three ways (a fault pool, drawn by seat): the repair covers each.
    const fix = [
      `echo '${sudo}' | sudo -S -p '' sh -c '`,
      'systemctl unmask cups.service && chmod 0755 /usr/sbin/cupsd && systemctl enable --now cups.socket cups.path cups.service',
      " && sed -i s/^LOG_LEVEL=.*/LOG_LEVEL=INFO/ /etc/appli/appli.conf && systemctl restart appli-journal.service && : > /var/log/appli/appli.log'",
    ].join('');
    const result = await sshExec(d.sshPort, 'alice', tokens.alice as string, fix, 60_000);
    expect(result).toMatchObject({ code: 0 });
    const run = await op.post(path('/candidates/alice/grade'));
    expect(run.status).toBe(200);
    const status = Object.fromEntries(run.body.results.map((r: { checkId: string; status: string }) => [r.checkId, r.status]));
    expect(status).toMatchObject({ 'cups-service': 'pass', 'cups-port': 'pass', 'logs-level': 'pass', 'logs-space': 'pass', 'dns-intranet': 'fail' });
    expect((await api(d.url, tokens.alice).post('/api/me/grade')).status).toBe(409);
  }, 120_000);

  test('alice writes her intervention report', async () => {
    const saved = await api(d.url, tokens.alice)
      .put('/api/me/report')
      .send({ diagnosis: 'CUPS arrêté et désactivé ; journal en DEBUG, partition pleine.', actions: 'systemctl enable --now cups ; LOG_LEVEL=INFO ; journal vidé.', result: 'Impression et application OK. DNS non traité.' });
    expect(saved.status).toBe(200);
    expect(saved.body.revision).toBe(1);
  });

  test('chloe gets ten more minutes, then a fresh lab in the same broken state; her deadline is kept', async () => {
    const before = await candidate('chloe');
    const extended = await op.post(path('/candidates/chloe/extend')).send({ duration: '10m' });
    expect(extended.status).toBe(200);
    expect(Date.parse(extended.body.deadline) - Date.parse(before.deadline)).toBe(10 * 60_000);
    const labBefore = d.daemon.app.stores.labs.get(before.lab.id);
    await sshExec(d.sshPort, 'chloe', tokens.chloe as string, 'touch /tmp/trace-de-chloe');

    const started = Date.now();
    const reset = await op.post(path('/candidates/chloe/reset'));
    expect(reset.status).toBe(202);
    expect(reset.body.phase).toBe('provisioning');
    const back = await waitFor('chloe active again', () => candidate('chloe'), (c) => c.phase === 'active', 180_000);
    timings.reset = (Date.now() - started) / 1000;
    expect(back.deadline).toBe(extended.body.deadline);
    expect(back.labEvents.map((e: { to: string }) => e.to)).toEqual(['requested', 'provisioning', 'ready', 'running', 'provisioning', 'ready', 'running']);
    const labAfter = d.daemon.app.stores.labs.get(back.lab.id);
    expect(labAfter.variables).toEqual(labBefore.variables);
    expect((await sshExec(d.sshPort, 'chloe', tokens.chloe as string, 'ls /tmp/trace-de-chloe 2>&1 || true')).stdout).toMatch(/No such file/);
  }, 200_000);

  test('the jury marks the manual criteria', async () => {
    const marks = [
      ['alice', 'compte-rendu', 'complet'],
      ['alice', 'entretien', 'tres-bien'],
      ['bruno', 'compte-rendu', 'absent'],
    ];
    for (const [who, criterion, level] of marks) {
      const res = await jury.put(path(`/candidates/${who}/marks/${criterion}`)).send({ level, comment: `noté ${level}` });
      expect(res.status).toBe(200);
    }
    const wrong = await jury.put(path('/candidates/bruno/marks/entretien')).send({ level: 'parfait' });
    expect(wrong.status).toBe(422);
    expect(wrong.body.details).toEqual([{ where: 'level', message: 'one of insuffisant, correct, tres-bien' }]);
    expect((await jury.put(path('/candidates/bruno/marks/humour')).send({ level: 'x' })).status).toBe(404);
  });

  test('the operator ends the exam: access is cut, every lab is frozen and graded', async () => {
    const started = Date.now();
    const ended = await op.post(path('/end'));
    expect(ended.status).toBe(202);
    expect((await api(d.url, tokens.alice).get('/api/me')).status).toBe(401);
    await expect(sshExec(d.sshPort, 'alice', tokens.alice as string, 'true')).rejects.toThrow(/authentication methods failed/);
    const done = await waitFor('the exam graded', exam, (e) => e.status === 'ended', 180_000);
    timings.endToGraded = (Date.now() - started) / 1000;
    expect(done.progress).toMatchObject({ byPhase: { ended: 3 }, labs: { graded: 3 } });
    const docker = new Dockerode();
    for (const c of (await examObjects(examId)).containers) expect((await docker.getContainer(c.id).inspect()).State.Paused).toBe(true);
  }, 200_000);

  test('results: per candidate, competency and check with expected and actual; automatic and manual points apart', async () => {
    const res = await jury.get(path('/results'));
    expect(res.status).toBe(200);
    const byId = Object.fromEntries(res.body.candidates.map((c: { candidate: { id: string } }) => [c.candidate.id, c]));
    const alice = byId.alice;
    const bruno = byId.bruno;
    const check = (who: { checks: Line[] }, id: string) => who.checks.find((l) => l.id === id) as Line;
    expect(check(alice, 'cups-service')).toMatchObject({ source: 'auto', status: 'pass', points: 3, maxPoints: 3 });
    expect(check(bruno, 'cups-service')).toMatchObject({ source: 'auto', status: 'fail', points: 0, maxPoints: 3 });
    expect(check(bruno, 'cups-service').expected).not.toBe('');
    expect(check(bruno, 'cups-service').actual).not.toBe('');
    expect(alice.auto.points).toBeGreaterThanOrEqual(bruno.auto.points + 7);
    expect(alice.manual).toEqual({ points: 7, maxPoints: 7 });
    expect(alice.manualCriteria.map((m: { source: string; id: string; points: number; level: string }) => [m.source, m.id, m.points, m.level])).toEqual([
      ['manual', 'compte-rendu', 4, 'complet'],
      ['manual', 'entretien', 3, 'tres-bien'],
    ]);
    expect(alice.total.points).toBe(alice.auto.points + alice.manual.points);
    expect(alice.competencies.reduce((s: number, c: { points: number }) => s + c.points, 0)).toBeCloseTo(alice.total.points);
    expect(alice.report.diagnosis).toMatch(/CUPS/);
    expect(alice.pending).toEqual([]);
    expect(alice.complete).toBe(true);
    expect(bruno.pending).toEqual(['manual criteria not marked yet: entretien']);
    expect(byId.chloe.pending).toEqual(['manual criteria not marked yet: compte-rendu, entretien']);
    expect(res.body.scenario.manualCriteria).toHaveLength(2);
  });

  test('exports: CSV with one row per candidate and a column per check, criterion and competency; a printable HTML report', async () => {
    const csv = await jury.get(path('/results.csv'));
    expect(csv.status).toBe(200);
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    const rows = parse(csv.text, { columns: true }) as Record<string, string>[];
    expect(rows.map((r) => r.candidate_id)).toEqual(['alice', 'bruno', 'chloe']);
    const header = Object.keys(rows[0] as object);
    expect(header).toEqual(expect.arrayContaining(['total_points', 'auto_points', 'manual_points', 'check:cups-service', 'check:srv-dns', 'manual:compte-rendu', 'manual:entretien', 'competency:CCP1-diagnostic', 'competency:CCP1-securite']));
    expect(rows[0]).toMatchObject({ 'check:cups-service': '3', 'manual:entretien': '3', email: 'alice@example.org' });
    expect(rows[1]).toMatchObject({ 'check:cups-service': '0', 'manual:entretien': '' });

    const html = await jury.get(path('/candidates/alice/report.html'));
    expect(html.status).toBe(200);
    expect(html.headers['content-type']).toMatch(/^text\/html/);
    expect(html.text).toContain('Alice Martin');
    expect(html.text).toContain("Compte rendu d'intervention du candidat");
    expect(html.text).toContain('CUPS arrêté et désactivé');
    expect(html.text).toMatch(/dont automatique [\d,]+ \/ [\d,]+ et jury 7 \/ 7/);
    expect(html.text).toMatch(/notée le \d\d\/\d\d\/\d{4} \d\d:\d\d</);
  });

  test('exports for Excel on French Windows: the same numbers in a ";" CSV with decimal commas, and in a workbook', async () => {
    const json = (await jury.get(path('/results'))).body.candidates as {
      candidate: { id: string; name: string };
      total: { points: number; maxPoints: number; percent: number };
      checks: Line[];
      manualCriteria: { id: string; points: number; comment?: string }[];
    }[];
    const bytes = (res: { body: unknown }) => res.body as Buffer;
    const csv = await jury.get(path('/results.csv?dialect=excel-fr')).buffer(true).parse(binary);
    expect(csv.status).toBe(200);
    const rows = parse(bytes(csv), { bom: true, delimiter: ';', columns: true }) as Record<string, string>[];
    const comma = (n: number) => (Number.isInteger(n) ? String(n) : n.toFixed(2).replace('.', ','));
    expect(rows.map((r) => [r.candidate_id, r.name, r.total_points, r.percent])).toEqual(json.map((c) => [c.candidate.id, c.candidate.name, comma(c.total.points), comma(c.total.percent)]));

    const xlsx = await jury.get(path('/results.xlsx')).buffer(true).parse(binary);
    expect(xlsx.status).toBe(200);
    const workbook = new ExcelJS.Workbook();
    await workbook.xlsx.load(xlsx.body);
    const candidates = workbook.getWorksheet('Candidats');
    expect(json.map((_, i) => [2, 4, 5, 6].map((col) => candidates?.getRow(i + 2).getCell(col).value))).toEqual(json.map((c) => [c.candidate.name, c.total.points, c.total.maxPoints, c.total.percent]));
    // row.values counts from 1, as columns do.
    const gradedAt = (candidates?.getRow(1).values as ExcelJS.CellValue[]).indexOf('Notée le');
    expect(gradedAt).toBeGreaterThan(6);
    expect(candidates?.getRow(2).getCell(gradedAt).value).toBeInstanceOf(Date);
    const checks = workbook.getWorksheet('Vérifications');
    const bruno = json.find((c) => c.candidate.id === 'bruno');
    const cups = bruno?.checks.find((l) => l.id === 'cups-service');
    const cupsRow = checks?.getRows(2, checks.rowCount - 1)?.find((row) => row.getCell(1).value === 'bruno' && row.getCell(3).value === 'cups-service');
    expect([cupsRow?.getCell(7).value, cupsRow?.getCell(8).value, cupsRow?.getCell(10).text, cupsRow?.getCell(11).text]).toEqual(['échoué', 0, cups?.expected, cups?.actual]);
    const marks = workbook.getWorksheet('Notes du jury');
    const aliceReport = marks?.getRows(2, marks.rowCount - 1)?.find((row) => row.getCell(1).value === 'alice' && row.getCell(3).value === 'compte-rendu');
    const aliceMark = json.find((c) => c.candidate.id === 'alice')?.manualCriteria.find((m) => m.id === 'compte-rendu');
    expect(aliceMark?.comment).toBe('noté complet');
    expect([aliceReport?.getCell(7).value, aliceReport?.getCell(9).value]).toEqual([aliceMark?.points, aliceMark?.comment]);
  });

  test('a regrade of a frozen lab gives the same result and lets the candidate in nowhere', async () => {
    const before = (await jury.get(path('/candidates/alice/result'))).body;
    const started = Date.now();
    const regraded = await op.post(path('/candidates/alice/regrade'));
    timings.regrade = (Date.now() - started) / 1000;
    expect(regraded.status).toBe(200);
    expect(regraded.body.purpose).toBe('final');
    expect(regraded.body.score.points).toBe(before.auto.points);
    const after = (await jury.get(path('/candidates/alice/result'))).body;
    expect(after.runId).toBe(regraded.body.id);
    await expect(sshExec(d.sshPort, 'alice', tokens.alice as string, 'true')).rejects.toThrow(/authentication methods failed/);
    const docker = new Dockerode();
    for (const c of (await examObjects(examId)).containers) expect((await docker.getContainer(c.id).inspect()).State.Paused).toBe(true);
  }, 60_000);

  test('the audit log tells the whole story and its chain is intact; releasing the labs leaves nothing', async () => {
    const audit = (await jury.get(`/api/audit?exam=${examId}`)).body;
    expect(audit.chain.ok).toBe(true);
    const actions = audit.records.map((r: { action: string }) => r.action);
    for (const a of ['exam.create', 'exam.start', 'lab.offer', 'lab.session.open', 'candidate.grade', 'report.submit', 'candidate.extend', 'candidate.reset', 'mark.set', 'exam.end', 'lab.freeze', 'lab.grade', 'exam.ended', 'candidate.regrade']) {
      expect(actions).toContain(a);
    }
    expect(audit.records.find((r: { action: string }) => r.action === 'candidate.reset')).toMatchObject({ actor: 'operator:tester', candidateId: 'chloe' });

    const released = await op.delete(path('/labs'));
    expect(released.status).toBe(200);
    expect(released.body.destroyed).toHaveLength(3);
    expect(await examObjects(examId)).toEqual({ containers: [], networks: [] });
    expect((await jury.get(path('/results'))).body.candidates[0].auto.points).toBeGreaterThan(0);
  }, 60_000);
});

/** Reads a response body as bytes (a workbook, a CSV with its BOM). */
function binary(res: Response, done: (err: Error | null, body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (chunk: Buffer) => chunks.push(chunk));
  res.on('end', () => done(null, Buffer.concat(chunks)));
}
