import request from 'supertest';
import { api, examObjects, OPERATOR, JURY, sshExec, startedExam, startTestDaemon, waitFor, type TestDaemon } from './helpers.js';
import { SMALL_SCENARIO } from './scenarios.js';
import { TerminalClient } from './terminal-client.js';
import WebSocket from 'ws';

/**
 * The browser terminal's server side: a WebSocket to the candidate's own
 * lab shell (the same rules as the SSH gateway), resumable after a blip,
 * cut with the candidate's access; every session recorded as asciicast v2,
 * listed, exported and watched live by the jury.
 */
describe('the browser terminal and the recordings', () => {
  let d: TestDaemon;
  let op: ReturnType<typeof api>;
  let examId: string;
  let tokens: Record<string, string> = {};
  const cookies: Record<string, string> = {};
  const origin = () => ({ Origin: d.url });
  const as = (who: string) => ({ Cookie: cookies[who] as string, ...origin() });

  beforeAll(async () => {
    d = await startTestDaemon();
    op = api(d.url, OPERATOR);
    ({ examId, tokens } = await startedExam(d.url, { scenarioYaml: SMALL_SCENARIO, candidates: [{ id: 'alice', name: 'Alice' }, { id: 'bob', name: 'Bob' }] }));
    for (const who of ['alice', 'bob']) {
      const res = await request(d.url).post('/api/session').send({ token: tokens[who] });
      expect(res.body).toEqual({ role: 'candidate', name: who === 'alice' ? 'Alice' : 'Bob', examId, candidateId: who });
      cookies[who] = String((res.headers['set-cookie'] as unknown as string[])[0]).split(';')[0] as string;
    }
  }, 200_000);
  afterAll(async () => {
    await d?.close();
    if (examId) expect(await examObjects(examId)).toEqual({ containers: [], networks: [] });
  }, 180_000);

  test('the cookie opens the candidate\'s own shell: their machine, UTF-8 both ways, resize', async () => {
    const t = await TerminalClient.open(d.url, 'machine=pc&cols=100&rows=30', as('alice'));
    // Typed before the shell is open: kept for it.
    t.type('cat /etc/proprietaire; id -un\r');
    await t.waitFor('the session id', () => t.sessionId !== undefined);
    await t.waitForText(/alice\r\ntechnicien/);
    t.type('echo "été €"\r');
    await t.waitForText('été €\r\n');
    t.type('stty size\r');
    await t.waitForText('30 100');
    t.resize(120, 40);
    t.type('stty size\r');
    await t.waitForText('40 120');
    // The room view sees them connected.
    const summary = (await op.get(`/api/exams/${examId}`)).body;
    const alice = summary.candidates.find((c: { id: string }) => c.id === 'alice');
    expect(alice.connected).toBe(1);
    expect(Date.parse(alice.lastActivityAt)).toBeGreaterThan(Date.now() - 60_000);
    t.type('exit\r');
    await t.waitFor('the closed message', () => t.closed !== undefined);
    expect(t.closed?.reason).toBe('ended');
  });

  test('refused: no Origin or another site, no cookie, a forged cookie, a staff cookie, a machine not theirs', async () => {
    const status = (query: string, headers: Record<string, string>) => TerminalClient.open(d.url, query, headers).then(
      (t) => {
        t.close();
        return 101;
      },
      (err: { status?: number; body?: string }) => err.status,
    );
    expect(await status('machine=pc', { Cookie: cookies.alice as string })).toBe(403);
    expect(await status('machine=pc', { Cookie: cookies.alice as string, Origin: 'http://evil.example' })).toBe(403);
    expect(await status('machine=pc', origin())).toBe(401);
    expect(await status('machine=pc', { Cookie: 'examlab_session=AAAAA-BBBBB-CCCCC-DDDDD', ...origin() })).toBe(401);
    const jury = (await request(d.url).post('/api/session').send({ token: JURY })).headers['set-cookie'] as unknown as string[];
    expect(await status('machine=pc', { Cookie: (jury[0] as string).split(';')[0] as string, ...origin() })).toBe(403);
    expect(await status('machine=srv', as('alice'))).toBe(404);
    expect(await status('machine=..%2Fbob', as('alice'))).toBe(400);
    // A token in the URL is no credential.
    expect(await status(`machine=pc&token=${tokens.alice}`, origin())).toBe(401);
  });

  test('after a dropped connection the same shell is resumed with what it printed meanwhile', async () => {
    const first = await TerminalClient.open(d.url, 'machine=pc', as('alice'));
    await first.waitFor('the session id', () => first.sessionId !== undefined);
    first.type('echo pid=$$\r');
    await first.waitForText(/pid=\d+\r\n/);
    const pid = /pid=(\d+)\r\n/.exec(first.output)?.[1];
    first.type('sleep 1; echo "printed while away"\r');
    first.ws.terminate();
    await new Promise((r) => setTimeout(r, 2000));
    const again = await TerminalClient.open(d.url, `machine=pc&resume=${first.sessionId}`, as('alice'));
    await again.waitForText('printed while away');
    expect(again.sessionId).toBe(first.sessionId);
    again.type('echo pid=$$\r');
    await again.waitForText(`pid=${pid}\r\n`);
    // Bob cannot take Alice's session by its id: he gets a shell of his own.
    const bob = await TerminalClient.open(d.url, `machine=pc&resume=${first.sessionId}`, as('bob'));
    await bob.waitFor('the session id', () => bob.sessionId !== undefined);
    expect(bob.sessionId).not.toBe(first.sessionId);
    bob.type('cat /etc/proprietaire\r');
    await bob.waitForText('bob\r\n');
    expect(bob.output).not.toContain('printed while away');
    // A closed page leaves the shell waiting for its resume; `exit` ends it.
    for (const t of [bob, again]) {
      t.type('exit\r');
      await t.waitFor('the closed message', () => t.closed?.reason === 'ended');
    }
  });

  test('every session is recorded as asciicast v2, listed, served, exported and watched live', async () => {
    expect((await sshExec(d.sshPort, 'alice', tokens.alice as string, 'echo through-ssh')).stdout).toBe('through-ssh\n');
    const live = await TerminalClient.open(d.url, 'machine=pc', as('alice'));
    await live.waitFor('the session id', () => live.sessionId !== undefined);
    live.type('echo before-watch\r');
    await live.waitForText('before-watch\r\n');

    const jury = api(d.url, JURY);
    const list = (await jury.get(`/api/exams/${examId}/candidates/alice/recordings`)).body.recordings as { id: string; via: string; live: boolean; bytes: number; machine: string; endedAt?: string }[];
    expect(list.map((r) => r.via)).toEqual(['browser', 'browser', 'ssh', 'browser']);
    expect(list.every((r) => r.machine === 'pc' && r.bytes > 0)).toBe(true);
    expect(list.filter((r) => r.live).map((r) => r.id)).toEqual([live.sessionId]);
    expect(list.filter((r) => !r.live).every((r) => r.endedAt)).toBe(true);

    const first = await jury.get(`/api/exams/${examId}/candidates/alice/recordings/${list[0]?.id}.cast`);
    expect(first.status).toBe(200);
    expect(first.headers['content-type']).toMatch(/^application\/x-asciicast/);
    const lines = first.text.trim().split('\n').map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ version: 2, width: 100, height: 30, title: 'alice@pc (browser)' });
    expect(typeof lines[0].timestamp).toBe('number');
    const events = lines.slice(1) as [number, string, string][];
    expect(events.filter((e) => e[1] === 'i').map((e) => e[2]).join('')).toContain('echo "été €"\r');
    expect(events.filter((e) => e[1] === 'o').map((e) => e[2]).join('')).toContain('été €');
    expect(events.filter((e) => e[1] === 'r').map((e) => e[2])).toEqual(['120x40']);
    expect(events.every((e, i) => i === 0 || e[0] >= (events[i - 1] as [number, string, string])[0])).toBe(true);
    // Recordings are the staff's: a candidate cookie cannot list them.
    expect((await request(d.url).get(`/api/exams/${examId}/candidates/alice/recordings`).set('Cookie', cookies.alice as string)).status).toBe(403);
    expect((await jury.get(`/api/exams/${examId}/candidates/alice/recordings/20260101T000000Z-00000000.cast`)).status).toBe(404);

    // The live watch: the header, what was already recorded, then what comes, then closed.
    const frames: { type: string; event?: [number, string, string]; width?: number }[] = [];
    const watcher = new WebSocket(`${d.url.replace('http', 'ws')}/api/exams/${examId}/candidates/alice/recordings/${live.sessionId}/live`, { headers: { Authorization: `Bearer ${JURY}`, ...origin() } });
    watcher.on('message', (m) => frames.push(JSON.parse(String(m))));
    await new Promise((r) => watcher.once('open', r));
    watcher.send('rm -rf /\r');
    const watched = () => frames.filter((f) => f.type === 'event' && f.event?.[1] === 'o').map((f) => f.event?.[2]).join('');
    await waitFor('the recorded output', async () => watched(), (o) => o.includes('before-watch'), 10_000);
    expect(frames[0]).toMatchObject({ type: 'header', version: 2, width: 80 });
    live.type('echo during-watch\r');
    await waitFor('the live output', async () => watched(), (o) => o.includes('during-watch'), 10_000);
    live.type('exit\r');
    await waitFor('closed', async () => frames.at(-1)?.type, (t) => t === 'closed', 10_000);
    // The watch shows the screen (output, resizes), not the keystrokes; nothing the watcher sent reached the shell.
    expect(frames.filter((f) => f.type === 'event' && f.event?.[1] === 'i')).toEqual([]);
    const cast = (await jury.get(`/api/exams/${examId}/candidates/alice/recordings/${live.sessionId}.cast`)).text;
    expect(cast).toContain('"i","echo during-watch\\r"');
    expect(cast).not.toContain('rm -rf');
    // A candidate cannot watch.
    const refused = await new Promise<number | undefined>((resolve) => {
      const ws = new WebSocket(`${d.url.replace('http', 'ws')}/api/exams/${examId}/candidates/alice/recordings/${live.sessionId}/live`, { headers: as('alice') });
      ws.on('unexpected-response', (_q, res) => resolve(res.statusCode));
      ws.on('open', () => resolve(101));
    });
    expect(refused).toBe(403);

    const tar = await jury.get(`/api/exams/${examId}/recordings.tar`).buffer(true).parse((res, cb) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => cb(null, Buffer.concat(chunks)));
    });
    expect(tar.status).toBe(200);
    const names: string[] = [];
    const body = tar.body as Buffer;
    for (let at = 0; at + 512 <= body.length; ) {
      const name = body.subarray(at, at + 100).toString('utf8').replace(/\0.*$/s, '');
      if (!name) break;
      const size = parseInt(body.subarray(at + 124, at + 136).toString('utf8').trim(), 8);
      names.push(name);
      at += 512 + Math.ceil(size / 512) * 512;
    }
    const aliceFiles = (await jury.get(`/api/exams/${examId}/candidates/alice/recordings`)).body.recordings.flatMap((r: { id: string }) => [`alice/${r.id}.cast`, `alice/${r.id}.json`]);
    expect(names).toEqual(expect.arrayContaining(aliceFiles));
    // The audit log has each session, with how it came.
    const audit = (await op.get(`/api/audit?exam=${examId}`)).body;
    const opened = JSON.stringify(audit);
    expect(opened).toContain('"via":"browser"');
    expect(opened).toContain('"via":"ssh"');
  });

  test('revoking the candidate closes their terminal with a clear reason', async () => {
    const t = await TerminalClient.open(d.url, 'machine=pc', as('bob'));
    await t.waitFor('the session id', () => t.sessionId !== undefined);
    expect((await op.post(`/api/exams/${examId}/candidates/bob/revoke`).send({ reason: 'test' })).status).toBe(200);
    await t.waitFor('the closed message', () => t.closed !== undefined);
    expect(t.closed).toEqual({ reason: 'revoked', message: 'your access has been withdrawn; ask the exam supervisor' });
    expect((await op.post(`/api/exams/${examId}/candidates/bob/restore`)).status).toBe(200);
  });

  test("at the candidate's end the terminal says the session is over", async () => {
    const t = await TerminalClient.open(d.url, 'machine=pc', as('alice'));
    await t.waitFor('the session id', () => t.sessionId !== undefined);
    expect((await op.post(`/api/exams/${examId}/candidates/alice/end`)).status).toBe(202);
    await t.waitFor('the closed message', () => t.closed !== undefined);
    expect(t.closed?.reason).toBe('ended');
    // And the cookie no longer opens anything.
    const refused = await TerminalClient.open(d.url, 'machine=pc', as('alice')).catch((err: { status: number; body: string }) => err);
    expect(refused).toMatchObject({ status: 401, body: expect.stringMatching(/unknown or revoked token|over|ended/) });
  });
});
