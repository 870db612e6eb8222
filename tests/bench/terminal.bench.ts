import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { expect, test } from '@jest/globals';
import ssh2 from 'ssh2';
import request from 'supertest';
import WebSocket from 'ws';
import { PACKAGE_ROOT } from '../../src/daemon/config.js';
import { api, DaemonProcess, destroyAllLabs, OPERATOR, waitFor } from '../api/helpers.js';
import { SMALL_SCENARIO } from '../api/scenarios.js';

/**
 * Keystroke echo through the browser path: a key sent on the terminal's
 * WebSocket, through the daemon (`examlab serve`, its own process) and its
 * SSH connection to the lab machine's sshd, echoed by the shell, and back
 * on the WebSocket. Side by side, in the same run, the same through the SSH
 * gateway (an SSH client with a pty). Figures: build/bench/terminal.json.
 */
const KEYS = Number(process.env.KEYS ?? 400);

const quantile = (xs: number[], q: number) => {
  const sorted = [...xs].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] as number;
};
const summary = (xs: number[]) => ({ n: xs.length, p50: +quantile(xs, 0.5).toFixed(2), p90: +quantile(xs, 0.9).toFixed(2), p99: +quantile(xs, 0.99).toFixed(2), max: +Math.max(...xs).toFixed(2) });

/** Something that sends a key and hears the echo. */
interface Echo {
  send(key: string): void;
  onOutput(listener: (text: string) => void): void;
  close(): void;
}

/** Types KEYS letters one by one (a line cleared with Ctrl-U every 40), timing each echo. */
async function measure(echo: Echo, keys: number): Promise<number[]> {
  let pending: { key: string; at: number; resolve: (ms: number) => void } | undefined;
  echo.onOutput((text) => {
    if (pending && text.includes(pending.key)) {
      const p = pending;
      pending = undefined;
      p.resolve(performance.now() - p.at);
    }
  });
  const times: number[] = [];
  const letters = 'abcdefghijklmnopqrstuvwxyz';
  for (let i = 0; i < keys; i++) {
    if (i % 40 === 0) {
      echo.send('\x15');
      await new Promise((r) => setTimeout(r, 30));
    }
    const key = letters[i % 26] as string;
    const ms = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no echo of ${key} within 5 s`)), 5000);
      pending = { key, at: performance.now(), resolve: (v) => (clearTimeout(timer), resolve(v)) };
      echo.send(key);
    });
    times.push(ms);
    // A typist's pace, not a flood: each key on its own.
    await new Promise((r) => setTimeout(r, 5));
  }
  return times;
}

function browserEcho(url: string, cookie: string): Promise<Echo> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, 'ws')}/api/me/terminal?machine=pc`, { headers: { Cookie: cookie, Origin: url } });
    const listeners: ((t: string) => void)[] = [];
    let ready = false;
    ws.on('message', (data, isBinary) => {
      if (!isBinary) return;
      const text = (data as Buffer).toString('utf8');
      if (!ready && /\$ $/.test(text)) {
        ready = true;
        resolve({ send: (k) => ws.send(Buffer.from(k), { binary: true }), onOutput: (l) => listeners.push(l), close: () => ws.close() });
      }
      for (const l of listeners) l(text);
    });
    ws.on('error', reject);
  });
}

function gatewayEcho(port: number, user: string, token: string): Promise<Echo> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.on('error', reject);
    client.on('ready', () =>
      client.shell({ term: 'xterm-256color', cols: 120, rows: 40 }, (err, channel) => {
        if (err) return reject(err);
        const listeners: ((t: string) => void)[] = [];
        let ready = false;
        channel.on('data', (d: Buffer) => {
          const text = d.toString('utf8');
          if (!ready && /\$ $/.test(text)) {
            ready = true;
            resolve({ send: (k) => channel.write(k), onOutput: (l) => listeners.push(l), close: () => client.end() });
          }
          for (const l of listeners) l(text);
        });
      }),
    );
    client.connect({ host: '127.0.0.1', port, username: user, password: token, readyTimeout: 15_000 });
  });
}

test('keystroke echo: browser terminal (WebSocket → daemon → lab sshd) and SSH gateway, same run', async () => {
  const daemon = DaemonProcess.create();
  try {
    await daemon.start();
    const op = api(daemon.url, OPERATOR);
    const created = await op.post('/api/exams').send({ scenarioYaml: SMALL_SCENARIO, candidates: [{ id: 'alice', name: 'Alice' }], mode: 'practice', start: 'now' });
    expect(created.status).toBe(201);
    const examId = created.body.exam.id as string;
    const token = created.body.candidates[0].token as string;
    await waitFor('the lab offered', async () => (await op.get(`/api/exams/${examId}`)).body, (e) => e.progress.byPhase.active === 1, 300_000);
    const cookie = String((await request(daemon.url).post('/api/session').send({ token })).headers['set-cookie']).split(';')[0] as string;

    const browser = await browserEcho(daemon.url, cookie);
    const gateway = await gatewayEcho(daemon.sshPort, 'alice', token);
    // Warm-up, then interleaved halves so that both paths see the same host load.
    await measure(browser, 20);
    await measure(gateway, 20);
    const loadBefore = loadavg()[0] as number;
    const b1 = await measure(browser, KEYS / 2);
    const g1 = await measure(gateway, KEYS / 2);
    const b2 = await measure(browser, KEYS / 2);
    const g2 = await measure(gateway, KEYS / 2);
    browser.close();
    gateway.close();
    const figures = { keys: KEYS, browser: summary([...b1, ...b2]), gateway: summary([...g1, ...g2]), loadAverage: { before: +loadBefore.toFixed(1), after: +(loadavg()[0] as number).toFixed(1) }, measuredAt: new Date().toISOString() };
    mkdirSync(join(PACKAGE_ROOT, 'build/bench'), { recursive: true });
    writeFileSync(join(PACKAGE_ROOT, 'build/bench/terminal.json'), `${JSON.stringify(figures, null, 2)}\n`);
    console.log(JSON.stringify(figures));
    expect(figures.browser.n).toBe(KEYS);
    expect(figures.browser.p99).toBeLessThan(20);
  } finally {
    await daemon.kill('SIGTERM');
    await destroyAllLabs(daemon.dataDir);
  }
});
