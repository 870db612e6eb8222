import ExcelJS from 'exceljs';
import type { Response } from 'superagent';
import { api, JURY, OPERATOR, startTestDaemon, type TestDaemon } from './helpers.js';
import { SMALL_SCENARIO } from './scenarios.js';

/**
 * Bad input of every kind gets a clear 4xx with {error, message, details}
 * naming what is wrong and where, and nothing is created. No lab is built.
 */
describe('the HTTP API refuses bad input clearly', () => {
  let d: TestDaemon;
  let op: ReturnType<typeof api>;
  beforeAll(async () => {
    d = await startTestDaemon();
    op = api(d.url, OPERATOR);
  }, 180_000);
  afterAll(async () => d?.close(), 180_000);

  const exam = (extra: Record<string, unknown> = {}) => ({ scenarioYaml: SMALL_SCENARIO, candidates: [{ id: 'alice', name: 'Alice' }], ...extra });
  const examCount = async () => (await op.get('/api/exams')).body.exams.length as number;

  test('no token, an unknown token: 401 with WWW-Authenticate', async () => {
    const none = await api(d.url).get('/api/exams');
    expect(none.status).toBe(401);
    expect(none.headers['www-authenticate']).toBe('Bearer');
    expect(none.body).toEqual({ error: 'unauthenticated', message: expect.stringMatching(/Authorization: Bearer/), details: [] });
    const wrong = await api(d.url, 'not-a-token').get('/api/exams');
    expect(wrong.status).toBe(401);
    expect(wrong.body.message).toMatch(/unknown or revoked token/);
  });

  test('the jury reads but does not run exams: 403', async () => {
    const res = await api(d.url, JURY).post('/api/exams').send(exam());
    expect(res.status).toBe(403);
    expect(res.body).toMatchObject({ error: 'forbidden', message: 'this needs an operator token' });
    expect((await api(d.url, JURY).get('/api/exams')).status).toBe(200);
  });

  test('a body that is not JSON: 400 saying so', async () => {
    const res = await op.post('/api/exams').set('Content-Type', 'application/json').send('{"scenario": "broken-workstation",');
    expect(res.status).toBe(400);
    expect(res.body.error).toBe('bad_request');
    expect(res.body.message).toMatch(/not valid JSON/);
    const text = await op.post('/api/exams').set('Content-Type', 'text/plain').send('hello');
    expect(text.status).toBe(400);
    expect(text.body.message).toMatch(/application\/json/);
  });

  test('a body of the wrong shape: 400 naming every field at fault', async () => {
    const res = await op.post('/api/exams').send({ colour: 'blue', duration: 'forever', candidates: [{ id: 'ok', name: 'Ok' }, { id: 'bad id!', name: '' }] });
    expect(res.status).toBe(400);
    const where = (res.body.details as { where: string; message: string }[]).map((x) => `${x.where}: ${x.message}`);
    expect(where).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^body: Unrecognized key: "colour"/),
        'body.duration: duration must be a duration like "90m", "1h30m" or "45s"',
        expect.stringMatching(/^body\.candidates\[1\]\.id: use letters, digits/),
        expect.stringMatching(/^body\.candidates\[1\]\.name: /),
      ]),
    );
    const neither = await op.post('/api/exams').send({ duration: '1h' });
    expect(neither.status).toBe(400);
    expect(neither.body.details).toEqual(
      expect.arrayContaining([
        { where: 'body.scenario', message: 'give exactly one of scenario (a name) or scenarioYaml' },
        { where: 'body.candidates', message: 'give exactly one of candidates, rosterCsv or rosterFile' },
      ]),
    );
    expect(await examCount()).toBe(0);
  });

  test('a roster that cannot be used: 422 naming the rows or the header', async () => {
    const dup = await op.post('/api/exams').send(exam({ candidates: [{ id: 'alice', name: 'A' }, { id: 'bob', name: 'B' }, { id: 'Alice', name: 'A2' }] }));
    expect(dup.status).toBe(422);
    expect(dup.body.details).toEqual([{ where: 'candidates[2] id', message: 'duplicate candidate id "Alice" (first at candidates[0])' }]);

    const noneUsable = await op.post('/api/exams').send({ scenarioYaml: SMALL_SCENARIO, rosterCsv: 'id,name\nbad id,Bad\n,Nobody\n' });
    expect(noneUsable.status).toBe(422);
    expect(noneUsable.body).toMatchObject({ error: 'unprocessable', message: 'rosterCsv: no candidate could be read' });
    expect(noneUsable.body.details.map((x: { where: string; message: string }) => `${x.where}: ${x.message}`)).toEqual([
      expect.stringMatching(/^rosterCsv:2: the identifier "bad id" \(column A "id"\) cannot be a login/),
      'rosterCsv:3: no identifier (column A "id"); row left out',
    ]);

    const header = await op.post('/api/exams').send({ scenarioYaml: SMALL_SCENARIO, rosterCsv: 'nom;prenom\nMartin;Alice\n' });
    expect(header.status).toBe(422);
    expect(header.body.details).toEqual([{ where: 'rosterCsv:1', message: expect.stringMatching(/it lacks an identifier column/) }]);
    const quotes = await op.post('/api/exams').send({ scenarioYaml: SMALL_SCENARIO, rosterCsv: 'id,name\n"alice,Alice\n' });
    expect(quotes.status).toBe(422);
    expect(quotes.body.details).toEqual([{ where: 'rosterCsv:2', message: 'a quote opened here is never closed, so the rest of the file cannot be read; rows left out' }]);
    expect(await examCount()).toBe(0);
  });

  test('a spreadsheet roster (French headers, semicolons) is accepted; the roster can be replaced by a CSV upload', async () => {
    const res = await op.post('/api/exams').send({ scenarioYaml: SMALL_SCENARIO, rosterCsv: '\uFEFFIdentifiant;Nom;Courriel\r\nalice;Alice Martin;alice@example.org\r\nbob;Bob Petit;\r\n' });
    expect(res.status).toBe(201);
    expect(res.body.candidates.map((c: { id: string; name: string }) => [c.id, c.name])).toEqual([
      ['alice', 'Alice Martin'],
      ['bob', 'Bob Petit'],
    ]);
    expect(res.body.exam.status).toBe('scheduled');
    const id = res.body.exam.id as string;
    const upload = await op.put(`/api/exams/${id}/candidates`).set('Content-Type', 'text/csv').send('id,name\nchloe,Chloé\n');
    expect(upload.status).toBe(200);
    expect(upload.body.candidates).toEqual([{ id: 'chloe', name: 'Chloé', token: expect.stringMatching(/^[0-9A-Z]{5}(-[0-9A-Z]{5}){3}$/), ssh: `ssh -p ${d.sshPort} chloe@127.0.0.1` }]);
    const badUpload = await op.put(`/api/exams/${id}/candidates`).set('Content-Type', 'text/csv').send('id\nchloe\n');
    expect(badUpload.status).toBe(422);
    expect(badUpload.body.details).toEqual([{ where: 'roster.csv:1', message: expect.stringMatching(/^this looks like the header \(id in column A "id"\) but it lacks a name column/) }]);
    expect((await op.get(`/api/exams/${id}`)).body.candidates.map((c: { id: string }) => c.id)).toEqual(['chloe']);
  });

  test('a roster file read as an exam would, before any exam: the report names the file\'s rows; nothing is created', async () => {
    const before = await examCount();
    const csv = Buffer.from('Identifiant;Nom;Prénom;Téléphone\r\nc001;N\x92Diaye;Zoé;0601\r\n;Sans;Identifiant;0602\r\n', 'latin1');
    const read = await op.post('/api/roster/check?name=inscrits.csv').set('Content-Type', 'text/csv').send(csv);
    expect(read.status).toBe(200);
    expect(read.body.candidates).toEqual([{ id: 'c001', name: 'Zoé N’Diaye' }]);
    expect(read.body.imported).toBe(1);
    expect(read.body.rejected).toEqual([{ where: 'inscrits.csv:3', message: expect.stringMatching(/no identifier/) }]);
    expect(read.body.read.ignoredColumns).toEqual(['Téléphone']);
    const jury = await api(d.url, JURY).post('/api/roster/check').set('Content-Type', 'text/csv').send(csv);
    expect(jury.status).toBe(403);
    const json = await op.post('/api/roster/check').send({ candidates: [] });
    expect(json.status).toBe(400);
    expect(json.body.message).toMatch(/send the roster file as the body/);
    const binary = await op.post('/api/roster/check').set('Content-Type', 'application/octet-stream').send(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1]));
    expect(binary.status).toBe(422);
    const folder = await op.post('/api/roster/check?name=../etc/passwd').set('Content-Type', 'text/csv').send(csv);
    expect(folder.status).toBe(400);
    expect(folder.body.details[0].where).toMatch(/name/);
    expect(await examCount()).toBe(before);
  });

  test('an invalid scenario: 422 with every problem located in the YAML', async () => {
    const res = await op.post('/api/exams').send(exam({ scenarioYaml: SMALL_SCENARIO.replace('image: base', 'image: nowhere').replace('points: 2', 'points: two') }));
    expect(res.status).toBe(422);
    expect(res.body.message).toMatch(/invalid scenario \(2 problems\)/);
    expect(res.body.details).toEqual(
      expect.arrayContaining([
        { where: expect.stringMatching(/exam-[0-9a-f]{12}\.yaml:\d+:\d+ machines\[0\]\.image$/), message: expect.stringMatching(/^unknown image "nowhere"; known: .*base/) },
        { where: expect.stringMatching(/:\d+:\d+ checks\[0\]\.points$/), message: 'expected number, got string "two"' },
      ]),
    );
    const unknown = await op.post('/api/exams').send({ scenario: '../../etc/passwd', candidates: [{ id: 'a', name: 'A' }] });
    expect(unknown.status).toBe(422);
    expect(unknown.body.message).toBe('unknown scenario "../../etc/passwd"');
    expect(unknown.body.details[0].message).toMatch(/known: .*broken-workstation/);
    expect(await examCount()).toBe(1);
  });

  test('a start time in the past: 422; too large a body: 413', async () => {
    const past = await op.post('/api/exams').send(exam({ start: { at: '2001-01-01T09:00:00Z' } }));
    expect(past.status).toBe(422);
    expect(past.body.details[0].where).toBe('start.at');
    const huge = await op.post('/api/exams').send(exam({ scenarioYaml: `${SMALL_SCENARIO}\n#${'x'.repeat(1_200_000)}\n` }));
    expect(huge.status).toBe(413);
    expect(huge.body.error).toBe('payload_too_large');
  });

  test('unknown exams are 404, malformed ids 400, impossible moves 409', async () => {
    expect((await op.get('/api/exams/0123456789ab')).status).toBe(404);
    const malformed = await op.get('/api/exams/nope');
    expect(malformed.status).toBe(400);
    expect(malformed.body.details).toEqual([{ where: 'path.examId', message: 'an exam id is 12 hexadecimal characters' }]);
    const created = await op.post('/api/exams').send(exam());
    const id = created.body.exam.id as string;
    expect((await op.get(`/api/exams/${id}/candidates/zoe`)).status).toBe(404);
    const ended = await op.post(`/api/exams/${id}/end`);
    expect(ended.status).toBe(202);
    expect(ended.body.status).toBe('ended');
    const again = await op.post(`/api/exams/${id}/start`);
    expect(again.status).toBe(409);
    expect(again.body.message).toMatch(/is ended; only a scheduled or prepared exam can start/);
    const extend = await op.post(`/api/exams/${id}/candidates/alice/extend`).send({ duration: '10m' });
    expect(extend.status).toBe(409);
    expect((await op.get('/api/nothing-here')).status).toBe(404);
  });

  test('staff tokens: created once in clear, usable, revocable', async () => {
    const made = await op.post('/api/tokens').send({ name: 'second-juror', role: 'jury' });
    expect(made.status).toBe(201);
    const jury = api(d.url, made.body.token);
    expect((await jury.get('/api/exams')).status).toBe(200);
    const listed = await op.get('/api/tokens');
    expect(JSON.stringify(listed.body)).not.toContain(made.body.token);
    expect((await op.delete(`/api/tokens/${made.body.id}`)).status).toBe(200);
    expect((await jury.get('/api/exams')).status).toBe(401);
  });

  test("a centre's exports as they are: an XLSX with a title row, a Windows-1252 CSV; results for Excel on French Windows", async () => {
    const workbook = new ExcelJS.Workbook();
    const sheet = workbook.addWorksheet('Inscrits');
    sheet.addRow(['Session de juin – liste des candidats']);
    sheet.addRow(['N° candidat', 'Nom', 'Prénom', 'Courriel', 'Groupe']);
    sheet.addRow([20250001, "N'Diaye", 'Zoé', 'zoe@example.fr', 'A']);
    sheet.addRow(['2025 0002', 'Sans', 'Login', '', 'A']);
    sheet.addRow([20250003, "d'Artagnan", 'Éloïse', '', 'B']);
    const xlsx = Buffer.from(await workbook.xlsx.writeBuffer());

    const created = await op.post('/api/exams').send({ scenarioYaml: SMALL_SCENARIO, rosterFile: xlsx.toString('base64'), timeZone: 'Europe/Paris' });
    expect(created.status).toBe(201);
    expect(created.body.candidates.map((c: { id: string; name: string }) => [c.id, c.name])).toEqual([
      ['20250001', "Zoé N'Diaye"],
      ['20250003', "Éloïse d'Artagnan"],
    ]);
    expect(created.body.roster).toEqual({
      imported: 2,
      rejected: [{ where: 'rosterFile.xlsx (Inscrits):4', message: expect.stringMatching(/^the identifier "2025 0002" \(column A "N° candidat"\) cannot be a login/) }],
      warnings: [],
      read: { format: 'XLSX, sheet "Inscrits"', headerLine: 2, columns: { id: 'N° candidat', lastName: 'Nom', firstName: 'Prénom', email: 'Courriel' }, ignoredColumns: ['Groupe'] },
    });
    expect(created.body.exam).toMatchObject({ timeZone: 'Europe/Paris', scenario: { language: 'fr' } });
    const id = created.body.exam.id as string;

    // Excel's "CSV (séparateur : point-virgule)": Windows-1252 bytes, ’ and œ included.
    const csv = Buffer.from('Identifiant;Nom;Prénom;Courriel\r\nc1;N\x92Guessan;Aïcha;\r\nc2;Lœuillet;Noël;noel@example.fr\r\n'.replace('œ', '\x9c'), 'latin1');
    const upload = await op.put(`/api/exams/${id}/candidates`).set('Content-Type', 'text/csv').send(csv);
    expect(upload.status).toBe(200);
    expect(upload.body.candidates.map((c: { id: string; name: string }) => [c.id, c.name])).toEqual([
      ['c1', 'Aïcha N’Guessan'],
      ['c2', 'Noël Lœuillet'],
    ]);
    expect(upload.body.roster.read.format).toBe('CSV, Windows-1252, separator ";"');
    const xlsxUpload = await op.put(`/api/exams/${id}/candidates`).set('Content-Type', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet').send(xlsx);
    expect(xlsxUpload.status).toBe(200);
    expect(xlsxUpload.body.roster).toMatchObject({ imported: 2, rejected: [{ where: 'roster.xlsx (Inscrits):4' }] });

    const frenchCsv = await api(d.url, JURY).get(`/api/exams/${id}/results.csv?dialect=excel-fr`).buffer(true).parse(binary);
    expect(frenchCsv.status).toBe(200);
    const text = (frenchCsv.body as Buffer).toString('utf8');
    expect(text.startsWith('\uFEFFcandidate_id;name;email;phase;')).toBe(true);
    expect(text).toContain("\r\n20250001;Zoé N'Diaye;zoe@example.fr;");
    expect((await op.get(`/api/exams/${id}/results.csv?dialect=excel`)).status).toBe(400);

    const results = await api(d.url, JURY).get(`/api/exams/${id}/results.xlsx`).buffer(true).parse(binary);
    expect(results.status).toBe(200);
    expect(results.headers['content-type']).toBe('application/vnd.openxmlformats-officedocument.spreadsheetml.sheet');
    expect(results.headers['content-disposition']).toMatch(new RegExp(`^attachment; filename="?results-${id}\\.xlsx"?$`));
    const read = new ExcelJS.Workbook();
    await read.xlsx.load(results.body);
    expect(read.worksheets.map((w) => w.name)).toEqual(['Candidats', 'Vérifications', 'Notes du jury', 'Épreuve']);
    const candidates = read.getWorksheet('Candidats');
    const json = (await api(d.url, JURY).get(`/api/exams/${id}/results`)).body.candidates[0];
    expect(json.total.maxPoints).toBeGreaterThan(0);
    expect([candidates?.getCell('A2').value, candidates?.getCell('B2').value, candidates?.getCell('D2').value, candidates?.getCell('E2').value, candidates?.getCell('G2').value]).toEqual([
      '20250001',
      "Zoé N'Diaye",
      0,
      json.total.maxPoints,
      'NON ACQUIS',
    ]);
    expect(read.getWorksheet('Épreuve')?.getCell('B7').value).toBe('Europe/Paris');

    const badZone = await op.post('/api/exams').send(exam({ timeZone: 'Paris' }));
    expect(badZone.status).toBe(400);
    expect(badZone.body.details).toEqual([{ where: 'body.timeZone', message: expect.stringMatching(/^not a time zone: use an IANA name/) }]);
  });

  test('health, readiness, metrics and the OpenAPI document describing every endpoint', async () => {
    expect((await api(d.url).get('/healthz')).body.status).toBe('ok');
    const ready = await api(d.url).get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual({
      engine: { ok: true, detail: expect.stringMatching(/^Docker /) },
      store: { ok: true, detail: 'writable' },
      disk: { ok: true, detail: expect.stringMatching(/ GiB free of .* GiB on .*; /) },
      labEngines: { ok: true, detail: 'every engine holding a live lab answers' },
    });
    const metrics = await api(d.url).get('/metrics');
    expect(metrics.text).toMatch(/^examlab_labs\{state="running"\} \d+$/m);
    expect(metrics.text).toMatch(/^examlab_candidates\{phase="active"\} \d+$/m);
    expect(metrics.text).toContain('examlab_lab_provisioning_seconds');
    expect(metrics.text).toContain('# TYPE examlab_errors_total counter');

    const doc = (await api(d.url).get('/api/openapi.json')).body;
    expect(doc.openapi).toBe('3.1.0');
    // Every route the express app serves is in the document, and nothing else.
    const served = routesOf(d.daemon);
    const documented = Object.entries(doc.paths as Record<string, Record<string, unknown>>).flatMap(([p, ops]) => Object.keys(ops).map((m) => `${m.toUpperCase()} ${p}`));
    expect(documented.sort()).toEqual(served.sort());
    const create = doc.paths['/api/exams'].post;
    expect(create.requestBody.content['application/json'].schema.properties.candidates).toBeDefined();
    expect(Object.keys(create.responses)).toEqual(expect.arrayContaining(['201', '400', '401', '403', '413', '422', '500']));
    expect(doc.paths['/api/exams/{examId}/candidates'].put.requestBody.content['text/csv']).toBeDefined();
  });
});

/** Reads a response body as bytes (a workbook, a CSV with its BOM). */
function binary(res: Response, done: (err: Error | null, body: Buffer) => void): void {
  const chunks: Buffer[] = [];
  res.on('data', (chunk: Buffer) => chunks.push(chunk));
  res.on('end', () => done(null, Buffer.concat(chunks)));
}

/** METHOD /path of every route of the daemon's express app, in OpenAPI form. */
function routesOf(daemon: TestDaemon['daemon']): string[] {
  const server = (daemon as unknown as { httpServer: { listeners(e: string): { router?: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] } }[] } }).httpServer;
  const app = server.listeners('request')[0];
  return (app?.router?.stack ?? [])
    .filter((l) => l.route)
    .flatMap((l) => Object.keys(l.route?.methods ?? {}).map((m) => `${m.toUpperCase()} ${(l.route?.path ?? '').replace(/:([A-Za-z]+)/g, '{$1}')}`));
}
