/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import request from 'supertest';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { api, examObjects, OPERATOR, sshExec, startedExam, startTestDaemon, type TestDaemon } from '../api/helpers.js';
import { SMALL_SCENARIO } from '../api/scenarios.js';
import { TerminalClient } from '../api/terminal-client.js';
import { launchBrowser, screenshot, watchPageErrors } from './browser.js';

/**
 * A candidate takes the exam in the browser: a real daemon, a real lab of
 * broken-workstation (login machine pc, hostname pc-compta), Debian's
 * chromium. Their token once, then the cookie; the terminal is their own
 * lab's and nobody else's, however the page's requests are edited.
 */
describe('the candidate page', () => {
  let d: TestDaemon;
  let op: ReturnType<typeof api>;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let errors: string[];
  const exams: string[] = [];
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    d = await startTestDaemon();
    op = api(d.url, OPERATOR);
    // Another exam, another candidate: carol.
    const [room, other] = await Promise.all([
      startedExam(d.url, { scenario: 'broken-workstation', candidates: [{ id: 'alice', name: 'Alice Martin' }, { id: 'bob', name: 'Bob Durand' }] }, 400_000),
      startedExam(d.url, { scenarioYaml: SMALL_SCENARIO, candidates: [{ id: 'carol', name: 'Carol' }], mode: 'exam' }, 400_000),
    ]);
    exams.push(room.examId, other.examId);
    Object.assign(tokens, room.tokens, other.tokens);
    browser = await launchBrowser();
    context = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: 'fr-FR' });
    page = await context.newPage();
    errors = watchPageErrors(page);
  }, 480_000);

  afterAll(async () => {
    await browser?.close();
    await d?.close();
    for (const examId of exams) expect(await examObjects(examId)).toEqual({ containers: [], networks: [] });
  }, 240_000);

  /** What the visible terminal shows, row by row (xterm.js's DOM renderer: one element per row). */
  const screen = () =>
    page.evaluate(() => [...document.querySelectorAll('.term:not([hidden]) .xterm-rows > div')].map((row) => (row.textContent ?? '').replace(/\u00a0/g, ' ').trim()));
  /** Waits until a row of the terminal reads exactly this (a command's own output line, not the command typed). */
  const waitForLine = (line: string, timeoutMs = 20_000) =>
    page.waitForFunction(
      (want) => [...document.querySelectorAll('.term:not([hidden]) .xterm-rows > div')].some((row) => (row.textContent ?? '').replace(/\u00a0/g, ' ').trim() === want),
      line,
      { timeout: timeoutMs },
    );

  test('a wrong token is refused with a clear message; the right one opens the exam, with no token in any URL', async () => {
    await page.goto(`${d.url}/candidate.html`);
    await page.locator('#token').fill('AAAAA-BBBBB-CCCCC-DDDDD');
    await page.locator('#signin-button').click();
    await page.locator('#signin-error').filter({ hasText: 'Jeton inconnu' }).waitFor();

    const urls: string[] = [];
    page.on('request', (r) => urls.push(r.url()));
    await page.locator('#token').fill(tokens.alice?.toLowerCase() as string);
    await page.locator('#signin-button').click();
    await page.locator('#exam').waitFor({ state: 'visible' });
    await page.locator('#candidate-name').filter({ hasText: 'Alice Martin' }).waitFor();
    expect(await page.locator('#exam-title').innerText()).toMatch(/\S/);
    // The notice that sessions are recorded.
    expect(await page.locator('#recorded-notice').innerText()).toMatch(/enregistrées/);
    // The token is gone from the page, and never went into a URL.
    expect(await page.locator('#token').inputValue()).toBe('');
    const compact = (tokens.alice as string).replace(/-/g, '');
    expect(urls.filter((u) => u.includes(tokens.alice as string) || u.toUpperCase().includes(compact))).toEqual([]);
    // The cookie is HttpOnly: the page's scripts cannot read it.
    expect(await page.evaluate(() => document.cookie)).toBe('');
    const cookie = (await context.cookies()).find((c) => c.name === 'examlab_session');
    expect(cookie).toMatchObject({ httpOnly: true, sameSite: 'Strict' });
  }, 90_000);

  test('time left follows the daemon, the instructions are rendered Markdown, the sudo password is there', async () => {
    const me = (await api(d.url, tokens.alice).get('/api/me')).body;
    const text = await page.locator('#time-left').innerText();
    expect(text).toMatch(/^\d+:\d{2}:\d{2}$/);
    const [h, m, s] = text.split(':').map(Number) as [number, number, number];
    const shown = h * 3600 + m * 60 + s;
    expect(Math.abs(shown - me.remainingSeconds)).toBeLessThanOrEqual(5);
    await expect(page.locator('#instructions h1').innerText()).resolves.toMatch(/Ticket n° 4127/);
    expect(await page.locator('#instructions blockquote').count()).toBeGreaterThan(0);
    // The scenario has English instructions too: the candidate may pick them.
    await page.locator('.topbar [data-lang="en"]').click();
    await expect(page.locator('#instructions h1').innerText()).resolves.toBe("Ticket 4127: accounting workstation out of order");
    expect(await page.locator('[data-panel="report"]').innerText()).toBe('Report');
    await page.locator('.topbar [data-lang="fr"]').click();
    await expect(page.locator('#instructions h1').innerText()).resolves.toMatch(/Ticket n° 4127/);
    await page.locator('[data-panel="access"]').click();
    expect(await page.locator('#sudo-password').innerText()).toBe(me.access.sudoPassword);
    await page.locator('[data-panel="instructions"]').click();
  }, 90_000);

  test('the terminal is the candidate\'s machine: `hostname` shows pc-compta; é and € go through', async () => {
    await page.locator('#terminal-tabs button', { hasText: 'pc-compta' }).waitFor();
    await page.locator('.dot.on').waitFor({ timeout: 30_000 });
    await page.locator('.term:not([hidden]) .xterm-screen').click();
    await page.keyboard.type('hostname\n');
    await waitForLine('pc-compta');
    await page.keyboard.type('echo "accents: é €" > /tmp/alice-mark; cat /tmp/alice-mark\n');
    await waitForLine('accents: é €');
    expect(await screen()).toContain('accents: é €');
  }, 90_000);

  test('after a network blip the page reconnects to the same shell', async () => {
    await page.keyboard.type('echo shell-$$\n');
    await page.waitForFunction(() => /shell-\d+/.test(document.querySelector('.term:not([hidden]) .xterm-rows')?.textContent ?? ''));
    const pid = /shell-(\d+)/.exec((await screen()).join('\n'))?.[1] as string;
    // The connection drops under the page (as a network blip would): no closing message from the daemon.
    const sockets = (d.daemon as unknown as { sockets: { wss: { clients: Set<{ terminate(): void }> } } }).sockets;
    for (const ws of sockets.wss.clients) ws.terminate();
    await page.locator('#terminal-status').filter({ hasText: /Connexion perdue : reconnexion/ }).waitFor();
    await page.locator('#terminal-status').filter({ hasText: /^Connecté à pc-compta/ }).waitFor({ timeout: 30_000 });
    await page.keyboard.type('echo shell-$$ again\n');
    await waitForLine(`shell-${pid} again`);
  }, 90_000);

  test('the report is saved as it is typed', async () => {
    await page.locator('[data-panel="report"]').click();
    await page.locator('#report-diagnosis').fill('');
    await page.locator('#report-diagnosis').pressSequentially('Le disque /var/log/appli était plein; ');
    await page.locator('#report-status').filter({ hasText: /Enregistré à/ }).waitFor({ timeout: 15_000 });
    const saved = (await api(d.url, tokens.alice).get('/api/me/report')).body.report;
    expect(saved.diagnosis).toBe('Le disque /var/log/appli était plein; ');
    await page.locator('[data-panel="instructions"]').click();
    await page.locator('.term:not([hidden]) .xterm-screen').click();
    await screenshot(page, 'candidate');
  }, 90_000);

  test("another candidate's lab cannot be opened from the page or by editing its requests", async () => {
    // Bob's own terminal session, to have one of his session ids.
    const bobCookie = String((await request(d.url).post('/api/session').send({ token: tokens.bob })).headers['set-cookie']).split(';')[0] as string;
    const bob = await TerminalClient.open(d.url, 'machine=pc', { Cookie: bobCookie, Origin: d.url });
    await bob.waitFor('bob\'s session', () => bob.sessionId !== undefined);
    bob.type('echo bob-secret > /tmp/bob-mark; echo written-$((40+2))\r');
    await bob.waitForText('written-42');

    // From the page: every edit of the WebSocket's query still reaches Alice's lab only, or nothing.
    const attempts = await page.evaluate(
      async ({ bobSession, carolExam }) => {
        const tryOpen = (query: string) =>
          new Promise<string>((resolve) => {
            const ws = new WebSocket(`ws://${location.host}/api/me/terminal?${query}`);
            ws.binaryType = 'arraybuffer';
            let out = '';
            let session = '';
            ws.onmessage = (e) => {
              if (typeof e.data === 'string') {
                const m = JSON.parse(e.data) as { type: string; id?: string };
                if (m.type === 'session') {
                  session = m.id ?? '';
                  ws.send(new TextEncoder().encode('cat /tmp/alice-mark /tmp/bob-mark 2>&1; exit\r'));
                }
              } else out += new TextDecoder().decode(e.data as ArrayBuffer);
            };
            ws.onclose = () => resolve(session ? `session ${session === bobSession ? 'BOB' : 'own'}: ${out}` : 'refused');
            setTimeout(() => resolve(`timeout: ${out}`), 15_000);
          });
        return {
          otherMachine: await tryOpen('machine=srv'),
          resumeBob: await tryOpen(`machine=pc&resume=${bobSession}`),
          otherCandidate: await tryOpen('machine=pc&candidate=bob&candidateId=bob&user=bob'),
          otherExam: await tryOpen(`machine=pc&exam=${carolExam}&examId=${carolExam}&candidate=carol`),
          traversal: await tryOpen('machine=..%2F..%2Fbob'),
        };
      },
      { bobSession: bob.sessionId as string, carolExam: exams[1] as string },
    );
    expect(attempts.otherMachine).toBe('refused');
    expect(attempts.traversal).toBe('refused');
    for (const edited of [attempts.resumeBob, attempts.otherCandidate, attempts.otherExam]) {
      expect(edited).toMatch(/^session own: /);
      expect(edited).toContain('accents: é €');
      expect(edited).not.toContain('bob-secret');
      expect(edited).toMatch(/bob-mark: No such file/);
    }
    // Bob's lab really has his mark, and not Alice's.
    expect((await sshExec(d.sshPort, 'bob', tokens.bob as string, 'cat /tmp/bob-mark; test -e /tmp/alice-mark || echo no-alice')).stdout).toBe('bob-secret\nno-alice\n');
    bob.type('exit\r');

    // The page's API calls, edited: staff routes and another exam's candidate are refused.
    const statuses = await page.evaluate(async (carolExam) => {
      const get = async (path: string) => (await fetch(path, { credentials: 'same-origin' })).status;
      return [await get(`/api/exams/${carolExam}/candidates/carol`), await get('/api/exams'), await get(`/api/exams/${carolExam}/candidates/carol/recordings`)];
    }, exams[1] as string);
    expect(statuses).toEqual([403, 403, 403]);

    // A forged cookie opens nothing: a fresh browser with a made-up session.
    const forged = await browser.newContext();
    await forged.addCookies([{ name: 'examlab_session', value: 'AAAAA-BBBBB-CCCCC-DDDDD', url: d.url, httpOnly: true, sameSite: 'Strict' }]);
    const forgedPage = await forged.newPage();
    await forgedPage.goto(`${d.url}/candidate.html`);
    await forgedPage.locator('#signin').waitFor({ state: 'visible' });
    const forgedTry = await forgedPage.evaluate(
      () =>
        new Promise<string>((resolve) => {
          const ws = new WebSocket(`ws://${location.host}/api/me/terminal?machine=pc`);
          ws.onopen = () => resolve('opened');
          ws.onclose = () => resolve('refused');
        }),
    );
    expect(forgedTry).toBe('refused');
    expect(await forgedPage.evaluate(async () => (await fetch('/api/me')).status)).toBe(401);
    // Carol's real token as a cookie opens Carol's own lab: her exam's machine, not Alice's.
    await forged.clearCookies();
    const carolCookie = String((await request(d.url).post('/api/session').send({ token: tokens.carol })).headers['set-cookie']).split(';')[0] as string;
    const carol = await TerminalClient.open(d.url, 'machine=pc', { Cookie: carolCookie, Origin: d.url });
    carol.type('cat /etc/proprietaire; cat /tmp/alice-mark 2>&1; exit\r');
    await carol.waitFor('carol\'s shell to end', () => carol.closed !== undefined);
    expect(carol.output).toContain('carol');
    expect(carol.output).not.toContain('accents');
    await forged.close();
  }, 90_000);

  test('a practice exam offers the self-check: a score and each check\'s status, not its definition', async () => {
    await page.locator('[data-panel="selfcheck"]').click();
    await page.locator('#selfcheck-run').click();
    await page.locator('#selfcheck-result .score').filter({ hasText: /^Score : \d+(\.\d+)? \/ \d+/ }).waitFor({ timeout: 80_000 });
    const items = await page.locator('#selfcheck-result .checks li').allInnerTexts();
    expect(items.length).toBeGreaterThan(3);
    expect(items.every((t) => /(réussi|échoué|non vérifié)$/.test(t))).toBe(true);
    await page.locator('[data-panel="instructions"]').click();
  }, 90_000);

  test('when the exam ends, the terminal closes with a clear message and the report is read-only', async () => {
    expect((await op.post(`/api/exams/${exams[0]}/candidates/alice/end`)).status).toBe(202);
    await page.locator('#banner').filter({ hasText: /épreuve est terminée/ }).waitFor({ timeout: 20_000 });
    expect(await page.locator('#time-left').innerText()).toBe('terminé');
    expect(await page.locator('#terminal-status').innerText()).toMatch(/terminaux sont fermés/);
    await page.locator('[data-panel="report"]').click();
    expect(await page.locator('#report-diagnosis').getAttribute('readonly')).not.toBeNull();
    expect(await page.locator('#report-diagnosis').inputValue()).toBe('Le disque /var/log/appli était plein; ');
    await page.locator('[data-panel="instructions"]').click();
    await screenshot(page, 'candidate-ended');
    expect(errors).toEqual([]);
  }, 90_000);
});
