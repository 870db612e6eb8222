import { Agent } from 'node:http';
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

type CreateConnection = (options: object, done: (err: Error | null, stream?: Duplex) => void) => undefined;

/**
 * HTTP to a Docker engine on another host, through that host's sshd, for
 * the Docker client library (its `agent`): each request is a stream to
 * `docker system dial-stdio` there, opened on an SSH connection kept open.
 * (The library's own SSH support makes a connection, with its handshake,
 * for every request: about half a second each.) A connection carries at
 * most SESSIONS_PER_CONNECTION streams; more open another, closed again
 * once it has none. The host's key is pinned (HostConnection).
 */
export function sshEngineAgent(options: HostConnectionOptions): Agent {
  const connections: { host: HostConnection; streams: number }[] = [];
  const agent = new Agent({ keepAlive: false });
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
