import { execFile, execFileSync, spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, createConnection, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Duplex } from 'node:stream';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { HostConnection, commandLine } from '../../../src/remote/host-connection.js';
import { generateKeyPair } from '../../../src/remote/ssh-client.js';
import { startFakeSshd, type FakeSshd } from '../../fakes/fake-sshd.js';

/** An echo server that prefixes what it answers, to tell which server a stream reached. */
function echoServer(prefix: string): Server {
  return createServer((s) => s.on('data', (chunk: Buffer) => s.write(`${prefix}${chunk.toString()}`)));
}

function roundTrip(stream: Duplex, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    stream.once('data', (chunk: Buffer) => resolve(chunk.toString()));
    stream.once('error', reject);
    stream.write(text);
  });
}

describe('one SSH connection to a lab host', () => {
  let sshd: FakeSshd;
  let dir: string;
  let host: HostConnection;
  const servers: Server[] = [];

  beforeEach(async () => {
    sshd = await startFakeSshd();
    dir = mkdtempSync(join(tmpdir(), 'examlab-host-'));
    host = new HostConnection({ host: '127.0.0.1', port: sshd.port, username: 'root', privateKey: sshd.clientKey, hostKey: sshd.hostKey, connectTimeoutMs: 2000 });
  });

  afterEach(async () => {
    host.close();
    for (const s of servers.splice(0)) s.close();
    await sshd.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('runs an argv with no value interpreted by the host\'s shell, with its stdin, exit code and both outputs', async () => {
    const tricky = ["it's", '$(touch pwned)', '`id`', 'a b', 'semi;colon', 'new\nline', '*', '', '-n'];
    const result = await host.exec(['printf', '%s|', ...tricky], { timeoutMs: 5000 });
    expect(result.exitCode).toBe(0);
    expect(result.stdout.toString()).toBe(`${tricky.join('|')}|`);
    const withInput = await host.exec(['sh', '-c', 'cat; echo oops >&2; exit 3'], { stdin: 'hello', timeoutMs: 5000 });
    expect(withInput).toEqual({ exitCode: 3, stdout: Buffer.from('hello'), stderr: Buffer.from('oops\n'), truncated: false });
    expect(() => commandLine(['echo', 'a\0b'])).toThrow(/NUL/);
    await expect(host.run(['sh', '-c', 'echo why >&2; exit 4'], { timeoutMs: 5000 })).rejects.toThrow(/exited 4 on root@127\.0\.0\.1:\d+:\nwhy/);
  });

  test('keeps at most the output cap of each stream and says it dropped the rest', async () => {
    const result = await host.exec(['head', '-c', '100000', '/dev/zero'], { timeoutMs: 5000, maxOutputBytes: 1000 });
    expect(result.stdout.length).toBe(1000);
    expect(result.truncated).toBe(true);
  });

  test('a command past its deadline is an error in time, and is stopped on the host', async () => {
    const marker = join(dir, 'still-running');
    const started = Date.now();
    await expect(host.exec(['sh', '-c', `sleep 3 && touch ${marker}`], { timeoutMs: 300 })).rejects.toThrow(/did not finish within 300 ms/);
    expect(Date.now() - started).toBeLessThan(1500);
    await new Promise((resolve) => setTimeout(resolve, 3300));
    expect(() => statSync(marker)).toThrow();
  });

  test('one connection for every operation, even concurrent ones; opened again after it drops', async () => {
    await Promise.all(Array.from({ length: 8 }, (_, i) => host.run(['echo', String(i)], { timeoutMs: 5000 })));
    expect(sshd.logins).toBe(1);
    expect(host.connectionsOpened).toBe(1);
    sshd.dropAll();
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect((await host.run(['echo', 'again'], { timeoutMs: 5000 })).trim()).toBe('again');
    expect(sshd.logins).toBe(2);
  });

  test('refuses a host that presents another key than the pinned one', async () => {
    const other = generateKeyPair('someone else').publicKey;
    const impostor = new HostConnection({ host: '127.0.0.1', port: sshd.port, username: 'root', privateKey: sshd.clientKey, hostKey: other, connectTimeoutMs: 2000 });
    try {
      await expect(impostor.run(['true'], { timeoutMs: 5000 })).rejects.toThrow(/host key of root@127\.0\.0\.1:\d+ is not the pinned one: expected SHA256:\S+, got SHA256:/);
      expect(sshd.commands).toEqual([]);
    } finally {
      impostor.close();
    }
    expect(() => new HostConnection({ host: 'h', username: 'root', privateKey: '', hostKey: 'not a key' })).toThrow(/not a public key line/);
  });

  test('a hung host (connections accepted, nothing answered) fails each operation within its bound, then is reached again once it answers', async () => {
    await host.run(['true'], { timeoutMs: 5000 });
    sshd.hang(true);
    const started = Date.now();
    await expect(host.run(['true'], { timeoutMs: 500 })).rejects.toThrow(/did not answer within \d+ ms \(run true\)/);
    expect(Date.now() - started).toBeLessThan(1500);
    sshd.hang(false);
    expect((await host.run(['echo', 'back'], { timeoutMs: 5000 })).trim()).toBe('back');
    expect(sshd.logins).toBe(2);
  });

  test('a host nobody answers for: the opening fails within the connect bound', async () => {
    const silent = createServer(() => undefined); // accepts TCP, never speaks SSH
    servers.push(silent);
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const mute = new HostConnection({ host: '127.0.0.1', port, username: 'root', privateKey: sshd.clientKey, hostKey: sshd.hostKey, connectTimeoutMs: 400 });
    const started = Date.now();
    await expect(mute.run(['true'], { timeoutMs: 10_000 })).rejects.toThrow(/root@127\.0\.0\.1:\d+/);
    expect(Date.now() - started).toBeLessThan(2000);
    mute.close();
  });

  test('streams to a TCP port and to a unix socket the host reaches', async () => {
    const tcp = echoServer('tcp:');
    servers.push(tcp);
    await new Promise<void>((resolve) => tcp.listen(0, '127.0.0.1', resolve));
    const forwarded = await host.forwardOut('127.0.0.1', (tcp.address() as { port: number }).port);
    expect(await roundTrip(forwarded, 'hi')).toBe('tcp:hi');
    forwarded.destroy();

    const unix = echoServer('unix:');
    servers.push(unix);
    const path = join(dir, 'agent.sock');
    await new Promise<void>((resolve) => unix.listen(path, resolve));
    const opened = await host.openUnixSocket(path);
    expect(await roundTrip(opened, 'hello')).toBe('unix:hello');
    opened.destroy();

    await expect(host.openUnixSocket(join(dir, 'none.sock'))).rejects.toThrow(/cannot open .*none\.sock/);
    expect(sshd.logins).toBe(1);
  });

  test('serves a unix socket of the host on a private local one (mode 0600), a stream per connection, until closed', async () => {
    const unix = echoServer('libvirtd:');
    servers.push(unix);
    const remote = join(dir, 'libvirt-sock');
    await new Promise<void>((resolve) => unix.listen(remote, resolve));
    const forward = await host.forwardUnixSocket(remote, join(dir, 'local.sock'));
    expect(statSync(forward.path).mode & 0o777).toBe(0o600);
    for (const text of ['one', 'two']) {
      const client = createConnection(forward.path);
      expect(await roundTrip(client, text)).toBe(`libvirtd:${text}`);
      client.destroy();
    }
    // A client that never lets go (libvirt's) does not hold the forward open: closing it ends its connections.
    const lingering = createConnection(forward.path);
    expect(await roundTrip(lingering, 'three')).toBe('libvirtd:three');
    const ended = new Promise<void>((resolve) => lingering.once('close', () => resolve()));
    await forward.close();
    await ended;
  });

  test('an idle connection does not keep a process alive: a command that used a host exits when done', async () => {
    const script = join(dir, 'uses-host.mts');
    writeFileSync(
      script,
      `import { HostConnection } from ${JSON.stringify(join(process.cwd(), 'src/remote/host-connection.ts'))};
const host = new HostConnection(${JSON.stringify({ host: '127.0.0.1', port: sshd.port, username: 'root', privateKey: sshd.clientKey, hostKey: sshd.hostKey })});
const out = await host.run(['echo', 'done'], { timeoutMs: 5000 });
const stream = await host.forwardOut('127.0.0.1', ${sshd.port});
stream.destroy();
process.stdout.write(out);
`,
    );
    const started = Date.now();
    const { stdout } = await promisify(execFile)(join(process.cwd(), 'node_modules/.bin/tsx'), [script], { timeout: 20_000 });
    expect(stdout).toBe('done\n');
    expect(Date.now() - started).toBeLessThan(15_000);
  }, 30_000);

  test('files: made with their mode, read whole or by their end, listed, stated, renamed only to a new name, removed', async () => {
    const folder = join(dir, "it's a folder");
    await host.mkdir(join(folder, 'sub'), { mode: 0o711 });
    expect(statSync(join(folder, 'sub')).mode & 0o777).toBe(0o711);
    const local = join(dir, 'local.bin');
    writeFileSync(local, Buffer.alloc(300_000, 7));
    await host.upload(local, join(folder, 'sub', 'disk'), { mode: 0o444, timeoutMs: 10_000 });
    expect(readFileSync(join(folder, 'sub', 'disk')).equals(readFileSync(local))).toBe(true);
    expect(statSync(join(folder, 'sub', 'disk')).mode & 0o777).toBe(0o444);
    await host.writeFile(join(folder, 'log'), 'line 1\nline 2\n', { mode: 0o600, timeoutMs: 5000 });
    // An input that fails (a file that cannot be read, here before the channel is even open) fails that run only.
    await expect(host.exec(['sh', '-c', 'cat > "$1"', 'sh', join(folder, 'never')], { stdin: createReadStream(join(dir, 'missing')), timeoutMs: 5000 })).rejects.toThrow(/cannot send sh its input on .*ENOENT/);
    await host.rm([join(folder, 'never')]);
    await expect(host.upload(join(dir, 'missing'), join(folder, 'never'), { mode: 0o600, timeoutMs: 5000 })).rejects.toThrow(/ENOENT/);
    // What arrives is not the file's size (a FIFO: size 0, then bytes): nothing is put in place, nothing is left beside.
    const fifo = join(dir, 'fifo');
    execFileSync('mkfifo', [fifo]);
    const writer = spawn('sh', ['-c', 'echo more than nothing > "$1"', 'sh', fifo]);
    await expect(host.upload(fifo, join(folder, 'never'), { mode: 0o600, timeoutMs: 5000 })).rejects.toThrow(/exited 1/);
    writer.kill();
    expect((await host.readFile(join(folder, 'log'), { maxBytes: 100, timeoutMs: 5000 }))?.toString()).toBe('line 1\nline 2\n');
    expect((await host.readTail(join(folder, 'log'), { maxBytes: 7, timeoutMs: 5000 }))?.toString()).toBe('line 2\n');
    expect(await host.readFile(join(folder, 'none'), { maxBytes: 100, timeoutMs: 5000 })).toBeUndefined();
    expect(await host.readTail(join(folder, 'none'), { maxBytes: 100, timeoutMs: 5000 })).toBeUndefined();
    await expect(host.readFile(join(folder, 'sub', 'disk'), { maxBytes: 1000, timeoutMs: 5000 })).rejects.toThrow(/larger than 1000 bytes/);
    expect(await host.stat(join(folder, 'sub', 'disk'))).toEqual({ type: 'file', size: 300_000 });
    expect(await host.stat(join(folder, 'sub'))).toMatchObject({ type: 'directory' });
    expect(await host.stat(join(folder, 'none'))).toBeUndefined();
    expect((await host.list(folder)).sort()).toEqual(['log', 'sub']);
    expect(await host.list(join(folder, 'none'))).toEqual([]);

    await host.mkdir(join(dir, 'taken'), { mode: 0o755 });
    expect(await host.renameNew(join(folder, 'sub'), join(dir, 'taken'))).toBe(false);
    expect(await host.renameNew(join(folder, 'sub'), join(dir, 'moved'))).toBe(true);
    expect(readFileSync(join(dir, 'moved', 'disk')).length).toBe(300_000);
    await host.rm([folder, join(dir, 'moved'), join(dir, 'never-there')]);
    expect(await host.stat(folder)).toBeUndefined();
    expect(await host.stat(join(dir, 'moved'))).toBeUndefined();
  });
});
