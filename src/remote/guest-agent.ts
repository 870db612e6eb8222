import type { Duplex } from 'node:stream';
import { ExamlabError, TimeoutError, errorMessage } from '../util/errors.js';
import type { ExecOptions, ExecResult } from './ssh-client.js';
import { Mutex } from '../util/concurrency.js';
import { connectUnixSocket } from '../util/unix-socket.js';

/** The guest agent could not be reached or did not answer: the machine is unreachable, not "failing". */
export class GuestAgentError extends ExamlabError {}

const ENV = ['HOME=/root', 'USER=root', 'LOGNAME=root', 'PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'];
/** QEMU's socket takes one client at a time: sessions of this process to one socket take turns. */
const turns = new Map<string, Mutex>();


/** The longest answer read from a guest agent (qemu-ga caps captured output at 16 MiB, base64 makes it 4/3). */
const MAX_ANSWER_BYTES = 24 << 20;
/** Answers left unread by an earlier client, skipped before the sync's: a few at most from a real agent. */
const MAX_STALE_LINES = 1000;

/**
 * A root session through the QEMU guest agent (qemu-ga) of a VM, over the
 * virtio-serial socket in its domain: commands run and files land on the
 * machine without any network, so this works in emergency mode. It offers
 * what the grader and the steps use of an SSH session (exec, uploadToNewDir).
 *
 * Protocol: JSON lines; `guest-sync-delimited` first, whose answer follows a
 * 0xFF byte, so whatever an earlier client left unread is skipped.
 */
export class GuestAgentSession {
  /** What came in and is not taken yet: joined into `buffer` only when a line is wanted and may have ended, so a long answer or a flood costs one copy. */
  private buffer = Buffer.alloc(0);
  private pending: Buffer[] = [];
  /** Bytes held (buffer and pending), capped. */
  private received = 0;
  private waiting?: { resolve: (line: string) => void; reject: (err: Error) => void };
  private closed?: Error;

  private constructor(
    private readonly socket: Duplex,
    readonly path: string,
    private readonly release: () => void,
  ) {
    socket.on('data', (chunk: Buffer) => {
      this.received += chunk.length;
      // An agent the candidate replaced may flood: no answer is ever this long (guest-exec output is capped by the agent).
      if (this.received > MAX_ANSWER_BYTES) {
        socket.destroy(new GuestAgentError(`the guest agent sent more than ${MAX_ANSWER_BYTES} bytes that are no answer to what was asked`));
        return;
      }
      this.pending.push(chunk);
      if (this.waiting && (chunk.includes(0x0a) || chunk.includes(0xff))) this.deliver();
    });
    const end = (err?: Error) => {
      this.closed = new GuestAgentError(`guest agent connection ${path} closed${err ? `: ${err.message}` : ''}`);
      this.waiting?.reject(this.closed);
      this.waiting = undefined;
    };
    socket.on('error', end);
    socket.on('close', () => end());
  }

  /**
   * `open` reaches the socket when it is on another host (a VM of a lab
   * host); without one, or when it gives nothing, `path` is this host's.
   */
  static async connect(path: string, timeoutMs: number, open?: () => Promise<Duplex | undefined>): Promise<GuestAgentSession> {
    const turn = turns.get(path) ?? new Mutex();
    turns.set(path, turn);
    let release!: () => void;
    const mine = new Promise<void>((resolve) => (release = resolve));
    let acquired!: () => void;
    const ready = new Promise<void>((resolve) => (acquired = resolve));
    void turn.run(() => {
      acquired();
      return mine;
    });
    await ready;
    try {
      const opened = await open?.().catch((err: unknown) => {
        throw new GuestAgentError(`cannot reach the guest agent at ${path}: ${errorMessage(err)}`);
      });
      const socket =
        opened ??
        (await connectUnixSocket(path).catch((err: Error) => {
          throw new GuestAgentError(`cannot reach the guest agent at ${path}: ${err.message}`);
        }));
      const session = new GuestAgentSession(socket, path, release);
      try {
        await session.sync(timeoutMs);
      } catch (err) {
        session.close();
        throw err;
      }
      return session;
    } catch (err) {
      release();
      throw err;
    }
  }

  /** Bounded as a whole: an agent that answers line after line, but never with our id, ends like a silent one. */
  private async sync(timeoutMs: number): Promise<void> {
    const id = Math.floor(Math.random() * 2 ** 31);
    const deadline = Date.now() + timeoutMs;
    this.socket.write(`${JSON.stringify({ execute: 'guest-sync-delimited', arguments: { id } })}\n`);
    for (let skipped = 0; ; skipped++) {
      const answer = await this.nextLine(Math.max(1, deadline - Date.now()), 'the guest agent did not answer (is the machine booted, and qemu-ga running in it?)');
      if (parseAnswer<number>(answer).return === id) return;
      if (Date.now() >= deadline) throw new TimeoutError(`the guest agent did not answer its sync within ${timeoutMs} ms (${this.path})`);
      if (skipped >= MAX_STALE_LINES) throw new GuestAgentError(`the guest agent sent more than ${MAX_STALE_LINES} lines before answering its sync (${this.path})`);
    }
  }

  /** Hands the next whole line to whoever waits for it; the bytes before a sync marker are an earlier client's, skipped. */
  private deliver(): void {
    if (!this.waiting) return;
    if (this.pending.length) {
      // Only new bytes are searched for the marker: what was searched once is not searched again.
      let parts = [this.buffer, ...this.pending];
      const marked = parts.findLastIndex((part) => part.includes(0xff));
      if (marked >= 0) parts = [(parts[marked] as Buffer).subarray((parts[marked] as Buffer).lastIndexOf(0xff) + 1), ...parts.slice(marked + 1)];
      this.buffer = Buffer.concat(parts);
      this.pending = [];
    }
    for (let newline = this.buffer.indexOf(0x0a); newline >= 0; newline = this.buffer.indexOf(0x0a)) {
      const line = this.buffer.subarray(0, newline).toString('utf8').trim();
      this.buffer = this.buffer.subarray(newline + 1);
      this.received = this.buffer.length;
      if (!line) continue;
      const waiting = this.waiting;
      this.waiting = undefined;
      waiting.resolve(line);
      return;
    }
  }

  private nextLine(timeoutMs: number, what: string): Promise<string> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        reject(new TimeoutError(`${what} within ${timeoutMs} ms (${this.path})`));
      }, timeoutMs);
      this.waiting = {
        resolve: (line) => (clearTimeout(timer), resolve(line)),
        reject: (err) => (clearTimeout(timer), reject(err)),
      };
      this.deliver();
    });
  }

  private async call<T>(execute: string, args: object, timeoutMs = 30_000): Promise<T> {
    this.socket.write(`${JSON.stringify({ execute, arguments: args })}\n`);
    const answer = parseAnswer<T>(await this.nextLine(timeoutMs, `the guest agent did not answer ${execute}`));
    if (answer.error) throw new GuestAgentError(`guest agent ${execute}: ${answer.error.desc ?? JSON.stringify(answer.error)}`);
    return answer.return as T;
  }

  /** Runs `command` with /bin/sh as root; a non-zero exit is a result, a lost agent or a timeout is an error. */
  async exec(command: string, options: ExecOptions): Promise<ExecResult> {
    const input = options.stdin === undefined ? undefined : Buffer.from(options.stdin).toString('base64');
    const { pid } = await this.call<{ pid: number }>('guest-exec', {
      path: '/bin/sh',
      arg: ['-c', command],
      env: ENV,
      'capture-output': true,
      ...(input !== undefined ? { 'input-data': input } : {}),
    });
    const deadline = Date.now() + options.timeoutMs;
    for (let interval = 20; ; interval = Math.min(interval * 2, 250)) {
      // Each poll waits no longer than the command has left: an agent that answers slowly cannot stretch the deadline.
      const status = await this.call<{ exited: boolean; exitcode?: number; signal?: number; 'out-data'?: string; 'err-data'?: string }>('guest-exec-status', { pid }, Math.max(1000, Math.min(30_000, deadline - Date.now() + 5000)));
      if (status.exited) {
        const bytes = (b64?: string) => (b64 ? Buffer.from(b64, 'base64') : Buffer.alloc(0));
        const stdout = bytes(status['out-data']);
        const truncated = Boolean((status as { 'out-truncated'?: boolean })['out-truncated'] || (status as { 'err-truncated'?: boolean })['err-truncated']);
        return { exitCode: status.exitcode ?? 128 + (status.signal ?? 0), stdout: stdout.toString('utf8'), stderr: bytes(status['err-data']).toString('utf8'), stdoutBytes: stdout, truncated };
      }
      if (Date.now() > deadline) {
        await this.call('guest-exec', { path: '/bin/kill', arg: ['-KILL', String(pid)] }).catch(() => undefined);
        throw new TimeoutError(`command through the guest agent did not finish within ${options.timeoutMs} ms`);
      }
      await new Promise((resolve) => setTimeout(resolve, interval));
    }
  }

  /**
   * Like SshSession.uploadToNewDir, but in /dev/shm: a machine in emergency
   * mode may still have its root filesystem read-only, and /dev/shm is a
   * tmpfs that is writable and, unlike /run, allows running programs.
   */
  async uploadToNewDir(dirName: string, files: readonly { name: string; data: Buffer | string; mode: number }[]): Promise<string> {
    const dir = `/dev/shm/${dirName}`;
    const made = await this.exec(`mkdir -m 700 '${dir}'`, { timeoutMs: 15_000 });
    if (made.exitCode !== 0) throw new GuestAgentError(`cannot create ${dir}: ${made.stderr.trim()}`);
    for (const f of files) {
      const path = `${dir}/${f.name}`;
      const written = await this.exec(`cat > '${path}' && chmod ${f.mode.toString(8)} '${path}'`, { stdin: f.data, timeoutMs: 60_000 });
      if (written.exitCode !== 0) throw new GuestAgentError(`cannot write ${path}: ${written.stderr.trim() || `exit ${written.exitCode}`}`);
    }
    return dir;
  }

  close(): void {
    this.socket.destroy();
    this.release();
  }
}

/** One line of the agent's JSON protocol; a line that is not a JSON object is the agent's fault, said as such. */
function parseAnswer<T>(line: string): { return?: T; error?: { desc?: string } } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch {
    throw new GuestAgentError(`the guest agent answered with something that is not JSON: ${JSON.stringify(line.slice(0, 80))}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new GuestAgentError(`the guest agent answered with something that is not a JSON object: ${JSON.stringify(line.slice(0, 80))}`);
  return value as { return?: T; error?: { desc?: string } };
}
