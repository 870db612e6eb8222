import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from '@jest/globals';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { GuestAgentSession } from '../../../src/remote/guest-agent.js';
import { openMachineSession } from '../../../src/remote/machine-session.js';
import { startFakeGuestAgent } from '../../fakes/fake-guest-agent.js';

describe('guest agent session', () => {
  let dir: string;
  let server: Server | undefined;
  afterEach(() => {
    server?.close();
    rmSync(dir, { recursive: true, force: true });
  });
  const socketPath = () => {
    dir = mkdtempSync(join(tmpdir(), 'examlab-qga-'));
    return join(dir, 'agent.sock');
  };

  test('skips what an earlier client left unread, then runs commands with their stdin, exit code and output', async () => {
    const path = socketPath();
    const fake = await startFakeGuestAgent(path, { stale: '{"return": {"pid": 7}}\n{"return": 12' });
    server = fake.server;
    const session = await GuestAgentSession.connect(path, 2000);
    try {
      const result = await session.exec('cat; echo oops >&2; exit 3', { stdin: 'hello', timeoutMs: 5000 });
      expect(result).toEqual({ exitCode: 3, stdout: 'hello', stderr: 'oops\n', stdoutBytes: Buffer.from('hello'), truncated: false });
      expect(fake.calls[1]?.arguments?.env).toContain('HOME=/root');
    } finally {
      session.close();
    }
  });

  test('an agent that does not answer is an error naming the socket, within the time given', async () => {
    const path = socketPath();
    server = (await startFakeGuestAgent(path, { silent: true })).server;
    const started = Date.now();
    await expect(GuestAgentSession.connect(path, 300)).rejects.toThrow(/did not answer.*agent\.sock/);
    expect(Date.now() - started).toBeLessThan(2000);
  });

  test('when SSH does not answer, a machine with an agent socket is reached through it', async () => {
    const path = socketPath();
    server = (await startFakeGuestAgent(path)).server;
    // Nothing listens on port 1 of the loopback: SSH is refused at once.
    const session = await openMachineSession({ host: '127.0.0.1', port: 1, username: 'root', hostKey: 'SHA256:pinned', agentSocket: path }, 2000);
    try {
      expect((await session.exec('echo via-agent', { timeoutMs: 5000 })).stdout).toBe('via-agent\n');
    } finally {
      session.close();
    }
    await expect(openMachineSession({ host: '127.0.0.1', port: 1, username: 'root' }, 2000)).rejects.toThrow(/cannot open SSH/);
  });

  test('a VM whose host key was never pinned (deployed over the network) is reached through its agent only, never over SSH', async () => {
    const path = socketPath();
    server = (await startFakeGuestAgent(path)).server;
    // Something answers on the machine's address: it could be another machine of the lab.
    let connections = 0;
    const impostor = createServer((socket) => (connections++, socket.destroy()));
    await new Promise<void>((resolve) => impostor.listen(0, '127.0.0.1', resolve));
    const port = (impostor.address() as AddressInfo).port;
    try {
      const session = await openMachineSession({ host: '127.0.0.1', port, username: 'root', agentSocket: path }, 2000);
      try {
        expect((await session.exec('echo via-agent', { timeoutMs: 5000 })).stdout).toBe('via-agent\n');
      } finally {
        session.close();
      }
      server.close();
      await expect(openMachineSession({ host: '127.0.0.1', port, username: 'root', agentSocket: join(dir, 'none.sock') }, 2000)).rejects.toThrow(/reached only through its guest agent/);
      expect(connections).toBe(0);
    } finally {
      impostor.close();
    }
  });

  /** An agent the candidate replaced: once asked anything, it writes `unit` without end, as fast as the socket takes it. */
  async function startFloodingAgent(path: string, unit: string): Promise<Server> {
    const block = Buffer.from(unit.repeat(Math.ceil(65536 / unit.length)));
    const flooder = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => {
        const pump = () => {
          while (!socket.destroyed && socket.write(block));
          if (!socket.destroyed) socket.once('drain', pump);
        };
        pump();
      });
    });
    await new Promise<void>((resolve) => flooder.listen(path, resolve));
    return flooder;
  }

  test.each([
    ['one line that never ends', 'x', /more than \d+ bytes/],
    ['well-formed answers that are never the one asked for', '{"return": 1}\n', /more than 1000 lines|did not answer its sync/],
    ['empty lines', '\n', /did not answer/],
    ['lines that are not JSON', 'garbage\n', /not JSON/],
  ])('an agent that floods (%s) is an error within the time given, with a bounded buffer', async (_what, unit, message) => {
    const path = socketPath();
    server = await startFloodingAgent(path, unit);
    const started = Date.now();
    await expect(GuestAgentSession.connect(path, 1500)).rejects.toThrow(message);
    expect(Date.now() - started).toBeLessThan(5000);
  });
});
