import ssh2 from 'ssh2';
import type { Browser, Page } from 'playwright-core';
import { JURY, startedExam, startTestDaemon, waitFor, type TestDaemon } from '../api/helpers.js';
import { launchBrowser, screenshot } from './browser.js';

/**
 * The live WebSocket authenticates by the session cookie (a browser cannot
 * put a Bearer header on a WebSocket). `make build` must have bundled the pages.
 *
 * The jury sees the candidate connected in the room view, watches their
 * terminal live (read-only) from the candidate page, sees the session end,
 * then replays its recording with asciinema-player.
 */
describe('staff pages: connected candidates, live watch and replay', () => {
  let d: TestDaemon;
  let browser: Browser;
  let jury: Page;
  let examId: string;
  let token: string;
  let shell: { client: ssh2.Client; channel: ssh2.ClientChannel } | undefined;

  const text = async (page: Page, selector: string) => (await page.locator(selector).textContent()) ?? '';

  beforeAll(async () => {
    d = await startTestDaemon();
    let tokens: Record<string, string>;
    ({ examId, tokens } = await startedExam(d.url, { scenario: 'broken-workstation', candidates: [{ id: 'alice', name: 'Alice Martin' }], mode: 'exam' }, 400_000));
    token = tokens.alice as string;
    browser = await launchBrowser();
    const context = await browser.newContext({ viewport: { width: 1366, height: 768 }, locale: 'fr-FR' });
    jury = await context.newPage();
    await jury.goto(d.url);
    await jury.fill('#token', JURY);
    await jury.click('#signin-form button[type=submit]');
    await jury.waitForSelector(`a[href="#/exam/${examId}"]`);
  }, 480_000);

  afterAll(async () => {
    shell?.client.end();
    await browser?.close();
    await d?.close();
  }, 180_000);

  test('the room view shows alice connected while her SSH session is open', async () => {
    shell = await new Promise((resolve, reject) => {
      const client = new ssh2.Client();
      client.on('error', reject);
      client.on('ready', () => client.shell({ cols: 100, rows: 30 }, (err, channel) => (err ? reject(err) : resolve({ client, channel }))));
      client.connect({ host: '127.0.0.1', port: d.sshPort, username: 'alice', password: token, readyTimeout: 15_000 });
    });
    await jury.click(`a[href="#/exam/${examId}"]`);
    await jury.waitForSelector('#room-rows tr[data-candidate="alice"] td.connected');
    await waitFor('alice connected', () => text(jury, '#room-rows tr[data-candidate="alice"] td.connected'), (t) => /oui \(1\)/.test(t), 15_000);
  }, 60_000);

  test('the jury watches her terminal live, read-only, and sees the session end', async () => {
    await jury.click('#room-rows tr[data-candidate="alice"] a');
    await jury.waitForSelector('button[data-watch]', { timeout: 15_000 });
    await jury.click('button[data-watch]');
    await jury.waitForSelector('#player .xterm-rows');
    shell?.channel.write('echo "en direct $((6*7))"\n');
    await waitFor('the command seen live', () => text(jury, '#player .xterm-rows'), (t) => t.includes('en direct 42'), 15_000);
    // Keys typed in the watcher's terminal never reach the candidate's shell.
    await jury.click('#player .xterm');
    await jury.keyboard.type('echo intrus\n');
    await new Promise((r) => setTimeout(r, 1_000));
    shell?.channel.write('history | tail -3\n');
    await waitFor('the history shown live', () => text(jury, '#player .xterm-rows'), (t) => /history \| tail -3/.test(t), 15_000);
    expect(await text(jury, '#player .xterm-rows')).not.toMatch(/intrus/);
    await screenshot(jury, 'live-watch');
    shell?.channel.end('exit\n');
    await waitFor('the end shown', () => text(jury, '#player'), (t) => /La session est terminée/.test(t), 15_000);
  }, 60_000);

  test('the jury replays the recording with asciinema-player', async () => {
    await jury.reload();
    await jury.waitForSelector('button[data-replay]');
    await jury.click('button[data-replay]');
    await jury.waitForSelector('#player .ap-player', { timeout: 15_000 });
    await waitFor('the recording played', () => text(jury, '#player'), (t) => t.includes('en direct 42'), 30_000);
  }, 60_000);
});
