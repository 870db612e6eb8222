import { api, examObjects, OPERATOR, sshExec, startTestDaemon, waitFor, type TestDaemon } from './helpers.js';

/**
 * A prepared exam on the real engine, through the API and the gateway:
 * labs (and a spare) built while the candidates are locked out, opened all
 * at once at the start, a reset that swaps the spare in, the end.
 */
describe('a prepared exam with a spare lab', () => {
  let d: TestDaemon;
  let op: ReturnType<typeof api>;
  let examId: string;
  const tokens: Record<string, string> = {};
  const exam = async () => (await op.get(`/api/exams/${examId}`)).body;
  const login = (id: string, command: string) => sshExec(d.sshPort, id, tokens[id] as string, command);

  beforeAll(async () => {
    d = await startTestDaemon();
    op = api(d.url, OPERATOR);
  }, 180_000);
  afterAll(async () => d?.close(), 180_000);

  test('every lab and the spare are built and verified before the start; nobody gets in', async () => {
    const created = await op.post('/api/exams').send({ scenario: 'broken-workstation', rosterCsv: 'id,name\nalice,Alice\nbruno,Bruno\n', start: 'manual', prepare: true, spares: 1 });
    expect(created.status).toBe(201);
    examId = created.body.exam.id;
    for (const c of created.body.candidates) tokens[c.id] = c.token;
    expect(created.body.exam.status).toBe('preparing');
    const ready = await waitFor('labs and spare ready', exam, (e) => e.progress.byPhase.ready === 2 && e.progress.spares.ready === 1, 300_000);
    expect(ready.progress).toMatchObject({ failed: 0, labs: { ready: 2 }, spares: { wanted: 1, ready: 1, building: 0 } });
    for (const c of ready.candidates) {
      expect(c.phase).toBe('ready');
      expect(c.deadline).toBeUndefined();
    }
    await expect(login('alice', 'true')).rejects.toThrow();
    expect((await api(d.url, tokens.alice).get('/api/me')).status).toBe(401);
  }, 330_000);

  test('the start opens every lab at once, every clock starting at the same instant', async () => {
    const started = await op.post(`/api/exams/${examId}/start`);
    expect(started.status).toBe(202);
    expect(started.body.progress.byPhase.active).toBe(2);
    const [a, b] = started.body.candidates;
    expect(a.offeredAt).toBe(b.offeredAt);
    expect(a.offeredAt).toBe(started.body.startedAt);
    expect((await login('alice', 'hostname')).stdout).toBe('pc-compta\n');
    expect((await login('bruno', 'hostname')).stdout).toBe('pc-compta\n');
  }, 60_000);

  test('a reset swaps the spare in: a fresh lab at once, the old one removed, a new spare built', async () => {
    const before = (await op.get(`/api/exams/${examId}/candidates/alice`)).body;
    expect((await login('alice', 'touch ~/travail && echo ok')).stdout).toBe('ok\n');
    const reset = await op.post(`/api/exams/${examId}/candidates/alice/reset`);
    expect(reset.status).toBe(202);
    expect(reset.body).toMatchObject({ phase: 'active', deadline: before.deadline });
    expect(reset.body.lab.id).not.toBe(before.lab.id);
    expect((await login('alice', 'test -e ~/travail && echo used || echo fresh')).stdout).toBe('fresh\n');
    await waitFor('a new spare', exam, (e) => e.progress.spares.ready === 1, 300_000);
    // Two machines a lab: alice's (the former spare), bruno's and the new spare; the old lab is gone.
    const objects = await waitFor('the old lab removed', () => examObjects(examId), (o) => o.containers.length === 6, 60_000);
    expect(objects.containers.map((c) => c.lab)).not.toContain(before.lab.id);
  }, 330_000);

  test('the end grades everyone and removes the spare', async () => {
    expect((await op.post(`/api/exams/${examId}/end`)).status).toBe(202);
    const ended = await waitFor('results', exam, (e) => e.status === 'ended', 120_000);
    expect(ended.candidates.every((c: { finalRunId?: string }) => c.finalRunId)).toBe(true);
    await waitFor('the spare removed', exam, (e) => e.progress.spares.ready + e.progress.spares.building === 0, 60_000);
  }, 200_000);
});
