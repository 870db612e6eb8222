import { createConnection, type Socket } from 'node:net';

/** A connection to a unix socket of this host (a VM's console or guest agent), once it is made; an error, or no answer within `timeoutMs`, rejects. */
export function connectUnixSocket(path: string, timeoutMs?: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection(path);
    const timer = timeoutMs === undefined ? undefined : setTimeout(() => socket.destroy(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
    socket.once('connect', () => (clearTimeout(timer), resolve(socket)));
    socket.once('error', (err) => (clearTimeout(timer), reject(err)));
  });
}
