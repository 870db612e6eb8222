import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { api, JURY, OPERATOR, startTestDaemon, waitFor, type TestDaemon } from '../api/helpers.js';
import { launchBrowser, screenshot } from './browser.js';

const ROOT = process.cwd();

/** The page scripts, bundled when missing or older than their sources (`make build` does it too). */
function ensureBundle(): void {
  const bundle = join(ROOT, 'dist', 'public', 'staff.js');
  const newest = (dir: string): number =>
    Math.max(...readdirSync(dir, { withFileTypes: true }).map((e) => (e.isDirectory() ? newest(join(dir, e.name)) : statSync(join(dir, e.name)).mtimeMs)));
  if (!existsSync(bundle) || statSync(bundle).mtimeMs < newest(join(ROOT, 'src', 'web'))) execFileSync(process.execPath, [join(ROOT, 'scripts', 'build-web.mjs')], { stdio: 'inherit' });
}

/**
 * The staff pages in Debian's chromium against a real daemon and real labs:
 * the jury follows the room live, the operator ends the exam from the page,
 * the jury sees the scores arrive, marks a criterion and downloads results.
 */
describe('staff pages: the room view, the end of the exam, marking and downloads', () => {
  let d: TestDaemon;
  let browser: Browser;
  let juryContext: BrowserContext;
  let jury: Page;
  let examId: string;
  /** Requests the jury's page made, to show that the room view does not poll. */
  const juryRequests: string[] = [];
  const pageErrors: string[] = [];

  const newPage = async (locale: string): Promise<{ context: BrowserContext; page: Page }> => {
    // The pages run under the daemon's own Content-Security-Policy (helmet): a script it refused would be a page error here.
    const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale, acceptDownloads: true });
    const page = await context.newPage();
    page.on('pageerror', (err) => pageErrors.push(err.message));
    page.on('console', (m) => {
      // An HTTP error the page shows in words (a refused token) is not a script error.
      if (m.type() === 'error' && !m.text().startsWith('Failed to load resource')) pageErrors.push(m.text());
    });
    return { context, page };
  };
  const signIn = async (page: Page, token: string) => {
    await page.goto(d.url);
    await page.fill('#token', token);
    await page.click('#signin-form button[type=submit]');
  };
  const row = (page: Page, id: string) => page.locator(`#room-rows tr[data-candidate="${id}"]`);

  beforeAll(async () => {
    ensureBundle();
    d = await startTestDaemon();
    const op = api(d.url, OPERATOR);
    const created = await op.post('/api/exams').send({
      title: 'Session navigateur',
      scenario: 'broken-workstation',
      candidates: [
        { id: 'alice', name: 'Alice Martin' },
        { id: 'bruno', name: 'Bruno Petit' },
      ],
      duration: '45m',
      start: 'now',
      timeZone: 'Europe/Paris',
    });
    expect(created.status).toBe(201);
    examId = created.body.exam.id;
    const tokens = Object.fromEntries(created.body.candidates.map((c: { id: string; token: string }) => [c.id, c.token]));
    await waitFor('both labs offered', async () => (await op.get(`/api/exams/${examId}`)).body, (e) => e.progress.byPhase.active + e.progress.byPhase.failed === 2, 400_000);
    const ready = (await op.get(`/api/exams/${examId}`)).body;
    expect(ready.candidates.map((c: { phase: string; detail?: string }) => `${c.phase} ${c.phase === 'active' ? '' : c.detail}`.trim())).toEqual(['active', 'active']);
    const report = await api(d.url, tokens.alice).put('/api/me/report').send({ diagnosis: 'CUPS arrêté ; journal en DEBUG.', actions: 'systemctl enable --now cups', result: 'Impression rétablie.' });
    expect(report.status).toBe(200);
    browser = await launchBrowser();
  }, 480_000);

  afterAll(async () => {
    await browser?.close();
    await d?.close();
  }, 180_000);

  test('a wrong token is refused in plain words; the jury signs in and sees the exam, then its room: both candidates sitting the exam, clocks running', async () => {
    ({ context: juryContext, page: jury } = await newPage('fr-FR'));
    await signIn(jury, 'not-a-token-at-all');
    await seeText(jury.locator('#error'), /Session expirée ou jeton inconnu/);

    await signIn(jury, JURY);
    await jury.waitForSelector(`a[href="#/exam/${examId}"]`);
    expect(await jury.locator('#who').textContent()).toMatch(/jury/);
    await jury.click(`a[href="#/exam/${examId}"]`);
    await jury.waitForSelector('#live.on');
    jury.on('request', (r) => juryRequests.push(`${r.method()} ${new URL(r.url()).pathname}`));
    for (const id of ['alice', 'bruno']) {
      await seeText(row(jury, id).locator('td.phase'), /en épreuve/);
      expect(await row(jury, id).locator('.countdown').textContent()).toMatch(/^0:4\d:\d\d$/);
    }
    // The jury has no operator actions.
    expect(await jury.locator('[data-action]').count()).toBe(0);
    // The clock counts down in the page without asking the server.
    const before = await row(jury, 'alice').locator('.countdown').textContent();
    await jury.waitForTimeout(2_200);
    expect(await row(jury, 'alice').locator('.countdown').textContent()).not.toBe(before);
  }, 60_000);

  test('the operator ends the exam from the page (after confirming); the jury’s room view turns to graded with scores, live', async () => {
    const { context, page: op } = await newPage('en-GB');
    await signIn(op, OPERATOR);
    await op.click(`a[href="#/exam/${examId}"]`);
    await op.waitForSelector('#live.on');
    await op.waitForSelector('#room-rows button[data-action="extend"]');
    await screenshot(op, 'room', { fullPage: true });
    // Per-candidate actions, each seen live by the jury: more time for bruno, alice revoked then restored, alice graded now.
    const endsAt = async () => (await row(jury, 'bruno').locator('td').nth(4).textContent()) ?? '';
    const bruno = await endsAt();
    await row(op, 'bruno').locator('button[data-action="extend"]').click();
    await op.fill('#confirm-minutes', '10');
    await op.click('#confirm-ok');
    await seeText(op.locator('#notice'), /Done: Extend \(Bruno Petit\)/);
    const later = (t: string) => t.split(':').map(Number).reduce((a, n) => a * 60 + n, 0);
    await waitFor('bruno 10 minutes later on the jury page', endsAt, (t) => later(t) - later(bruno) === 600, 10_000);
    await row(op, 'alice').locator('button[data-action="revoke"]').click();
    await op.click('#confirm-ok');
    await seeText(row(jury, 'alice').locator('td.phase'), /révoqué/);
    await row(op, 'alice').locator('button[data-action="restore"]').click();
    await waitFor('alice restored on the jury page', async () => (await row(jury, 'alice').locator('td.phase').textContent()) ?? '', (t) => !/révoqué/.test(t), 10_000);
    await row(op, 'alice').locator('button[data-action="grade"]').click();
    await op.click('#confirm-ok');
    await seeText(op.locator('#notice'), /Done: Grade now \(Alice Martin\)\. Score: \d+ \/ \d+/, 120_000);
    // Cancelling the confirmation does nothing.
    await op.click('button[data-action="end-exam"]');
    await op.click('#confirm-cancel');
    await op.waitForTimeout(1_000);
    expect((await api(d.url, OPERATOR).get(`/api/exams/${examId}`)).body.status).toBe('running');

    await op.click('button[data-action="end-exam"]');
    expect(await op.locator('#confirm-text').textContent()).toMatch(/EVERY candidate/);
    await op.click('#confirm-ok');
    await seeText(op.locator('#notice'), /Done: End the exam/);

    // The jury's page, untouched since, follows: ending, then ended with a score.
    await jury.waitForSelector('#room-rows tr[data-phase="ending"], #room-rows tr[data-phase="ended"]', { timeout: 10_000 });
    for (const id of ['alice', 'bruno']) {
      await jury.waitForSelector(`#room-rows tr[data-candidate="${id}"][data-phase="ended"]`, { timeout: 240_000 });
      await seeText(row(jury, id).locator('td.score'), /^\d+(\.\d+)? \/ \d+ \(/, 30_000);
    }
    expect(await jury.locator('.status').textContent()).toMatch(/terminé/);
    await screenshot(jury, 'room-graded', { fullPage: true });
    // No polling: the page never asked for the exam again, only for the results when grades came.
    const asked = juryRequests.filter((r) => /\/api\//.test(r) && !r.endsWith('/events'));
    expect(asked.length).toBeGreaterThan(0);
    expect(asked.every((r) => r === `GET /api/exams/${examId}/results`)).toBe(true);
    await context.close();
  }, 300_000);

  test('the jury opens a candidate: checks with expected and actual, the report; marks a criterion and sees the total change; a recording replays (asciinema-player, under the CSP)', async () => {
    // A recording as the recordings API lists and serves it, answered by the browser here so its content is known
    // (tests/browser/staff-live.test.ts replays real ones): the page lists it and replays it.
    const base = `/api/exams/${examId}/candidates/alice/recordings`;
    await jury.route(`**${base}`, (route) =>
      route.fulfill({ json: { recordings: [{ id: 'r1', machine: 'pc', via: 'browser', startedAt: new Date().toISOString(), endedAt: new Date().toISOString(), live: false, bytes: 2048 }] } }),
    );
    const cast = [
      JSON.stringify({ version: 2, width: 80, height: 24, timestamp: 1764400000, title: 'alice@pc' }),
      JSON.stringify([0.1, 'o', 'technicien@pc:~$ ']),
      JSON.stringify([0.5, 'i', 'hostname\r']),
      JSON.stringify([0.6, 'o', 'hostname\r\npc-alice\r\nje répare l’imprimante €\r\n']),
    ].join('\n');
    await jury.route(`**${base}/r1.cast`, (route) => route.fulfill({ status: 200, contentType: 'application/x-asciicast', body: cast }));
    await jury.click(`#room-rows tr[data-candidate="alice"] a`);
    await jury.waitForSelector('#cand-checks table.checks');
    expect(await jury.locator('#cand-checks tbody tr').count()).toBeGreaterThan(3);
    await seeText(jury.locator('#cand-checks'), /cups-service/);
    // broken-workstation's printing fault is a pool: the page says which variant this candidate drew.
    await seeText(jury.locator('#faults-drawn'), /Panne de l.impression\s*: .*(arrêté|masqué|n'est plus exécutable)/);
    await seeText(jury.locator('#cand-report'), /CUPS arrêté/);
    const before = await jury.locator('#total').textContent();
    const expected = await api(d.url, JURY).get(`/api/exams/${examId}/candidates/alice/result`);
    expect(before).toContain(`${expected.body.total.points} / ${expected.body.total.maxPoints}`);

    const criterion = jury.locator('fieldset[data-criterion="compte-rendu"]');
    await criterion.locator('input[value="complet"]').check();
    await criterion.locator('textarea').fill('Cause et correction pour chaque incident traité.');
    await criterion.locator('button[data-mark]').click();
    await seeText(jury.locator('#notice'), /Enregistrer la note/);
    const after = await jury.locator('#total').textContent();
    const marked = (await api(d.url, JURY).get(`/api/exams/${examId}/candidates/alice/result`)).body;
    expect(marked.manualCriteria.find((m: { id: string }) => m.id === 'compte-rendu')).toMatchObject({ level: 'complet', points: 4, comment: 'Cause et correction pour chaque incident traité.', markedBy: 'jury:juror' });
    expect(marked.total.points).toBe(expected.body.total.points + 4);
    expect(after).toContain(`${marked.total.points} / ${marked.total.maxPoints}`);
    expect(after).not.toBe(before);
    await seeText(criterion.locator('.mark-state'), /noté par juror \(jury\) le/);
    await jury.click('button[data-replay="r1"]');
    await jury.waitForSelector('#player .ap-player', { timeout: 15_000 });
    await waitFor('the recording replayed', async () => (await jury.locator('#player').textContent()) ?? '', (t) => t.includes('je répare l’imprimante €'), 15_000);
    await screenshot(jury, 'candidate-detail', { fullPage: true });
    expect(pageErrors).toEqual([]);
  }, 60_000);

  test('downloads answer: CSV (plain and for French Excel) with a row per candidate, JSON, XLSX, the printable report; the audit chain is intact', async () => {
    const fetchDownload = async (selector: string) => {
      const [download] = await Promise.all([jury.waitForEvent('download'), jury.click(selector)]);
      return { name: download.suggestedFilename(), bytes: readFileSync((await download.path()) as string) };
    };
    const report = await fetchDownload('button[data-download$="/report.html"]');
    expect(report.bytes.toString()).toMatch(/Alice Martin/);

    await jury.click(`a[href="#/exam/${examId}"]`);
    await jury.waitForSelector('#live.on');
    const csv = await fetchDownload('button[data-download$="/results.csv"]');
    expect(csv.name).toBe(`results-${examId}.csv`);
    const lines = csv.bytes.toString('utf8').trim().split(/\r?\n/);
    expect(lines).toHaveLength(3);
    expect(lines[1]).toMatch(/^alice,/);
    expect(lines[2]).toMatch(/^bruno,/);
    const fr = await fetchDownload('button[data-download$="dialect=excel-fr"]');
    expect(fr.bytes.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    expect(fr.bytes.toString('utf8').split(/\r?\n/)[1]).toMatch(/^alice;/);
    const json = JSON.parse((await fetchDownload(`button[data-download="/api/exams/${examId}/results"]`)).bytes.toString());
    expect(json.candidates.map((c: { candidate: { id: string } }) => c.candidate.id)).toEqual(['alice', 'bruno']);
    expect(json.audit.anchor.text).toMatch(/^\d+:[0-9a-f]{16}$/);
    const xlsx = await fetchDownload('button[data-download$="/results.xlsx"]');
    expect(xlsx.bytes.subarray(0, 2).toString()).toBe('PK');

    await jury.click(`a[href="#/exam/${examId}/audit"]`);
    await seeText(jury.locator('#chain'), /Chaîne intacte.* Ancre \(imprimée sur les exports\) : \d+:[0-9a-f]{16}\./);
    await seeText(jury.locator('table.audit'), /exam\.end/);
    // The language switch.
    await jury.click('#lang');
    await seeText(jury.locator('#chain'), /Chain intact/);
    expect(pageErrors).toEqual([]);
  }, 60_000);

  test('the operator starts an exam from the list; a stale button is refused in plain words', async () => {
    const op = api(d.url, OPERATOR);
    const make = async (id: string) => {
      const created = await op.post('/api/exams').send({ title: `Session ${id}`, scenario: 'broken-workstation', start: 'manual', candidates: [{ id, name: id }] });
      expect(created.status).toBe(201);
      return created.body.exam.id as string;
    };
    const toStart = await make('carla');
    const stale = await make('denis');
    const { context, page } = await newPage('fr-FR');
    await signIn(page, OPERATOR);
    await page.waitForSelector(`button[data-action="start"][data-exam="${stale}"]`);
    // Ended behind the page's back: its Prepare button is now stale.
    expect((await op.post(`/api/exams/${stale}/end`)).status).toBe(202);
    await page.click(`button[data-action="prepare"][data-exam="${stale}"]`);
    await page.click('#confirm-ok');
    await seeText(page.locator('#error'), /^Impossible pour le moment\. exam [0-9a-f]{12} is ended; only a scheduled exam can be prepared/);

    await page.click(`button[data-action="start"][data-exam="${toStart}"]`);
    expect(await page.locator('#confirm-text').textContent()).toMatch(/Démarrer l’examen maintenant/);
    await page.click('#confirm-ok');
    await seeText(page.locator('#notice'), /Fait : Démarrer/);
    expect((await op.get(`/api/exams/${toStart}`)).body.status).toBe('running');
    await page.click(`a[href="#/exam/${toStart}"]`);
    await seeText(page.locator('.status'), /en cours/);
    await page.click('button[data-action="end-exam"]');
    await page.click('#confirm-ok');
    await seeText(page.locator('.status'), /se termine|terminé/);
    await context.close();
  }, 120_000);

  test('the operator creates an exam from the centre’s roster file as exported: what was read is shown first, then the access sheet to print or download', async () => {
    const { context, page } = await newPage('fr-FR');
    await signIn(page, OPERATOR);
    await page.click('#new-exam-link');
    await page.waitForSelector('#new-exam');
    // Not a roster: said in plain words, nothing kept.
    await page.setInputFiles('#roster-file', { name: 'photo.xlsx', mimeType: 'application/octet-stream', buffer: Buffer.from([0x89, 0x50, 0x4e, 0x47, 0, 1, 2, 3]) });
    await seeText(page.locator('#error'), /^Contenu invalide\./);
    await page.click('#create-exam');
    await seeText(page.locator('#error'), /Choisissez d’abord la liste des candidats/);
    // As Excel on French Windows saves it: Windows-1252 (’ is 0x92), ";", last and first names apart, an extra column, a row without an identifier.
    const csv = Buffer.from('Identifiant;Nom;Prénom;Courriel;Téléphone\r\nc001;N\x92Diaye;Zoé;zoe@example.org;0601\r\nc002;d\'Artagnan;Éloïse;;0602\r\n;Sans;Identifiant;;0603\r\n', 'latin1');
    await page.setInputFiles('#roster-file', { name: 'inscrits.csv', mimeType: 'text/csv', buffer: csv });
    await seeText(page.locator('#roster-preview'), /2 candidat\(s\) lu\(s\) dans inscrits\.csv/);
    const preview = (await page.locator('#roster-preview').textContent()) ?? '';
    expect(preview).toMatch(/Zoé N’Diaye/);
    expect(preview).toMatch(/Éloïse d'Artagnan/);
    expect(preview).toMatch(/1 ligne\(s\) écartée\(s\)/);
    expect(preview).toMatch(/inscrits\.csv:4/);
    expect(preview).toMatch(/Téléphone/);
    await screenshot(page, 'new-exam', { fullPage: true });
    await page.selectOption('#exam-scenario', 'broken-workstation');
    await page.fill('#exam-title', 'Session du matin');
    await page.fill('#exam-duration', '60');
    await page.click('#create-exam');
    await page.waitForSelector('#access-sheet');
    await seeText(page.locator('#access-sheet h2'), /Accès des candidats : Session du matin/);
    expect(await page.locator('#access-sheet tbody tr').count()).toBe(2);
    await screenshot(page, 'access-sheet', { fullPage: true });
    const tokens = await page.locator('#access-sheet code.token').allTextContents();
    expect(tokens.every((t) => t.length >= 16)).toBe(true);
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-access')]);
    const sheet = readFileSync((await download.path()) as string);
    expect(sheet.subarray(0, 3)).toEqual(Buffer.from([0xef, 0xbb, 0xbf]));
    const lines = sheet.toString('utf8').slice(1).trim().split('\r\n');
    expect(lines[0]).toBe('id;name;token;ssh;page');
    expect(lines[1]).toMatch(new RegExp(`^c001;Zoé N’Diaye;${tokens[0]};ssh `));
    // The exam is there as the sheet says, its dates in the browser's time zone, and the sheet's token is the candidate's.
    const exams = (await api(d.url, OPERATOR).get('/api/exams')).body.exams as { id: string; title: string; durationMs: number; candidates: { id: string; name: string }[] }[];
    const made = exams.find((e) => e.title === 'Session du matin');
    expect(made?.candidates.map((c) => `${c.id} ${c.name}`)).toEqual(['c001 Zoé N’Diaye', 'c002 Éloïse d\'Artagnan']);
    expect(made?.durationMs).toBe(3_600_000);
    // A candidate's token, known to the daemon and refused only until the start.
    const early = await api(d.url, tokens[0]).get('/api/me');
    expect(early.status).toBe(401);
    expect(early.body.message).toMatch(new RegExp(`exam ${made?.id} has not started yet`));
    await page.click(`a[href="#/exam/${made?.id}"]`);
    await page.waitForSelector('#room-rows tr[data-candidate="c001"]');
    // A lost token replaced from the room: the new one is shown once, the old one stops working.
    await row(page, 'c002').locator('button[data-action="token"]').click();
    expect(await page.locator('#confirm-text').textContent()).toMatch(/nouveau jeton à Éloïse d'Artagnan/);
    await page.click('#confirm-ok');
    await seeText(page.locator('#notice'), /^Nouveau jeton de Éloïse d'Artagnan : \S+ \(SSH : ssh -p \d+ c002@/);
    const fresh = /: (\S+) \(SSH/.exec((await page.locator('#notice').textContent()) ?? '')?.[1] as string;
    expect(fresh).not.toBe(tokens[1]);
    expect((await api(d.url, fresh).get('/api/me')).body.message).toMatch(/has not started yet/);
    expect((await api(d.url, tokens[1]).get('/api/me')).body.message).not.toMatch(/has not started yet/);
    // Before the start, the list replaced by another export (UTF-8 with a BOM, commas, English headers): a new sheet, every token new.
    await page.click(`a[href="#/exam/${made?.id}/roster"]`);
    await page.waitForSelector('#replace-roster');
    await page.setInputFiles('#roster-file', { name: 'roster-v2.csv', mimeType: 'text/csv', buffer: Buffer.from('\ufeffCandidate number,Last name,First name\r\nc001,N’Diaye,Zoé\r\nc003,Martin,Hélène\r\n', 'utf8') });
    await seeText(page.locator('#roster-preview'), /2 candidat\(s\) lu\(s\) dans roster-v2\.csv/);
    await page.click('#replace-roster-submit');
    await page.waitForSelector('#access-sheet');
    expect(await page.locator('#access-sheet tbody tr td:first-child').allTextContents()).toEqual(['Zoé N’Diaye', 'Hélène Martin']);
    const renewed = await page.locator('#access-sheet code.token').allTextContents();
    expect(renewed[0]).not.toBe(tokens[0]);
    expect((await api(d.url, renewed[0]).get('/api/me')).body.message).toMatch(/has not started yet/);
    expect((await api(d.url, tokens[0]).get('/api/me')).body.message).not.toMatch(/has not started yet/);
    expect(pageErrors).toEqual([]);
    await context.close();
  }, 60_000);
});

/** Waits (up to 15 s by default) for a locator's visible text to match: the page updates on its own. */
async function seeText(locator: ReturnType<Page['locator']>, pattern: RegExp, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const text = ((await locator.isVisible().catch(() => false)) ? await locator.textContent().catch(() => '') : '') ?? '';
    if (pattern.test(text)) return;
    if (Date.now() > deadline) throw new Error(`expected visible text matching ${pattern} within ${timeoutMs} ms; got ${JSON.stringify(text)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}
