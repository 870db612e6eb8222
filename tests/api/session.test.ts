import request from 'supertest';
import { SIGN_IN_LIMIT } from '../../src/http/index.js';
import { JURY, OPERATOR, startTestDaemon, type TestDaemon } from './helpers.js';

/**
 * The pages' sessions: the token typed once is kept in an HttpOnly cookie;
 * cookie requests that change something need the page's header (CSRF);
 * token entry is rate-limited; every response carries the security headers.
 */
describe('sessions by cookie, CSRF, rate limits, security headers', () => {
  let d: TestDaemon;
  beforeAll(async () => {
    d = await startTestDaemon();
  }, 60_000);
  afterAll(async () => d?.close(), 60_000);

  const signIn = (token: string) => request(d.url).post('/api/session').send({ token });
  const cookieOf = (res: request.Response) => String((res.headers['set-cookie'] as unknown as string[])[0]).split(';')[0] as string;

  test('POST /api/session names the token and sets an HttpOnly, SameSite=Strict cookie holding it', async () => {
    const res = await signIn(JURY);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ role: 'jury', name: 'juror' });
    const cookies = res.headers['set-cookie'] as unknown as string[];
    expect(cookies).toHaveLength(1);
    const attributes = (cookies[0] as string).split(/;\s*/);
    expect(attributes[0]).toBe(`examlab_session=${encodeURIComponent(JURY)}`);
    expect(attributes.slice(1).sort()).toEqual(['HttpOnly', 'Path=/', 'SameSite=Strict']);
    // Plain HTTP here: not Secure (the browser would drop it).
    expect(cookies[0]).not.toMatch(/Secure/);
  });

  test('GET /api/session reads the cookie; without one it is 401; an unknown token is 401', async () => {
    const cookie = cookieOf(await signIn(OPERATOR));
    expect((await request(d.url).get('/api/session').set('Cookie', cookie)).body).toEqual({ role: 'operator', name: 'tester' });
    const none = await request(d.url).get('/api/session');
    expect([none.status, none.body.message]).toEqual([401, 'no session: sign in with the token on your card']);
    expect((await request(d.url).get('/api/session').set('Cookie', 'examlab_session=forged-token')).status).toBe(401);
    const wrong = await signIn('not-a-token');
    expect([wrong.status, wrong.headers['set-cookie']]).toEqual([401, undefined]);
    expect((await request(d.url).post('/api/session').send({ token: '' })).status).toBe(400);
  });

  test('the cookie authenticates the API like a Bearer token', async () => {
    const cookie = cookieOf(await signIn(OPERATOR));
    const res = await request(d.url).get('/api/exams').set('Cookie', cookie);
    expect(res.status).toBe(200);
    const jury = cookieOf(await signIn(JURY));
    expect((await request(d.url).get('/api/tokens').set('Cookie', jury)).status).toBe(403);
  });

  test('a cookie request that changes something without X-Examlab-Request is 403; with it, or with Bearer, it goes through', async () => {
    const cookie = cookieOf(await signIn(OPERATOR));
    const bare = await request(d.url).post('/api/tokens').set('Cookie', cookie).send({ name: 'csrf-test', role: 'jury' });
    expect(bare.status).toBe(403);
    expect(bare.body.message).toMatch(/X-Examlab-Request: 1/);
    const wrongValue = await request(d.url).post('/api/tokens').set('Cookie', cookie).set('X-Examlab-Request', 'yes').send({ name: 'csrf-test', role: 'jury' });
    expect(wrongValue.status).toBe(403);
    const withHeader = await request(d.url).post('/api/tokens').set('Cookie', cookie).set('X-Examlab-Request', '1').send({ name: 'csrf-page', role: 'jury' });
    expect(withHeader.status).toBe(201);
    const bearer = await request(d.url).post('/api/tokens').set('Authorization', `Bearer ${OPERATOR}`).send({ name: 'csrf-bearer', role: 'jury' });
    expect(bearer.status).toBe(201);
    // Reads need no header.
    expect((await request(d.url).get('/api/tokens').set('Cookie', cookie)).status).toBe(200);
  });

  test('DELETE /api/session clears the cookie', async () => {
    const res = await request(d.url).delete('/api/session');
    expect(res.status).toBe(200);
    expect((res.headers['set-cookie'] as unknown as string[])[0]).toMatch(/^examlab_session=; Max-Age=0; Path=\/; HttpOnly; SameSite=Strict$/);
  });

  test('a token is never taken from a URL', async () => {
    for (const path of [`/api/exams?token=${OPERATOR}`, `/api/exams?access_token=${OPERATOR}`, `/api/session?token=${OPERATOR}`]) {
      expect((await request(d.url).get(path)).status).toBe(401);
    }
  });

  test('every response carries the security headers and the content security policy', async () => {
    for (const path of ['/', '/candidate.html', '/healthz', '/api/nothing']) {
      const res = await request(d.url).get(path);
      expect(res.headers['content-security-policy']).toBe(
        "default-src 'self';script-src 'self' 'wasm-unsafe-eval';style-src 'self' 'unsafe-inline';connect-src 'self';img-src 'self' data:;frame-ancestors 'none'",
      );
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
    }
  });

  // Last: it spends this daemon's sign-in allowance.
  test(`the ${SIGN_IN_LIMIT + 1}th sign-in attempt in a minute is 429, with a clear message`, async () => {
    const statuses: number[] = [];
    // Earlier tests signed in already; go until the limit answers.
    let last: request.Response | undefined;
    for (let i = 0; i <= SIGN_IN_LIMIT; i++) {
      last = await signIn(JURY);
      statuses.push(last.status);
      if (last.status === 429) break;
    }
    expect(statuses.at(-1)).toBe(429);
    expect(last?.body).toEqual({ error: 'too_many_requests', message: 'too many sign-in attempts from this address; wait a minute and try again', details: [] });
    // The rest of the API is not touched by it.
    expect((await request(d.url).get('/api/exams').set('Authorization', `Bearer ${OPERATOR}`)).status).toBe(200);
  });
});

describe('sign-in limits counted afresh', () => {
  let d: TestDaemon;
  beforeAll(async () => {
    d = await startTestDaemon();
  }, 60_000);
  afterAll(async () => d?.close(), 60_000);

  test(`exactly ${SIGN_IN_LIMIT} sign-ins a minute go through; the ${SIGN_IN_LIMIT + 1}th is 429`, async () => {
    const statuses: number[] = [];
    for (let i = 0; i < SIGN_IN_LIMIT + 1; i++) statuses.push((await request(d.url).post('/api/session').send({ token: JURY })).status);
    expect(statuses).toEqual([...Array(SIGN_IN_LIMIT).fill(200), 429]);
  });
});
