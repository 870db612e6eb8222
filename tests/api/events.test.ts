import { api, JURY, OPERATOR, startTestDaemon, type TestDaemon } from './helpers.js';

interface Summary {
  id: string;
  status: string;
  candidates: { id: string; phase: string; extensionMs: number }[];
}

/** A listener on the room view's event stream, reading it as a browser would (no polling). */
class Listener {
  readonly events: { at: number; summary: Summary }[] = [];
  private readonly controller = new AbortController();
  private waiters: (() => void)[] = [];
  status = 0;
  contentType = '';

  static async open(url: string, token: string): Promise<Listener> {
    const l = new Listener();
    const res = await fetch(url, { headers: { Authorization: `Bearer ${token}`, Accept: 'text/event-stream' }, signal: l.controller.signal });
    l.status = res.status;
    l.contentType = res.headers.get('content-type') ?? '';
    if (res.ok && res.body) void l.read(res.body);
    else await res.body?.cancel();
    return l;
  }

  private async read(body: ReadableStream<Uint8Array>): Promise<void> {
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for await (const chunk of body as unknown as AsyncIterable<Uint8Array>) {
        buffer += decoder.decode(chunk, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const lines = block.split('\n');
          const event = lines.find((l) => l.startsWith('event: '))?.slice(7);
          const data = lines.filter((l) => l.startsWith('data: ')).map((l) => l.slice(6)).join('\n');
          if (event === 'summary') {
            this.events.push({ at: Date.now(), summary: JSON.parse(data) as Summary });
            for (const w of this.waiters.splice(0)) w();
          }
        }
      }
    } catch {
      // aborted by close()
    }
  }

  /** Resolves with the first event (from now on, or from event number `from`) that satisfies `done`. */
  async next(done: (s: Summary) => boolean, timeoutMs: number, from = this.events.length): Promise<{ at: number; summary: Summary }> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.events.slice(from).find((e) => done(e.summary));
      if (found) return found;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no such event within ${timeoutMs} ms; got ${this.events.length - from}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  close(): void {
    this.controller.abort();
  }
}

describe('GET /api/exams/{id}/events: the room view live, without polling', () => {
  let d: TestDaemon;
  let examId: string;
  const listeners: Listener[] = [];
  const open = async (token: string, id = examId) => {
    const l = await Listener.open(`${d.url}/api/exams/${id}/events`, token);
    listeners.push(l);
    return l;
  };

  beforeAll(async () => {
    d = await startTestDaemon();
    const created = await api(d.url, OPERATOR)
      .post('/api/exams')
      .send({ scenario: 'broken-workstation', start: 'manual', duration: '30m', candidates: [{ id: 'alice', name: 'Alice Martin' }, { id: 'bruno', name: 'Bruno Petit' }] });
    expect(created.status).toBe(201);
    examId = created.body.exam.id;
  }, 180_000);
  afterAll(async () => {
    for (const l of listeners) l.close();
    await d?.close();
  }, 180_000);

  test('a jury token listens: the summary comes at once, then each change within a second (not at the 5 s keepalive)', async () => {
    const jury = await open(JURY);
    expect(jury.status).toBe(200);
    expect(jury.contentType).toMatch(/^text\/event-stream/);
    const first = await jury.next(() => true, 10_000);
    expect(first.summary).toMatchObject({ id: examId, status: 'scheduled', candidates: [{ id: 'alice', phase: 'waiting' }, { id: 'bruno', phase: 'waiting' }] });

    // A change made by the operator: bruno's time is extended.
    // Timed from the answer to the change (the request itself may be slow on a busy host): the stream looks every 0.5 s.
    let from = jury.events.length;
    const extend = await api(d.url, OPERATOR).post(`/api/exams/${examId}/candidates/bruno/extend`).send({ duration: '10m' });
    expect(extend.status).toBe(200);
    const answered = Date.now();
    const extended = await jury.next((s) => s.candidates.find((c) => c.id === 'bruno')?.extensionMs === 600_000, 4_000, from);
    expect(extended.at - answered).toBeLessThan(1_500);

    // The end of the exam reaches the listener too, with every candidate's phase.
    from = jury.events.length;
    expect((await api(d.url, OPERATOR).post(`/api/exams/${examId}/end`)).status).toBe(202);
    const ending = Date.now();
    const ended = await jury.next((s) => s.status === 'ended', 4_000, from);
    expect(ended.at - ending).toBeLessThan(1_500);
    expect(ended.summary.candidates.map((c) => c.phase)).toEqual(['ended', 'ended']);
  }, 30_000);

  test('with nothing changing, the stream still says the summary at least every 5 seconds', async () => {
    const op = await open(OPERATOR);
    await op.next(() => true, 10_000);
    const a = await op.next(() => true, 8_000);
    const b = await op.next(() => true, 8_000);
    expect(b.at - a.at).toBeGreaterThan(3_500);
    expect(b.at - a.at).toBeLessThan(7_000);
  }, 30_000);

  test('the start reaches a listener at once; a candidate token (valid: their exam runs) may not listen', async () => {
    const created = await api(d.url, OPERATOR).post('/api/exams').send({ scenario: 'broken-workstation', start: 'manual', candidates: [{ id: 'carla', name: 'Carla Diaz' }] });
    expect(created.status).toBe(201);
    const other = created.body.exam.id as string;
    const token = created.body.candidates[0].token as string;
    const op = await open(OPERATOR, other);
    await op.next((s) => s.status === 'scheduled', 10_000);
    const from = op.events.length;
    expect((await api(d.url, OPERATOR).post(`/api/exams/${other}/start`)).status).toBe(202);
    const answered = Date.now();
    const started = await op.next((s) => s.status === 'running', 4_000, from);
    expect(started.at - answered).toBeLessThan(1_500);
    expect((await api(d.url, token).get('/api/me')).status).toBe(200); // the token is valid now
    const candidate = await open(token, other);
    expect(candidate.status).toBe(403);
    expect(candidate.events).toEqual([]);
    expect((await api(d.url, OPERATOR).post(`/api/exams/${other}/end`)).status).toBe(202);
    await op.next((s) => s.status === 'ending' || s.status === 'ended', 4_000);
  }, 60_000);

  test('no token, an unknown exam and a malformed id are refused before any stream', async () => {
    expect((await api(d.url).get(`/api/exams/${examId}/events`)).status).toBe(401);
    expect((await open(JURY, '000000000000')).status).toBe(404);
    expect((await open(JURY, 'not-an-exam')).status).toBe(400);
  });
});
