import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:net';

/**
 * A stand-in for qemu-ga on a unix socket: speaks its JSON-lines protocol
 * (guest-sync-delimited with the 0xFF marker, guest-exec, guest-exec-status)
 * and runs the commands on this host with /bin/sh, so tests see real exits.
 * `stale` is written to each new client first, as a previous client's unread
 * answers would be.
 */
export async function startFakeGuestAgent(path: string, options: { stale?: string; silent?: boolean } = {}): Promise<{ server: Server; calls: { execute: string; arguments?: Record<string, unknown> }[] }> {
  const calls: { execute: string; arguments?: Record<string, unknown> }[] = [];
  const processes = new Map<number, { exited: boolean; exitcode?: number; out?: string; err?: string }>();
  let nextPid = 100;
  const server = createServer((socket) => {
    if (options.stale) socket.write(options.stale);
    let buffer = '';
    socket.on('data', (chunk: Buffer) => {
      buffer += chunk.toString();
      let newline: number;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const request = JSON.parse(buffer.slice(0, newline)) as { execute: string; arguments?: Record<string, unknown> };
        buffer = buffer.slice(newline + 1);
        calls.push(request);
        if (options.silent) continue;
        const reply = (value: unknown) => socket.write(`${JSON.stringify({ return: value })}\n`);
        const args = request.arguments ?? {};
        if (request.execute === 'guest-sync-delimited') {
          socket.write(Buffer.from([0xff]));
          reply(args.id);
        } else if (request.execute === 'guest-exec') {
          const pid = nextPid++;
          const state: { exited: boolean; exitcode?: number; out?: string; err?: string } = { exited: false };
          processes.set(pid, state);
          const child = execFile(args.path as string, args.arg as string[], { encoding: 'buffer' }, (error, stdout, stderr) => {
            Object.assign(state, { exited: true, exitcode: error ? (error.code as number) : 0, out: stdout.toString('base64'), err: stderr.toString('base64') });
          });
          child.stdin?.end(args['input-data'] ? Buffer.from(args['input-data'] as string, 'base64') : undefined);
          reply({ pid });
        } else if (request.execute === 'guest-exec-status') {
          const state = processes.get(args.pid as number);
          if (!state) socket.write(`${JSON.stringify({ error: { class: 'GenericError', desc: 'Invalid parameter pid' } })}\n`);
          else reply(state.exited ? { exited: true, exitcode: state.exitcode, 'out-data': state.out, 'err-data': state.err } : { exited: false });
        } else {
          socket.write(`${JSON.stringify({ error: { class: 'CommandNotFound', desc: `The command ${request.execute} has not been found` } })}\n`);
        }
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(path, resolve));
  return { server, calls };
}
