import type { Logger } from 'pino';
import { EngineUnavailableError, errorMessage } from '../../util/errors.js';
import { formatMs } from '../../util/retry.js';

/** What the connection itself calls on a binding object (the operations call the rest). */
export interface LibvirtHandle {
  connectOpen(): Promise<void>;
  connectClose(): Promise<void>;
  connectGetHostname(): Promise<string>;
}

export interface LibvirtConnectionOptions<H extends LibvirtHandle> {
  /** libvirtd's address, as messages name it. */
  uri: string;
  /** What to do when libvirtd does not answer, for the message; `make engines` (this host's) by default. */
  hint?: string;
  /** A new binding object, not open yet: one per connection (the binding cannot reopen one without leaking the old). */
  handle: () => H;
  log: Logger;
  /** An operation's time limit, unless it gives its own. */
  timeoutMs?: number;
  /** How long opening a connection, or asking a failed one whether it still answers, may take. */
  openTimeoutMs?: number;
  /** Native calls waiting on libvirtd at once (see NativeCalls). */
  maxInFlight?: number;
}

export interface RunOptions {
  timeoutMs?: number;
  /**
   * Run the operation once more on a new connection when the first one turns
   * out dead (libvirtd restarted since the last call). True by default; false
   * for what must not happen twice (defining a domain).
   */
  retry?: boolean;
}

/**
 * The one connection to libvirtd, opened again when it dies. The binding
 * opens a connection once and never notices libvirtd going away: after a
 * restart every call on it fails ("client socket is closed") for good, and
 * with libvirtd stopped or hung a call waits forever, holding one of
 * libuv's few worker threads, which file I/O needs too. So every operation
 * goes through `run`: bounded in time, with at most `maxInFlight` native
 * calls out at once; an operation that fails on a connection that no longer
 * answers drops it, and the next one opens a new one. Failing because
 * libvirtd is away is an EngineUnavailableError naming libvirtd; any other
 * failure (a domain not found) is the call's own.
 */
export class LibvirtConnection<H extends LibvirtHandle> {
  private current?: { handle: H; opened: Promise<void> };
  /** When the last connection was lost, until a new one opens. */
  private lostAt?: number;
  /** Connections opened and not closed yet, and the native calls each has out. */
  private readonly opened = new Set<H>();
  private readonly out = new Map<H, number>();
  private readonly calls: NativeCalls;
  private readonly timeoutMs: number;
  private readonly openTimeoutMs: number;

  constructor(private readonly options: LibvirtConnectionOptions<H>) {
    this.calls = new NativeCalls(options.maxInFlight ?? 2);
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.openTimeoutMs = options.openTimeoutMs ?? 10_000;
  }

  /** Runs `op` on an open connection (one connection for the whole operation: its domain handles belong to it). */
  async run<T>(what: string, op: (handle: H) => Promise<T>, options: RunOptions = {}): Promise<T> {
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    const until = Date.now() + timeoutMs;
    for (let attempt = 1; ; attempt++) {
      const handle = await this.connection(what, until);
      const scope = { over: false };
      try {
        return await beforeDeadline(op(this.scoped(handle, scope, until)), until);
      } catch (err) {
        scope.over = true;
        if (err instanceof Overdue) {
          this.lose(handle, `no answer within ${formatMs(timeoutMs)} (${what})`);
          throw new EngineUnavailableError('libvirt', `libvirtd at ${this.options.uri} did not answer within ${formatMs(timeoutMs)} (${what})${this.calls.describe()}; the connection is opened again at the next call`, { cause: err });
        }
        if (await this.answers(handle)) throw err;
        this.lose(handle, errorMessage(err));
        if ((options.retry ?? true) && attempt === 1 && Date.now() < until) continue;
        throw new EngineUnavailableError('libvirt', `libvirtd at ${this.options.uri} stopped answering (${what}: ${errorMessage(err)}); the connection is opened again at the next call`, { cause: err });
      }
    }
  }

  /** Closes the open connection (once no call is out on it); a later operation opens a new one. */
  close(): void {
    const handle = this.current?.handle;
    if (!handle) return;
    this.current = undefined;
    this.closeIfDropped(handle);
  }

  /** The open connection, or a new one (shared by the operations that ask while it opens). */
  private async connection(what: string, until: number): Promise<H> {
    if (!this.current) {
      const handle = this.options.handle();
      const openUntil = Date.now() + this.openTimeoutMs;
      const opened = beforeDeadline(
        this.call(handle, () => handle.connectOpen().then(() => void this.opened.add(handle)), openUntil),
        openUntil,
      );
      const current = { handle, opened };
      this.current = current;
      opened.then(
        () => {
          if (this.lostAt !== undefined) this.options.log.info({ uri: this.options.uri, downSeconds: Math.round((Date.now() - this.lostAt) / 1000) }, 'connected to libvirtd again');
          this.lostAt = undefined;
        },
        () => {
          if (this.current === current) this.current = undefined;
        },
      );
    }
    const { handle, opened } = this.current;
    try {
      await beforeDeadline(opened, until);
    } catch (err) {
      const why = err instanceof Overdue ? `no answer within ${formatMs(this.openTimeoutMs)}${this.calls.describe()}` : errorMessage(err);
      throw new EngineUnavailableError('libvirt', `libvirtd does not answer at ${this.options.uri} (${why}; ${what}); ${this.options.hint ?? 'start it with `make engines`'}`, { cause: err });
    }
    return handle;
  }

  /** Whether a connection on which a call just failed still answers (then the failure was the call's own). */
  private async answers(handle: H): Promise<boolean> {
    const until = Date.now() + this.openTimeoutMs;
    return beforeDeadline(this.call(handle, () => handle.connectGetHostname(), until), until).then(
      () => true,
      () => false,
    );
  }

  /** Drops a connection (once, whoever notices first); the next operation opens a new one. */
  private lose(handle: H, why: string): void {
    if (this.current?.handle !== handle) return;
    this.current = undefined;
    this.lostAt ??= Date.now();
    this.options.log.warn({ uri: this.options.uri, why }, 'lost the connection to libvirtd; a new one is opened at the next call');
    this.closeIfDropped(handle);
  }

  /** One native call on a connection, counted with it. */
  private async call<T>(handle: H, fn: () => Promise<T>, until: number): Promise<T> {
    this.out.set(handle, (this.out.get(handle) ?? 0) + 1);
    try {
      return await this.calls.run(fn, until);
    } finally {
      const left = (this.out.get(handle) ?? 1) - 1;
      if (left) this.out.set(handle, left);
      else this.out.delete(handle);
      this.closeIfDropped(handle);
    }
  }

  /**
   * A dropped connection is closed once no call is out on it: closing it
   * under a call of another thread would free what that call uses, and
   * closing a hung one would hang too. (An open that answered after its
   * time ran out is closed the same way: nobody uses that connection.)
   */
  private closeIfDropped(handle: H): void {
    if (this.current?.handle === handle || this.out.has(handle) || !this.opened.delete(handle)) return;
    void this.calls.run(() => handle.connectClose(), Date.now() + this.openTimeoutMs).catch(() => undefined);
  }

  /** The binding object as one operation sees it: every call is counted and takes a slot, and none starts once the operation is over. */
  private scoped(handle: H, scope: { over: boolean }, until: number): H {
    return new Proxy(handle, {
      get: (target, prop) => {
        const value: unknown = Reflect.get(target, prop);
        if (typeof value !== 'function') return value;
        return (...args: unknown[]) => {
          if (scope.over) return Promise.reject(new Error('the operation is over (timed out or failed)'));
          return this.call(handle, () => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args), until);
        };
      },
    });
  }
}

/** A deadline passed: an operation, an open, or the wait for a free slot. */
class Overdue extends Error {}

function beforeDeadline<T>(promise: Promise<T>, until: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const overdue = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Overdue('deadline passed')), Math.max(0, until - Date.now()));
  });
  return Promise.race([promise, overdue]).finally(() => clearTimeout(timer));
}

/**
 * The native calls out. Each one holds a libuv worker thread until libvirtd
 * answers, forever if libvirtd is stopped, and there are four of those
 * threads unless told otherwise. So at most `limit` run at once, and a slot
 * is freed when its call really returns, not when its operation gave up: a
 * hung libvirtd holds `limit` threads at most, never the daemon's I/O.
 */
class NativeCalls {
  private busy = 0;
  /** When each call still out started. */
  private readonly out = new Map<symbol, number>();
  /** Waiters in order; each takes a slot (true) unless its deadline has passed meanwhile. */
  private readonly waiting: (() => boolean)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(call: () => Promise<T>, until: number): Promise<T> {
    await this.acquire(until);
    const id = Symbol('call');
    this.out.set(id, Date.now());
    try {
      return await call();
    } finally {
      this.out.delete(id);
      this.release();
    }
  }

  /** The calls still out, for a message: ", 2 call(s) unanswered, the oldest for 45 s". */
  describe(): string {
    if (!this.out.size) return '';
    const oldest = Math.min(...this.out.values());
    return `, ${this.out.size} call(s) unanswered, the oldest for ${formatMs(Date.now() - oldest)}`;
  }

  private acquire(until: number): Promise<void> {
    if (this.busy < this.limit) {
      this.busy++;
      return Promise.resolve();
    }
    return new Promise<void>((resolve, reject) => {
      // A slot freed after the deadline (its timer not run yet on a busy loop) is not taken: the caller has given up.
      const grant = () => {
        clearTimeout(timer);
        if (Date.now() >= until) {
          reject(new Overdue('no free slot for a native call'));
          return false;
        }
        resolve();
        return true;
      };
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(grant), 1);
        reject(new Overdue('no free slot for a native call'));
      }, Math.max(0, until - Date.now()));
      this.waiting.push(grant);
    });
  }

  /** The slot goes to the next waiter still within its deadline, if any. */
  private release(): void {
    for (let next = this.waiting.shift(); next; next = this.waiting.shift()) if (next()) return;
    this.busy--;
  }
}
