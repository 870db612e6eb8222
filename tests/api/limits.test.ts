import { request as httpRequest } from 'node:http';
import { connect, type Socket } from 'node:net';
import ssh2 from 'ssh2';
import { OPERATOR, sshExec, startedExam, startTestDaemon, waitFor, type TestDaemon } from './helpers.js';
import { SMALL_SCENARIO } from './scenarios.js';

/**
 * Limits on what an unauthenticated client may hold or try, per address
 * (every 127.x address reaches the loopback daemon, so each test speaks
 * from its own): connections to the gateway that have not logged in,
 * their deadline, and unknown tokens on both faces.
 */
const LIMITS = {
  ssh: { host: '127.0.0.1', port: 0, unauthenticated: { perAddress: 3, total: 6, timeout: '4s' } },
  failedTokens: { perAddress: 4, window: '8s' },
};

type Probe = { socket: Socket; outcome: Promise<'banner' | 'closed'> };

/** A raw TCP connection to the gateway that never says anything: it sees the SSH banner, or is closed. */
function rawConnection(port: number, localAddress: string): Probe {
  const socket = connect({ host: '127.0.0.1', port, localAddress });
  const outcome = new Promise<'banner' | 'closed'>((resolve) => {
    socket.once('data', (d: Buffer) => resolve(d.toString().startsWith('SSH-2.0-') ? 'banner' : 'closed'));
    socket.once('close', () => resolve('closed'));
    socket.on('error', () => undefined);
  });
  return { socket, outcome };
}

const within = <T>(ms: number, p: Promise<T>) => Promise.race([p, new Promise<'nothing'>((r) => setTimeout(() => r('nothing'), ms))]);

/** A GET from a chosen source address. */
function getFrom(url: string, path: string, token: string, localAddress: string): Promise<{ status: number; retryAfter?: string; body: { error?: string; message?: string } }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${url}${path}`, { localAddress, headers: { Authorization: `Bearer ${token}` } }, (res) => {
      let text = '';
      res.on('data', (d: Buffer) => (text += d.toString()));
      res.on('end', () => {
        try {
          resolve({ status: res.statusCode as number, retryAfter: res.headers['retry-after'], body: JSON.parse(text) });
        } catch (err) {
          reject(new Error(`${res.statusCode}: not JSON: ${text.slice(0, 200)}`));
        }
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** One password login through the gateway from a chosen address: 'ok' or 'refused', and how long the answer took. */
function loginFrom(port: number, user: string, password: string, localAddress: string): Promise<{ result: 'ok' | 'refused'; ms: number }> {
  return new Promise((resolve) => {
    const started = Date.now();
    const client = new ssh2.Client();
    client.on('ready', () => {
      client.end();
      resolve({ result: 'ok', ms: Date.now() - started });
    });
    client.on('error', () => resolve({ result: 'refused', ms: Date.now() - started }));
    client.on('close', () => resolve({ result: 'refused', ms: Date.now() - started }));
    client.connect({ host: '127.0.0.1', port, localAddress, username: user, password, readyTimeout: 30_000, tryKeyboard: false });
  });
}

describe('unauthenticated clients are limited per address', () => {
  let d: TestDaemon;
  let token: string;
  const open: Socket[] = [];

  beforeAll(async () => {
    d = await startTestDaemon(LIMITS);
    token = (await startedExam(d.url, { scenarioYaml: SMALL_SCENARIO, candidates: [{ id: 'alice', name: 'Alice' }] })).tokens.alice as string;
  }, 180_000);
  afterEach(async () => {
    const closed = open.splice(0).map((s) => new Promise<void>((resolve) => (s.destroyed ? resolve() : (s.once('close', () => resolve()), s.destroy()))));
    await Promise.all(closed);
    // Until the gateway has seen them go: a new connection is served again.
    await waitFor('the gateway to free its slots', async () => {
      const p = rawConnection(d.sshPort, '127.0.0.99');
      const outcome = await within(2000, p.outcome);
      p.socket.destroy();
      return outcome;
    }, (o) => o === 'banner', 10_000);
  });
  afterAll(async () => {
    await d?.close();
  }, 120_000);

  const raw = (localAddress: string) => {
    const p = rawConnection(d.sshPort, localAddress);
    open.push(p.socket);
    return p;
  };

  test('past the limit of an address, its extra connections are closed at once; other addresses are served, up to the total', async () => {
    const first = [raw('127.0.0.11'), raw('127.0.0.11'), raw('127.0.0.11')];
    expect(await Promise.all(first.map((p) => within(5000, p.outcome)))).toEqual(['banner', 'banner', 'banner']);
    const extra = [raw('127.0.0.11'), raw('127.0.0.11')];
    expect(await Promise.all(extra.map((p) => within(1000, p.outcome)))).toEqual(['closed', 'closed']);
    // Another address is not held back by the first one's connections.
    const other = [raw('127.0.0.12'), raw('127.0.0.12'), raw('127.0.0.13')];
    expect(await Promise.all(other.map((p) => within(5000, p.outcome)))).toEqual(['banner', 'banner', 'banner']);
    // Six not logged in: the gateway's total, whatever the address.
    expect(await within(1000, raw('127.0.0.14').outcome)).toBe('closed');
    // A slot freed is a slot again.
    first[0]?.socket.destroy();
    await waitFor('the slot freed', async () => within(2000, raw('127.0.0.11').outcome), (o) => o === 'banner', 10_000);
  }, 30_000);

  test('a connection that does not log in is closed at the deadline; a logged-in one stays', async () => {
    const silent = raw('127.0.0.21');
    const started = Date.now();
    expect(await within(4000, silent.outcome)).toBe('banner');
    await new Promise<void>((resolve) => silent.socket.once('close', () => resolve()));
    expect(Date.now() - started).toBeGreaterThanOrEqual(3800);
    expect(Date.now() - started).toBeLessThan(8000);

    const client = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      client.once('ready', () => resolve());
      client.once('error', reject);
      client.connect({ host: '127.0.0.1', port: d.sshPort, localAddress: '127.0.0.22', username: 'alice', password: token, readyTimeout: 15_000 });
    });
    await new Promise((r) => setTimeout(r, 5000));
    const out = await new Promise<string>((resolve, reject) =>
      client.exec('id -un', (err, ch) => {
        if (err) return reject(err);
        let text = '';
        ch.on('data', (b: Buffer) => (text += b.toString()));
        ch.on('close', () => resolve(text));
      }),
    );
    client.end();
    expect(out).toBe('technicien\n');
  }, 30_000);

  test('refused logins answer slower and slower from the same address', async () => {
    const times: number[] = [];
    for (let i = 0; i < 3; i++) {
      const attempt = await loginFrom(d.sshPort, 'alice', `WRONG-${i}`, '127.0.0.31');
      expect(attempt.result).toBe('refused');
      times.push(attempt.ms);
    }
    // Pauses of 0.5 s, 1 s, 2 s (the rest is the key exchange, the same each time).
    expect(times[0]).toBeGreaterThanOrEqual(450);
    expect((times[1] as number) - (times[0] as number)).toBeGreaterThanOrEqual(350);
    expect((times[2] as number) - (times[1] as number)).toBeGreaterThanOrEqual(700);
    // The candidate's own token from another address is not slowed.
    expect((await loginFrom(d.sshPort, 'alice', token, '127.0.0.32')).result).toBe('ok');
  }, 60_000);

  test('after N unknown tokens an address gets 429 with Retry-After, for every token; other addresses, and later the same one, are served', async () => {
    const from = '127.0.0.41';
    for (let i = 0; i < 4; i++) {
      const res = await getFrom(d.url, '/api/exams', `exl_guess_${i}`, from);
      expect([res.status, res.body.error]).toEqual([401, 'unauthenticated']);
    }
    const blocked = await getFrom(d.url, '/api/exams', 'exl_guess_5', from);
    expect(blocked.status).toBe(429);
    expect(blocked.body).toMatchObject({ error: 'too_many_requests', message: expect.stringContaining('too many refused tokens from 127.0.0.41') });
    const wait = Number(blocked.retryAfter);
    expect(wait).toBeGreaterThanOrEqual(1);
    expect(wait).toBeLessThanOrEqual(8);
    // While blocked, no token is checked from there, a valid one neither (else a guess would still tell right from wrong).
    expect((await getFrom(d.url, '/api/exams', OPERATOR, from)).status).toBe(429);
    expect((await getFrom(d.url, '/api/me', token, from)).status).toBe(429);
    // The gateway counts the same refusals: the candidate's good token is refused from there too.
    expect((await loginFrom(d.sshPort, 'alice', token, from)).result).toBe('refused');
    // Elsewhere, nothing changed: the operator and the candidate are served.
    expect((await getFrom(d.url, '/api/exams', OPERATOR, '127.0.0.42')).status).toBe(200);
    expect((await getFrom(d.url, '/api/me', token, '127.0.0.43')).status).toBe(200);
    expect((await sshExec(d.sshPort, 'alice', token, 'true')).code).toBe(0);
    // The window over, the address is served again.
    await new Promise((r) => setTimeout(r, wait * 1000));
    expect((await getFrom(d.url, '/api/exams', OPERATOR, from)).status).toBe(200);
  }, 60_000);
});
