import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from '@jest/globals';
import { sshEngineAgent } from '../../../src/providers/docker/ssh-engine.js';
import { startFakeSshd, type FakeSshd } from '../../fakes/fake-sshd.js';

/**
 * A Docker engine reached over SSH, as the engine's HTTP client uses it:
 * an sshd (the fake, running commands on this host) whose `docker system
 * dial-stdio` is a small program joining its stdin and stdout to an HTTP
 * server of the test, as the real one joins them to dockerd's socket.
 */
let dir: string;
let sshd: FakeSshd;
let server: Server;
let slow = 0;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'examlab-ssh-engine-'));
  const socket = join(dir, 'engine.sock');
  server = createServer((req, res) => setTimeout(() => res.end(JSON.stringify({ path: req.url })), slow));
  await new Promise<void>((resolve) => server.listen(socket, resolve));
  // The host's `docker`: dial-stdio joins stdin and stdout to the engine's socket, and ends when the engine closes it.
  writeFileSync(
    join(dir, 'docker'),
    `#!${process.execPath}\nconst s = require('net').connect(${JSON.stringify(socket)});\nprocess.stdin.pipe(s);\ns.pipe(process.stdout);\ns.on('close', () => process.exit(0));\n`,
  );
  chmodSync(join(dir, 'docker'), 0o755);
  sshd = await startFakeSshd({ env: { ...process.env, PATH: `${dir}:${process.env.PATH}` } });
});

afterAll(async () => {
  await sshd.close();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

const agentFor = () => sshEngineAgent({ host: '127.0.0.1', port: sshd.port, username: 'root', privateKey: sshd.clientKey, hostKey: sshd.hostKey });

/** A GET through the agent, as the engine's client sends it. */
async function get(agent: ReturnType<typeof agentFor>, path: string): Promise<string> {
  const { request } = await import('node:http');
  return new Promise((resolve, reject) => {
    const req = request({ host: 'engine', path, agent }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve(body));
    });
    req.on('error', reject);
    req.end();
  });
}

const dialStdio = () => sshd.commands.filter((c) => c.includes('dial-stdio')).length;

test('requests one after the other share one SSH connection and one kept stream, with no listener piling up on it', async () => {
  const agent = agentFor();
  const [logins, streams] = [sshd.logins, dialStdio()];
  for (let i = 0; i < 30; i++) expect(JSON.parse(await get(agent, `/v1/version?i=${i}`))).toEqual({ path: `/v1/version?i=${i}` });
  expect(sshd.logins - logins).toBe(1);
  expect(dialStdio() - streams).toBe(1);
  // The kept stream, idle in the agent's pool: Node's keep-alive bookkeeping adds a listener per use and must take it off again.
  const kept = Object.values(agent.freeSockets).flat();
  expect(kept).toHaveLength(1);
  expect(kept[0]?.listenerCount('error')).toBeLessThanOrEqual(3);
  agent.destroy();
});

test('a burst opens more streams, at most 8 on a connection; an idle stream is closed and the next request opens another', async () => {
  const agent = agentFor();
  const [logins, streams] = [sshd.logins, dialStdio()];
  slow = 300;
  const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => get(agent, `/burst/${i}`)));
  slow = 0;
  expect(answers.map((a) => JSON.parse(a).path)).toEqual(Array.from({ length: 12 }, (_, i) => `/burst/${i}`));
  expect(dialStdio() - streams).toBe(12);
  expect(sshd.logins - logins).toBe(2);
  await new Promise((resolve) => setTimeout(resolve, 2_500));
  await get(agent, '/after-idle');
  expect(dialStdio() - streams).toBe(13);
  agent.destroy();
}, 20_000);
