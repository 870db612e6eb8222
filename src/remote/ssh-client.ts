import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import ssh2 from 'ssh2';
import type { ClientChannel, SFTPWrapper } from 'ssh2';
import { ExamlabError, TimeoutError, errorMessage } from '../util/errors.js';

const { Client, utils } = ssh2;

export interface SshTarget {
  host: string;
  port?: number;
  username: string;
  privateKey?: string;
  password?: string;
  /** SHA-256 fingerprint (base64) the host key must have; any key is accepted and reported when absent. */
  hostKey?: string;
  /** A VM's guest agent socket, for when SSH does not answer (see remote/machine-session.ts). */
  agentSocket?: string;
  /** The way to `agentSocket` when it is on another host (a VM of a lab host); connect to the path when it gives none. */
  agentStream?: () => Promise<Duplex | undefined>;
  /** The way to the machine's sshd when this host cannot route to it (an engine elsewhere); connect to host:port when it gives none. */
  tunnel?: () => Promise<Duplex | undefined>;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout as bytes, at most the cap; `truncated` says whether more was dropped. */
  stdoutBytes: Buffer;
  truncated: boolean;
}

export interface ExecOptions {
  stdin?: string | Buffer;
  timeoutMs: number;
  /** Cap on collected output, per stream; the rest is dropped and noted. */
  maxOutputBytes?: number;
}

/** The SSH connection could not be made or broke: the machine is unreachable, not "failing". */
export class SshError extends ExamlabError {}

export interface KeyPair {
  privateKey: string;
  /** One authorized_keys line. */
  publicKey: string;
}

export function generateKeyPair(comment: string): KeyPair {
  for (;;) {
    const pair = utils.generateKeyPairSync('ed25519', { comment });
    // About one pair in 128 comes out of ssh2 malformed (a key whose first byte is zero loses it, in both halves): made again.
    if (!(utils.parseKey(pair.private) instanceof Error) && !(utils.parseKey(pair.public) instanceof Error)) return { privateKey: pair.private, publicKey: pair.public.trim() };
  }
}

/** The target's tunnel, opened; undefined when the machine is reached at its address. */
export async function openTunnel(target: SshTarget, where: string): Promise<Duplex | undefined> {
  try {
    return await target.tunnel?.();
  } catch (err) {
    throw new SshError(`cannot reach ${where} through its engine: ${errorMessage(err)}`);
  }
}

/** An open SSH connection to one machine. */
export class SshSession {
  private constructor(
    private readonly client: InstanceType<typeof Client>,
    readonly target: SshTarget,
    /** SHA-256 fingerprint of the key the host presented. */
    readonly hostKey: string,
  ) {}

  static async connect(target: SshTarget, timeoutMs: number): Promise<SshSession> {
    const where = `${target.username}@${target.host}:${target.port ?? 22}`;
    const sock = await openTunnel(target, where);
    return new Promise((resolve, reject) => {
      const client = new Client();
      let presented = '';
      let mismatch = false;
      client.once('ready', () => resolve(new SshSession(client, target, presented)));
      // `on`, not `once`: a dying connection can report several errors, and an unheard one would crash the process.
      client.on('error', (err) => {
        // destroy, not end: a handshake that timed out leaves a TCP connection a slow machine (a VM booting) may never close.
        client.destroy();
        if (mismatch) reject(new SshError(`host key of ${where} changed: expected ${target.hostKey}, got ${presented}`));
        else reject(new SshError(`cannot open SSH to ${where}: ${err.message}`));
      });
      client.connect({
        sock,
        host: target.host,
        port: target.port ?? 22,
        username: target.username,
        privateKey: target.privateKey,
        password: target.password,
        readyTimeout: timeoutMs,
        // Keyboard-interactive carries the password for PAM-only servers.
        tryKeyboard: target.password !== undefined,
        hostVerifier: (key: Buffer) => {
          presented = fingerprint(key);
          mismatch = target.hostKey !== undefined && target.hostKey !== presented;
          return !mismatch;
        },
      });
      if (target.password !== undefined) {
        client.on('keyboard-interactive', (_name, _instructions, _lang, prompts, finish) => finish(prompts.map(() => target.password as string)));
      }
    });
  }

  /** Runs a command; a non-zero exit is a result, a broken connection or timeout is an error. */
  exec(command: string, options: ExecOptions): Promise<ExecResult> {
    const limit = options.maxOutputBytes ?? 8 * 1024 * 1024;
    return new Promise((resolve, reject) => {
      this.client.exec(command, (err, channel) => {
        if (err) return reject(new SshError(`cannot run a command on ${this.target.host}: ${err.message}`));
        const stdout = new Collector(limit);
        const stderr = new Collector(limit);
        const timer = setTimeout(() => {
          channel.close();
          reject(new TimeoutError(`command on ${this.target.host} did not finish within ${options.timeoutMs} ms`));
        }, options.timeoutMs);
        let exitCode: number | undefined;
        channel.on('data', (chunk: Buffer) => stdout.push(chunk));
        channel.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
        channel.on('exit', (code: number | null, signal?: string) => {
          exitCode = code ?? (signal ? 128 + signalNumber(signal) : 255);
        });
        channel.on('close', () => {
          clearTimeout(timer);
          if (exitCode === undefined) return reject(new SshError(`connection to ${this.target.host} closed before the command finished`));
          resolve({ exitCode, stdout: stdout.text(), stderr: stderr.text(), stdoutBytes: stdout.bytes(), truncated: stdout.dropped > 0 || stderr.dropped > 0 });
        });
        writeStdin(channel, options.stdin);
      });
    });
  }

  /**
   * Creates `dirName` (mode 0700, failing if it exists) in the login's home
   * and writes `files` into it, all over SFTP. Returns the directory's path.
   */
  async uploadToNewDir(dirName: string, files: readonly { name: string; data: Buffer | string; mode: number }[]): Promise<string> {
    const host = this.target.host;
    const sftp = await new Promise<SFTPWrapper>((resolve, reject) =>
      this.client.sftp((err, s) => (err ? reject(new SshError(`SFTP unavailable on ${host}: ${err.message}`)) : resolve(s))),
    );
    const step = <T>(what: string, op: (cb: (err: Error | null | undefined, value?: T) => void) => void) =>
      new Promise<T>((resolve, reject) => op((err, value) => (err ? reject(new SshError(`${what} on ${host}: ${errorMessage(err)}`)) : resolve(value as T))));
    try {
      const home = await step<string>('cannot resolve the home directory', (cb) => sftp.realpath('.', cb));
      const dir = `${home === '/' ? '' : home}/${dirName}`;
      await step('cannot create ' + dir, (cb) => sftp.mkdir(dir, { mode: 0o700 }, cb));
      await Promise.all(files.map((f) => step(`cannot write ${dir}/${f.name}`, (cb) => sftp.writeFile(`${dir}/${f.name}`, f.data, { mode: f.mode }, cb))));
      return dir;
    } finally {
      sftp.end();
    }
  }

  close(): void {
    // destroy, not end: after end() the socket waits for the machine's goodbye, and a machine destroyed
    // right after (a lab torn down, a VM reset) never sends it, which keeps the process alive for good.
    this.client.destroy();
  }
}

/** Opens a session, runs `fn`, always closes. */
export async function withSession<T>(target: SshTarget, timeoutMs: number, fn: (session: SshSession) => Promise<T>): Promise<T> {
  const session = await SshSession.connect(target, timeoutMs);
  try {
    return await fn(session);
  } finally {
    session.close();
  }
}

export function fingerprint(key: Buffer): string {
  return `SHA256:${createHash('sha256').update(key).digest('base64').replace(/=+$/, '')}`;
}

function writeStdin(channel: ClientChannel, stdin: string | Buffer | undefined): void {
  if (stdin !== undefined) channel.end(stdin);
  else channel.end();
}

class Collector {
  private chunks: Buffer[] = [];
  private size = 0;
  dropped = 0;
  constructor(private readonly limit: number) {}
  bytes(): Buffer {
    return Buffer.concat(this.chunks);
  }
  push(chunk: Buffer): void {
    if (this.size >= this.limit) {
      this.dropped += chunk.length;
      return;
    }
    this.chunks.push(chunk);
    this.size += chunk.length;
  }
  text(): string {
    const text = Buffer.concat(this.chunks).toString('utf8');
    return this.dropped ? `${text}\n… (${this.dropped} bytes dropped)` : text;
  }
}

const SIGNALS: Record<string, number> = { HUP: 1, INT: 2, KILL: 9, TERM: 15, SEGV: 11, ABRT: 6, PIPE: 13 };
function signalNumber(signal: string): number {
  return SIGNALS[signal.replace(/^SIG/, '')] ?? 0;
}
