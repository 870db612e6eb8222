import { Agent, type ClientRequest } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { HostConnection, type HostConnectionOptions } from '../../remote/index.js';

/**
 * Streams at once on one SSH connection. Each request to the engine is an
 * SSH session (an exec of `docker system dial-stdio`), some of them long (a
 * candidate's terminal relayed through the engine), and OpenSSH's sshd
 * refuses more than MaxSessions (10 by default) on one connection.
 */
const SESSIONS_PER_CONNECTION = 8;
/** Bound on opening a stream (the connection, when one is opened, and the session). */
const OPEN_TIMEOUT_MS = 20_000;
/** An idle stream is kept this long for the next request, then closed (while open it keeps the process alive). */
const IDLE_MS = 2_000;

type CreateConnection = (options: object, done: (err: Error | null, stream?: Duplex) => void) => undefined;

/**
 * HTTP to a Docker engine on another host, through that host's sshd, for
 * the Docker client library (its `agent`): requests go over streams to
 * `docker system dial-stdio` there, opened on an SSH connection kept open,
 * and a stream is kept (HTTP keep-alive) for the next request. The
 * library's own SSH support makes a connection, with its handshake, and
 * starts the Docker CLI there, for every request: see BENCHMARKS.md.
 * A connection carries at most SESSIONS_PER_CONNECTION streams; more open
 * another, closed again once it has none. The host's key is pinned
 * (HostConnection).
 */
export function sshEngineAgent(options: HostConnectionOptions): Agent {
  const connections: { host: HostConnection; streams: number }[] = [];
  // One idle stream is kept, no more: measured, each idle stream open on the connection slowed every request on it (8 ms a request with one, 60 ms with eight).
  const agent = new StreamAgent({ keepAlive: true, maxFreeSockets: 1 });
  const createConnection: CreateConnection = (_options, done) => {
    let slot = connections.find((c) => c.streams < SESSIONS_PER_CONNECTION);
    if (!slot) connections.push((slot = { host: new HostConnection({ connectTimeoutMs: OPEN_TIMEOUT_MS, ...options }), streams: 0 }));
    const chosen = slot;
    chosen.streams++;
    let released = false;
    const release = () => {
      if (released) return;
      released = true;
      chosen.streams--;
      // Extra connections go once idle; the first stays (it costs nothing idle: its socket does not hold the process).
      if (chosen.streams === 0 && connections[0] !== chosen) {
        connections.splice(connections.indexOf(chosen), 1);
        chosen.host.close();
      }
    };
    chosen.host.spawn(['docker', 'system', 'dial-stdio'], OPEN_TIMEOUT_MS).then(
      (stream) => {
        stream.once('close', release);
        stream.once('error', release);
        // The program there ended (the engine closed its side): the stream is of no more use, even idle.
        stream.once('exit', () => stream.destroy());
        const destroy = stream.destroy.bind(stream);
        stream.destroy = (err?: Error) => {
          release();
          return destroy(err);
        };
        done(null, stream);
      },
      (err: Error) => {
        release();
        done(err);
      },
    );
    return undefined;
  };
  Object.assign(agent, { createConnection });
  return agent;
}

/**
 * An HTTP agent whose sockets are SSH streams. Node's keep-alive hooks call
 * what a TCP socket has (`ref`, `unref`, `setKeepAlive`, `setTimeout`: the
 * agent sets no timeout): a stream gets
 * them as no-ops (its SSH connection's socket is what holds the process),
 * so the hooks' own bookkeeping still runs (their error listener is added
 * and removed). An idle stream is closed after IDLE_MS.
 */
class StreamAgent extends Agent {
  private readonly idle = new WeakMap<object, NodeJS.Timeout>();

  override keepSocketAlive(socket: Socket): boolean {
    asSocket(socket);
    const timer = setTimeout(() => socket.destroy(), IDLE_MS);
    timer.unref();
    this.idle.set(socket, timer);
    super.keepSocketAlive(socket);
    return true;
  }

  override reuseSocket(socket: Socket, request: ClientRequest): void {
    clearTimeout(this.idle.get(socket));
    this.idle.delete(socket);
    super.reuseSocket(asSocket(socket), request);
  }
}

/** A stream given the TCP socket methods Node's agent calls, as no-ops where the stream has none. */
function asSocket(stream: Duplex): Socket {
  const s = stream as Duplex & Partial<Record<'ref' | 'unref' | 'setKeepAlive' | 'setTimeout', () => unknown>>;
  for (const method of ['ref', 'unref', 'setKeepAlive', 'setTimeout'] as const) s[method] ??= () => s;
  return s as unknown as Socket;
}
