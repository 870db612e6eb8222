import { chmod, open, rm } from 'node:fs/promises';
import { createServer, Socket, type Server } from 'node:net';
import { pipeline } from 'node:stream/promises';
import type { Duplex, Readable } from 'node:stream';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { EnvironmentError, InputError, TimeoutError, errorMessage } from '../util/errors.js';
import { formatMs } from '../util/retry.js';
import { shq } from '../util/shell.js';
import { SshError, fingerprint } from './ssh-client.js';

const { Client } = ssh2;

export interface HostConnectionOptions {
  host: string;
  port?: number;
  username: string;
  /** OpenSSH private key (the key's content, not its file). */
  privateKey: string;
  /** The host's public key as in known_hosts (`ssh-ed25519 AAAA…`): the only key accepted. */
  hostKey: string;
  /** Bound on opening the connection (TCP, handshake, login) and on opening a channel on it. */
  connectTimeoutMs?: number;
}

export interface HostExecOptions {
  stdin?: string | Buffer | Readable;
  timeoutMs: number;
  /** Cap on what is kept of each of stdout and stderr; the rest is dropped and `truncated` says so. */
  maxOutputBytes?: number;
}

export interface HostExecResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
  truncated: boolean;
}

export interface HostFileInfo {
  type: 'file' | 'directory' | 'socket' | 'other';
  size: number;
}

/** A local unix socket whose connections are carried to a unix socket of the host. */
export interface SocketForward {
  path: string;
  close(): Promise<void>;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 20_000;
const DEFAULT_OUTPUT_CAP = 8 << 20;

/**
 * One SSH connection to a host, shared by everything examlab does there:
 * commands (an argv, quoted for the host's shell so no value is ever
 * interpreted), files (through commands: `cat`, `stat`, `mkdir`, `rm`, no
 * SFTP server needed), TCP streams to addresses the host reaches (a VM's
 * sshd on a bridge of that host), and the host's unix sockets (OpenSSH's
 * streamlocal: a VM's console, libvirtd). A Docker engine there could run
 * `docker system dial-stdio` through `spawn` on the same connection.
 *
 * The host's key is pinned: any other is refused, whoever answers at the
 * address. The connection is opened on first use and again after it
 * drops; a host that does not answer a channel opening in time is taken as
 * hung, and its connection dropped. Every operation has a deadline.
 *
 * The host needs what any Linux host has: a POSIX login shell, coreutils
 * (`timeout` bounds every command there too) and OpenSSH's sshd.
 *
 * An idle connection does not keep the process alive (its socket is unref'd
 * while no operation or stream handed out is in progress), so a command
 * that used a host still exits when it is done.
 */
export class HostConnection {
  /** `user@host:port`, for messages. */
  readonly label: string;
  private readonly expectedKey: Buffer;
  private readonly connectTimeoutMs: number;
  private current?: Promise<Live>;
  private holds = 0;
  private live?: Live;
  private closed = false;
  private opened = 0;

  constructor(private readonly options: HostConnectionOptions) {
    this.label = `${options.username}@${options.host}:${options.port ?? 22}`;
    this.expectedKey = publicKeyBlob(options.hostKey, this.label);
    this.connectTimeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  }

  /** Runs `argv` on the host (no shell interprets its values); a non-zero exit is a result, a lost host or the deadline is an error. */
  async exec(argv: readonly string[], options: HostExecOptions): Promise<HostExecResult> {
    // Bounded on the host too (coreutils' timeout, a little after the deadline here): a channel closed
    // by this side does not stop a command that does not write, and ssh2 sends no signal once stdin is closed.
    const command = commandLine(['timeout', '-s', 'KILL', `${Math.ceil(options.timeoutMs / 1000) + 1}s`, ...argv]);
    return this.held(async () => {
      const deadline = Date.now() + options.timeoutMs;
      const limit = options.maxOutputBytes ?? DEFAULT_OUTPUT_CAP;
      const stdout = new Capped(limit);
      const stderr = new Capped(limit);
      let exitCode: number | undefined;
      let finished!: Promise<void>;
      const input = options.stdin;
      const stream = input !== undefined && typeof input !== 'string' && !Buffer.isBuffer(input) ? input : undefined;
      // A stream that fails before the channel opens (a file that cannot be read) fails this run, not the process.
      let inputError: Error | undefined;
      const inputFailed = (err: unknown) => (inputError ??= new EnvironmentError(`cannot send ${argv[0]} its input on ${this.label}: ${errorMessage(err)}`));
      stream?.once('error', inputFailed);
      let channel: ClientChannel;
      try {
        // Listened to as soon as the channel exists: its output and exit may come with its opening's answer.
        channel = await this.channel(`run ${argv[0]}`, deadline, (client, cb) => client.exec(command, cb), {}, (ch) => {
          ch.on('data', (chunk: Buffer) => stdout.push(chunk));
          ch.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
          ch.on('exit', (code: number | null, signal?: string) => {
            exitCode = code ?? (signal ? 128 + (SIGNALS[signal.replace(/^SIG/, '')] ?? 0) : 255);
          });
          finished = new Promise<void>((resolve) => ch.once('close', () => resolve()));
        });
      } catch (err) {
        stream?.destroy();
        throw err;
      }
      return new Promise<HostExecResult>((resolve, reject) => {
        const timer = setTimeout(() => {
          channel.close();
          reject(new TimeoutError(`${argv[0]} on ${this.label} did not finish within ${formatMs(options.timeoutMs)}`));
        }, Math.max(0, deadline - Date.now()));
        void finished.then(() => {
          clearTimeout(timer);
          if (inputError) return reject(inputError);
          if (exitCode === undefined) return reject(new SshError(`the connection to ${this.label} closed before ${argv[0]} finished`));
          resolve({ exitCode, stdout: stdout.bytes(), stderr: stderr.bytes(), truncated: stdout.dropped + stderr.dropped > 0 });
        });
        if (stream)
          pipeline(stream, channel).catch((err: unknown) => {
            inputFailed(err);
            channel.close();
          });
        else if (input === undefined) channel.end();
        else channel.end(input as string | Buffer);
      });
    });
  }

  /** Runs `argv` and returns its stdout; a non-zero exit is an EnvironmentError carrying the end of its output. */
  async run(argv: readonly string[], options: HostExecOptions): Promise<string> {
    const result = await this.exec(argv, options);
    if (result.exitCode === 0) return result.stdout.toString('utf8');
    const tail = `${result.stderr.toString('utf8')}${result.stdout.toString('utf8')}`.trim().slice(-2000);
    throw new EnvironmentError(`${argv.join(' ')} exited ${result.exitCode} on ${this.label}${tail ? `:\n${tail}` : ''}`);
  }

  /**
   * A program on the host as a byte stream (its stdin and stdout), for a
   * protocol spoken over them (`docker system dial-stdio`). The deadline
   * bounds the opening only.
   */
  spawn(argv: readonly string[], timeoutMs: number): Promise<Duplex> {
    const command = commandLine(argv);
    return this.stream(`start ${argv[0]}`, timeoutMs, (client, cb) => client.exec(command, cb), {});
  }

  /** A TCP stream from the host to `host:port` (an address the host reaches, such as a VM on its bridge). */
  forwardOut(host: string, port: number, timeoutMs = this.connectTimeoutMs): Promise<Duplex> {
    return this.stream(`reach ${host}:${port}`, timeoutMs, (client, cb) => client.forwardOut('127.0.0.1', 0, host, port, cb), { slowTarget: true });
  }

  /** A stream to a unix socket of the host (OpenSSH's direct-streamlocal). */
  openUnixSocket(path: string, timeoutMs = this.connectTimeoutMs): Promise<Duplex> {
    return this.stream(`open ${path}`, timeoutMs, (client, cb) => client.openssh_forwardOutStreamLocal(path, cb), { slowTarget: true });
  }

  /**
   * Serves a unix socket of the host at `localPath` on this one: each
   * connection to it is carried to `remotePath`. The socket is made in
   * `localPath`'s folder, which must be private (it is not checked here);
   * the socket itself is mode 0600. It does not keep the process alive.
   */
  async forwardUnixSocket(remotePath: string, localPath: string): Promise<SocketForward> {
    await rm(localPath, { force: true });
    const open = new Set<Socket>();
    const server: Server = createServer((local) => {
      open.add(local);
      // The client of the forward keeps the process alive by what it waits for (a call in flight), not by its idle socket.
      local.unref();
      local.on('error', () => undefined);
      local.on('close', () => open.delete(local));
      this.openUnixSocket(remotePath).then(
        (remote) => {
          remote.on('error', () => local.destroy());
          local.on('close', () => remote.destroy());
          remote.on('close', () => local.destroy());
          local.pipe(remote).pipe(local);
        },
        () => local.destroy(),
      );
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ path: localPath, readableAll: false, writableAll: false }, () => resolve());
    });
    server.unref();
    await chmod(localPath, 0o600);
    return {
      path: localPath,
      close: () =>
        new Promise<void>((resolve) => {
          // Its clients' connections end with it: a server waits for them otherwise, and a libvirt client never lets go.
          server.close(() => resolve());
          for (const local of open) local.destroy();
        }),
    };
  }

  /** Writes `data` to `path` on the host (made with mode `mode`, replaced if it exists), as `upload` does. */
  writeFile(path: string, data: string | Buffer, options: { mode: number; timeoutMs: number }): Promise<void> {
    return this.put(path, { bytes: typeof data === 'string' ? Buffer.from(data) : data }, options);
  }

  /**
   * Copies a file of this host to `path` on the host. The copy is written
   * beside it and renamed once all of it arrived (its size checked there):
   * `path` never holds a part of the file, whatever breaks on the way.
   */
  upload(localPath: string, path: string, options: { mode: number; timeoutMs: number }): Promise<void> {
    return this.put(path, { file: localPath }, options);
  }

  private async put(path: string, source: { file: string } | { bytes: Buffer }, options: { mode: number; timeoutMs: number }): Promise<void> {
    // A file is opened first: one that cannot be read fails here, before anything is made there.
    const file = 'file' in source ? await open(source.file, 'r') : undefined;
    try {
      const size = file ? (await file.stat()).size : (source as { bytes: Buffer }).bytes.length;
      // umask 077 first: the file is never readable by others before its mode is set.
      const script = 'umask 077 && cat > "$1.partial" && test "$(stat -c %s "$1.partial")" = "$3" && chmod "$2" "$1.partial" && mv -f "$1.partial" "$1" || { rm -f "$1.partial"; exit 1; }';
      const stdin = file ? file.createReadStream({ autoClose: false }) : (source as { bytes: Buffer }).bytes;
      await this.run(['sh', '-c', script, 'sh', path, options.mode.toString(8), String(size)], { stdin, timeoutMs: options.timeoutMs });
    } finally {
      await file?.close();
    }
  }

  /** A file of the host, or undefined when it does not exist; more than `maxBytes` is an error. */
  async readFile(path: string, options: { maxBytes: number; timeoutMs: number }): Promise<Buffer | undefined> {
    const result = await this.exec(['sh', '-c', 'test -e "$1" || exit 3; cat -- "$1"', 'sh', path], { timeoutMs: options.timeoutMs, maxOutputBytes: options.maxBytes });
    if (result.exitCode === 3) return undefined;
    if (result.exitCode !== 0) throw new EnvironmentError(`cannot read ${path} on ${this.label}: ${result.stderr.toString('utf8').trim()}`);
    if (result.truncated) throw new EnvironmentError(`${path} on ${this.label} is larger than ${result.stdout.length} bytes`);
    return result.stdout;
  }

  /** The last `maxBytes` of a file of the host, or undefined when it does not exist. */
  async readTail(path: string, options: { maxBytes: number; timeoutMs: number }): Promise<Buffer | undefined> {
    const result = await this.exec(['sh', '-c', 'test -e "$1" || exit 3; tail -c "$2" -- "$1"', 'sh', path, String(options.maxBytes)], { timeoutMs: options.timeoutMs, maxOutputBytes: options.maxBytes });
    if (result.exitCode === 3) return undefined;
    if (result.exitCode !== 0) throw new EnvironmentError(`cannot read ${path} on ${this.label}: ${result.stderr.toString('utf8').trim()}`);
    return result.stdout;
  }

  /** What `path` is on the host (symbolic links followed), or undefined when nothing is there. */
  async stat(path: string, timeoutMs = this.connectTimeoutMs): Promise<HostFileInfo | undefined> {
    const result = await this.exec(['sh', '-c', 'test -e "$1" || exit 3; stat -L -c "%F|%s" -- "$1"', 'sh', path], { timeoutMs });
    if (result.exitCode === 3) return undefined;
    if (result.exitCode !== 0) throw new EnvironmentError(`cannot stat ${path} on ${this.label}: ${result.stderr.toString('utf8').trim()}`);
    const [kind = '', size = '0'] = result.stdout.toString('utf8').trim().split('|');
    const type = kind === 'directory' ? 'directory' : kind.startsWith('regular') ? 'file' : kind === 'socket' ? 'socket' : 'other';
    return { type, size: Number(size) };
  }

  /** The names in a folder of the host; none when it does not exist. */
  async list(dir: string, timeoutMs = this.connectTimeoutMs): Promise<string[]> {
    // One name per line, NUL-free: names with a newline (never made by examlab) would be split, and are no lab's.
    const out = await this.run(['sh', '-c', 'test -d "$1" || exit 0; cd -- "$1" && ls -1A', 'sh', dir], { timeoutMs });
    return out.split('\n').filter(Boolean);
  }

  /** Makes a folder and its parents, then gives it `mode`. */
  async mkdir(path: string, options: { mode: number; timeoutMs?: number }): Promise<void> {
    await this.run(['sh', '-c', 'mkdir -p -- "$1" && chmod "$2" "$1"', 'sh', path, options.mode.toString(8)], { timeoutMs: options.timeoutMs ?? this.connectTimeoutMs });
  }

  /** Removes files and folders (recursively); what is not there is fine. */
  async rm(paths: readonly string[], timeoutMs = 60_000): Promise<void> {
    if (!paths.length) return;
    await this.run(['rm', '-rf', '--', ...paths], { timeoutMs });
  }

  /** Renames `from` to `to`, which must not exist (a folder there, even empty, is not replaced): false when it does. */
  async renameNew(from: string, to: string, timeoutMs = this.connectTimeoutMs): Promise<boolean> {
    const result = await this.exec(['sh', '-c', 'test -e "$2" && exit 3; mv -T -- "$1" "$2"', 'sh', from, to], { timeoutMs });
    if (result.exitCode === 3) return false;
    if (result.exitCode !== 0) {
      // Another process may have made `to` between the test and the rename.
      if ((await this.stat(to, timeoutMs)) !== undefined) return false;
      throw new EnvironmentError(`cannot rename ${from} to ${to} on ${this.label}: ${result.stderr.toString('utf8').trim()}`);
    }
    return true;
  }

  /** How many connections were opened so far (one, unless the host dropped one). */
  get connectionsOpened(): number {
    return this.opened;
  }

  /** Closes the connection; later operations fail. */
  close(): void {
    this.closed = true;
    this.live?.client.destroy();
    this.live = undefined;
    this.current = undefined;
  }

  /** Keeps the connection's socket referenced while `fn` runs. */
  private async held<T>(fn: () => Promise<T>): Promise<T> {
    this.hold();
    try {
      return await fn();
    } finally {
      this.release();
    }
  }

  private hold(): void {
    if (this.holds++ === 0) this.live?.sock.ref();
  }

  private release(): void {
    if (--this.holds === 0) this.live?.sock.unref();
  }

  /** A channel handed to the caller: the process stays alive until it closes. */
  private async stream(what: string, timeoutMs: number, open: ChannelOpener, how: ChannelHow): Promise<Duplex> {
    this.hold();
    let held = true;
    const release = () => {
      if (held) this.release();
      held = false;
    };
    try {
      return await this.channel(what, Date.now() + timeoutMs, open, how, (channel) => {
        channel.once('close', release);
        // ssh2 emits 'close' only once the stream was read to its end: one its user destroys unread lets go here.
        const destroy = channel.destroy.bind(channel);
        channel.destroy = () => {
          release();
          return destroy();
        };
      });
    } catch (err) {
      release();
      throw err;
    }
  }

  /**
   * Opens a channel before the deadline (and within the connect bound,
   * whatever the deadline). A connection found dead at that moment (the
   * host said goodbye, the network cut it) is replaced once: nothing ran.
   */
  private async channel(what: string, deadline: number, open: ChannelOpener, how: ChannelHow, opened?: (channel: ClientChannel) => void): Promise<ClientChannel> {
    for (let attempt = 1; ; attempt++) {
      const live = await this.connection();
      try {
        return await this.openOn(live, what, deadline, open, how, opened);
      } catch (err) {
        const lost = this.live !== live && !(err instanceof TimeoutError);
        if (!lost || attempt > 1 || Date.now() >= deadline) throw err;
      }
    }
  }

  private openOn(live: Live, what: string, deadline: number, open: ChannelOpener, how: ChannelHow, opened?: (channel: ClientChannel) => void): Promise<ClientChannel> {
    const ms = Math.max(0, how.slowTarget ? deadline - Date.now() : Math.min(deadline - Date.now(), this.connectTimeoutMs));
    return new Promise<ClientChannel>((resolve, reject) => {
      let over = false;
      const timer = setTimeout(() => {
        over = true;
        // A host that does not answer a session's opening is hung (or gone without a word): the next operation opens a
        // new connection. A stream's opening waits on its target too (a VM's sshd still booting): the host is not blamed.
        if (!how.slowTarget) this.drop(live);
        reject(new TimeoutError(`${this.label} did not answer within ${formatMs(ms)} (${what})`));
      }, ms);
      try {
        open(live.client, (err, channel) => {
          clearTimeout(timer);
          if (over) return void channel?.close();
          if (err) return reject(new SshError(`cannot ${what} on ${this.label}: ${err.message}`));
          opened?.(channel);
          resolve(channel);
        });
      } catch (err) {
        clearTimeout(timer);
        this.drop(live);
        reject(new SshError(`cannot ${what} on ${this.label}: ${errorMessage(err)}`));
      }
    });
  }

  /** The open connection, or a new one (shared by the operations that ask while it opens). */
  private connection(): Promise<Live> {
    if (this.closed) return Promise.reject(new SshError(`the connection to ${this.label} was closed`));
    if (!this.current) {
      const opening = this.open();
      this.current = opening;
      opening.catch(() => {
        if (this.current === opening) this.current = undefined;
      });
    }
    return this.current;
  }

  private drop(live: Live): void {
    if (this.live === live) {
      this.live = undefined;
      this.current = undefined;
    }
    live.client.destroy();
  }

  private open(): Promise<Live> {
    const { host, port = 22, username, privateKey } = this.options;
    return new Promise<Live>((resolve, reject) => {
      const sock = new Socket();
      const client = new Client();
      const live: Live = { client, sock };
      let presented: string | undefined;
      let settled = false;
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        client.destroy();
        sock.destroy();
        reject(err);
      };
      const timer = setTimeout(() => fail(new SshError(`no SSH answer from ${this.label} within ${formatMs(this.connectTimeoutMs)}`)), this.connectTimeoutMs);
      client.once('ready', () => {
        if (settled) return void client.destroy();
        settled = true;
        clearTimeout(timer);
        this.opened++;
        this.live = live;
        if (this.holds === 0) sock.unref();
        resolve(live);
      });
      // `on`, not `once`: a dying connection can report several errors, and an unheard one would crash the process.
      client.on('error', (err) => {
        if (presented !== undefined) fail(new SshError(`host key of ${this.label} is not the pinned one: expected ${fingerprint(this.expectedKey)}, got ${presented}`));
        else fail(new SshError(`cannot open SSH to ${this.label}: ${err.message}`));
        this.drop(live);
      });
      const ended = () => {
        fail(new SshError(`the connection to ${this.label} closed during its opening`));
        this.drop(live);
      };
      // 'end' comes first when the host says goodbye (sshd restarting): no channel is opened on it after that.
      client.on('end', ended);
      client.on('close', ended);
      // Dead peers are also noticed by the kernel, when nothing else asks.
      sock.setKeepAlive(true, 15_000);
      // Requests and answers are small and go back and forth (an engine's API): Nagle's delay would hold each.
      sock.setNoDelay(true);
      sock.connect({ host, port });
      client.connect({
        sock,
        username,
        privateKey,
        readyTimeout: this.connectTimeoutMs,
        hostVerifier: (key: Buffer) => {
          if (key.equals(this.expectedKey)) return true;
          presented = fingerprint(key);
          return false;
        },
      });
    });
  }
}

interface Live {
  client: InstanceType<typeof Client>;
  sock: Socket;
}

type ChannelOpener = (client: InstanceType<typeof Client>, cb: (err: Error | undefined, channel: ClientChannel) => void) => void;

/** `slowTarget`: the host answers the opening once it reached the stream's target (a TCP port, a socket), which may take its time. */
interface ChannelHow {
  slowTarget?: boolean;
}

/**
 * The command line sshd hands to the user's shell: every argument quoted,
 * so no value is expanded, split or run. (The login shell must be a POSIX
 * shell, as root's is.)
 */
export function commandLine(argv: readonly string[]): string {
  if (!argv.length) throw new InputError('a command needs a program');
  for (const arg of argv) if (arg.includes('\0')) throw new InputError('a command argument cannot hold a NUL byte');
  return argv.map((a) => shq(a)).join(' ');
}

/** The key blob of a known_hosts-style public key line (`ssh-ed25519 AAAA… [comment]`). */
export function publicKeyBlob(line: string, where: string): Buffer {
  const [type = '', base64 = ''] = line.trim().split(/\s+/);
  const blob = Buffer.from(base64, 'base64');
  // A key blob starts with its own type, length-prefixed: anything else is not a key.
  const named = blob.length > 4 ? blob.subarray(4, 4 + blob.readUInt32BE(0)).toString('latin1') : '';
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(base64) || !type || named !== type) {
    throw new InputError(`the host key of ${where} is not a public key line ("ssh-ed25519 AAAA…"): ${line.slice(0, 40)}`);
  }
  return blob;
}

class Capped {
  private chunks: Buffer[] = [];
  private size = 0;
  dropped = 0;
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    const room = this.limit - this.size;
    if (room <= 0) {
      this.dropped += chunk.length;
      return;
    }
    const kept = chunk.length > room ? chunk.subarray(0, room) : chunk;
    this.chunks.push(kept);
    this.size += kept.length;
    this.dropped += chunk.length - kept.length;
  }
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
}

const SIGNALS: Record<string, number> = { HUP: 1, INT: 2, KILL: 9, TERM: 15, SEGV: 11, ABRT: 6, PIPE: 13 };
