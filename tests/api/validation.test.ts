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
  });
  afterAll(async () => d?.close());

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
        { where: 'body.candidates', message: 'give exactly one of candidates or rosterCsv' },
      ]),
    );
    expect(await examCount()).toBe(0);
  });

  test('a roster with duplicates or bad rows: 422 naming the rows', async () => {
    const dup = await op.post('/api/exams').send(exam({ candidates: [{ id: 'alice', name: 'A' }, { id: 'bob', name: 'B' }, { id: 'Alice', name: 'A2' }] }));
    expect(dup.status).toBe(422);
    expect(dup.body.details).toEqual([{ where: 'candidates[2] id', message: 'duplicate candidate id "Alice" (first at candidates[0])' }]);

    const csv = 'id,name,email\nalice,Alice,alice@example.org\nbob,,bob@example.org\ncarol,Carol,not-an-email\nalice,Alice again,\n';
    const bad = await op.post('/api/exams').send({ scenarioYaml: SMALL_SCENARIO, rosterCsv: csv });
    expect(bad.status).toBe(422);
    expect(bad.body.error).toBe('unprocessable');
    expect(bad.body.details.map((x: { where: string; message: string }) => `${x.where}: ${x.message}`)).toEqual([
      'rosterCsv:3 name: required',
      expect.stringMatching(/^rosterCsv:4 email: /),
      'rosterCsv:5 id: duplicate candidate id "alice" (first at rosterCsv:2)',
    ]);

    const header = await op.post('/api/exams').send({ scenarioYaml: SMALL_SCENARIO, rosterCsv: 'identifiant;prenom\nalice;Alice\n' });
    expect(header.status).toBe(422);
    expect(header.body.details).toEqual(
      expect.arrayContaining([{ where: 'rosterCsv:1', message: 'unknown column "prenom" (column 2); expected id, name and optionally email' }]),
    );
    const quotes = await op.post('/api/exams').send({ scenarioYaml: SMALL_SCENARIO, rosterCsv: 'id,name\n"alice,Alice\n' });
    expect(quotes.status).toBe(422);
    expect(quotes.body.message).toMatch(/not a readable CSV roster/);
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
    expect(badUpload.body.details).toEqual([{ where: 'roster.csv:1', message: 'missing column "name"' }]);
    expect((await op.get(`/api/exams/${id}`)).body.candidates.map((c: { id: string }) => c.id)).toEqual(['chloe']);
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
    expect(again.body.message).toMatch(/is ended; only a scheduled exam can start/);
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

  test('health, readiness, metrics and the OpenAPI document describing every endpoint', async () => {
    expect((await api(d.url).get('/healthz')).body.status).toBe('ok');
    const ready = await api(d.url).get('/readyz');
    expect(ready.status).toBe(200);
    expect(ready.body.checks).toEqual({ engine: { ok: true, detail: expect.stringMatching(/^Docker /) }, store: { ok: true, detail: 'writable' } });
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

/** METHOD /path of every route of the daemon's express app, in OpenAPI form. */
function routesOf(daemon: TestDaemon['daemon']): string[] {
  const server = (daemon as unknown as { httpServer: { listeners(e: string): { router?: { stack: { route?: { path: string; methods: Record<string, boolean> } }[] } }[] } }).httpServer;
  const app = server.listeners('request')[0];
  return (app?.router?.stack ?? [])
    .filter((l) => l.route)
    .flatMap((l) => Object.keys(l.route?.methods ?? {}).map((m) => `${m.toUpperCase()} ${(l.route?.path ?? '').replace(/:([A-Za-z]+)/g, '{$1}')}`));
}
