import ssh2 from 'ssh2';
import { api, examObjects, OPERATOR, sshExec, startedExam, startTestDaemon, waitFor, type TestDaemon } from './helpers.js';
import { SMALL_SCENARIO } from './scenarios.js';

/**
 * A candidate's token opens their own lab and their own page, and nothing
 * else: not another candidate, not the exam, not the results, not the
 * checks' definitions; and only while their exam runs.
 */
describe('candidate access is scoped to their own lab', () => {
  let d: TestDaemon;
  let op: ReturnType<typeof api>;
  let examId: string;
  let tokens: Record<string, string> = {};

  beforeAll(async () => {
    d = await startTestDaemon();
    op = api(d.url, OPERATOR);
    ({ examId, tokens } = await startedExam(d.url, { scenarioYaml: SMALL_SCENARIO, candidates: [{ id: 'alice', name: 'Alice' }, { id: 'bob', name: 'Bob' }] }, 120_000));
  }, 150_000);
  afterAll(async () => {
    await d?.close();
    if (examId) expect(await examObjects(examId)).toEqual({ containers: [], networks: [] });
  }, 180_000);

  test('a candidate token reads only /api/me: exams, other candidates, results, audit are 403', async () => {
    const alice = api(d.url, tokens.alice);
    for (const path of [
      '/api/exams',
      `/api/exams/${examId}`,
      `/api/exams/${examId}/candidates/bob`,
      `/api/exams/${examId}/candidates/alice`,
      `/api/exams/${examId}/results`,
      `/api/exams/${examId}/results.csv`,
      `/api/exams/${examId}/candidates/bob/report.html`,
      '/api/audit',
      '/api/tokens',
    ]) {
      const res = await alice.get(path);
      expect([path, res.status, res.body.message]).toEqual([path, 403, 'a candidate token only opens /api/me']);
    }
    for (const path of [`/api/exams/${examId}/candidates/bob/reset`, `/api/exams/${examId}/candidates/alice/extend`, `/api/exams/${examId}/end`]) {
      expect((await alice.post(path).send({ duration: '1h' })).status).toBe(403);
    }
    expect((await alice.put(`/api/exams/${examId}/candidates/alice/marks/compte-rendu`).send({ level: 'complet' })).status).toBe(403);
  });

  test("/api/me shows the candidate's lab and instructions, never the checks", async () => {
    const me = await api(d.url, tokens.alice).get('/api/me');
    expect(me.status).toBe(200);
    expect(me.body).toMatchObject({ candidate: { id: 'alice', name: 'Alice' }, phase: 'active', lab: { state: 'running' }, instructions: 'Réparez /etc/etat.' });
    expect(me.body.access.machines).toEqual([{ name: 'pc', hostname: 'pc', user: 'technicien', ssh: `ssh -p ${d.sshPort} alice@127.0.0.1` }]);
    const text = JSON.stringify(me.body);
    for (const secret of ['^ok$', 'matches', 'checks', 'sshd', 'bob', tokens.bob as string]) expect(text).not.toContain(secret);
  });

  test('practice grading shows the score and check titles, not their definitions', async () => {
    const run = await api(d.url, tokens.bob).post('/api/me/grade');
    expect(run.status).toBe(200);
    expect(run.body.score).toMatchObject({ points: 0, maxPoints: 2 });
    expect(run.body.checks).toEqual([{ title: "Le fichier d'état est réparé", status: 'fail', points: 0, maxPoints: 2 }]);
    expect(JSON.stringify(run.body)).not.toMatch(/expected|actual|evidence|\/etc\/etat|hidden/);
  });

  test('the gateway opens only the token owner\'s lab', async () => {
    const mine = await sshExec(d.sshPort, 'alice', tokens.alice as string, 'cat /etc/proprietaire; id -un');
    expect(mine).toEqual({ code: 0, stdout: 'alice\ntechnicien\n', stderr: '' });
    const bobs = await sshExec(d.sshPort, 'bob', tokens.bob as string, 'cat /etc/proprietaire');
    expect(bobs.stdout).toBe('bob\n');
    await expect(sshExec(d.sshPort, 'bob', tokens.alice as string, 'true')).rejects.toThrow(/authentication methods failed/);
    await expect(sshExec(d.sshPort, 'alice', 'ABCDE-FGHJK-MNPQR-STVWX', 'true')).rejects.toThrow(/authentication methods failed/);
    await expect(sshExec(d.sshPort, 'alice+srv', tokens.alice as string, 'true')).resolves.toMatchObject({ code: 1, stderr: expect.stringMatching(/no machine "srv" you can log in to; yours: pc/) });
  });

  test('the gateway forwards no ports: it could reach every lab', async () => {
    const labs = (await op.get(`/api/exams/${examId}`)).body.candidates as { id: string; lab: { id: string } }[];
    const bobLab = (await op.get(`/api/exams/${examId}/candidates/bob`)).body;
    expect(bobLab.lab.id).toBe(labs.find((c) => c.id === 'bob')?.lab.id);
    const bobAddress = d.daemon.app.stores.labs.get(bobLab.lab.id).topology?.machines[0]?.address as string;
    const refused = await new Promise<string>((resolve, reject) => {
      const client = new ssh2.Client();
      client.on('ready', () =>
        client.forwardOut('127.0.0.1', 0, bobAddress, 22, (err) => {
          client.end();
          resolve(err ? err.message : 'opened');
        }),
      );
      client.on('error', reject);
      client.connect({ host: '127.0.0.1', port: d.sshPort, username: 'alice', password: tokens.alice });
    });
    expect(refused).not.toBe('opened');
  });

  test('revoking cuts the token, the sessions and the lab account; restoring gives them back', async () => {
    const bob = api(d.url, tokens.bob);
    expect((await op.post(`/api/exams/${examId}/candidates/bob/revoke`).send({ reason: 'test' })).status).toBe(200);
    const denied = await bob.get('/api/me');
    expect(denied.status).toBe(403);
    expect(denied.body.message).toMatch(/revoked/);
    await expect(sshExec(d.sshPort, 'bob', tokens.bob as string, 'true')).rejects.toThrow(/authentication methods failed/);
    // Inside the lab, the account is locked and expired.
    const labId = (await op.get(`/api/exams/${examId}/candidates/bob`)).body.lab.id as string;
    const lab = d.daemon.app.stores.labs.get(labId);
    const { withSession } = await import('../../src/remote/ssh-client.js');
    const { requireTarget } = await import('../../src/labs/access.js');
    const shadow = await withSession(requireTarget(lab, 'pc'), 10_000, (s) => s.exec('passwd -S technicien; chage -l technicien | grep "Account expires"', { timeoutMs: 10_000 }));
    expect(shadow.stdout).toMatch(/^technicien L /);
    expect(shadow.stdout).toMatch(/Account expires\s*: Jan 02, 1970/);

    expect((await op.post(`/api/exams/${examId}/candidates/bob/restore`)).status).toBe(200);
    expect((await bob.get('/api/me')).status).toBe(200);
    expect((await sshExec(d.sshPort, 'bob', tokens.bob as string, 'id -un')).stdout).toBe('technicien\n');
  });

  test('a new token replaces the old one at once', async () => {
    const issued = await op.post(`/api/exams/${examId}/candidates/bob/token`);
    expect(issued.status).toBe(200);
    expect((await api(d.url, tokens.bob).get('/api/me')).status).toBe(401);
    tokens.bob = issued.body.token;
    expect((await api(d.url, tokens.bob).get('/api/me')).status).toBe(200);
  });

  test("when a candidate's exam ends, their token stops working; the other candidate's goes on", async () => {
    expect((await op.post(`/api/exams/${examId}/candidates/alice/end`)).status).toBe(202);
    const expired = await api(d.url, tokens.alice).get('/api/me');
    expect(expired.status).toBe(401);
    expect(expired.body.message).toMatch(/your exam is over/);
    await expect(sshExec(d.sshPort, 'alice', tokens.alice as string, 'true')).rejects.toThrow(/authentication methods failed/);
    expect((await api(d.url, tokens.bob).get('/api/me')).body.phase).toBe('active');
    await waitFor("alice's lab graded", async () => (await op.get(`/api/exams/${examId}/candidates/alice`)).body, (c) => c.phase === 'ended', 60_000);
  }, 90_000);
});
