import { spawn } from 'node:child_process';
import { timingSafeEqual } from 'node:crypto';
import { connect } from 'node:net';
import ssh2 from 'ssh2';
import type { Connection, ServerChannel } from 'ssh2';
import { generateKeyPair } from '../../src/remote/ssh-client.js';

const { Server, utils } = ssh2;

export interface FakeSshd {
  port: number;
  /** Its public host key, as in known_hosts. */
  hostKey: string;
  /** The one client key it lets in (OpenSSH private key). */
  clientKey: string;
  /** Connections that logged in, so far. */
  logins: number;
  /** Command lines it was given, as sshd gives them to the shell. */
  commands: string[];
  /** Ends every connection at once (sshd restarted, a network cut). */
  dropAll(): void;
  /** While on, channel openings are never answered (a hung host: the TCP connection stays). */
  hang(on: boolean): void;
  close(): Promise<void>;
}

/**
 * A stand-in for a host's OpenSSH on 127.0.0.1: public-key login for one
 * key, `exec` run as sshd runs it (the user's shell, `/bin/sh -c LINE`,
 * on this host, so quoting and exits are real), signal requests,
 * direct-tcpip (to this host's ports) and OpenSSH's direct-streamlocal (to
 * this host's unix sockets). Commands get `env` (the test's own by default).
 */
export async function startFakeSshd(options: { env?: NodeJS.ProcessEnv } = {}): Promise<FakeSshd> {
  const hostPair = generateKeyPair('fake-sshd');
  const clientPair = generateKeyPair('examlab');
  const allowed = utils.parseKey(clientPair.publicKey);
  if (allowed instanceof Error) throw allowed;
  const live = new Set<Connection>();
  let hanging = false;
  const state = { logins: 0, commands: [] as string[] };

  const server = new Server({ hostKeys: [hostPair.privateKey] }, (client) => {
    live.add(client);
    client.on('close', () => live.delete(client));
    client.on('error', () => undefined);
    client.on('authentication', (ctx) => {
      if (ctx.method !== 'publickey') return ctx.reject(['publickey']);
      const blob = allowed.getPublicSSH();
      if (ctx.key.algo !== allowed.type || ctx.key.data.length !== blob.length || !timingSafeEqual(ctx.key.data, blob)) return ctx.reject();
      if (ctx.signature && ctx.blob && !allowed.verify(ctx.blob, ctx.signature, ctx.hashAlgo)) return ctx.reject();
      ctx.accept();
    });
    client.on('ready', () => {
      state.logins++;
      client.on('session', (accept) => {
        if (hanging) return;
        const session = accept();
        let child: ReturnType<typeof spawn> | undefined;
        session.on('signal', (acceptSignal, _reject, info) => {
          acceptSignal?.();
          child?.kill(`SIG${info.name}` as NodeJS.Signals);
        });
        session.on('exec', (acceptExec, _reject, info) => {
          state.commands.push(info.command);
          const channel: ServerChannel = acceptExec();
          child = spawn('/bin/sh', ['-c', info.command], { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
          channel.pipe(child.stdin as NodeJS.WritableStream);
          child.stdin?.on('error', () => undefined);
          child.stdout?.pipe(channel, { end: false });
          child.stderr?.pipe(channel.stderr);
          child.on('close', (code, signal) => {
            if (signal) channel.exit(signal.replace(/^SIG/, ''), false, '');
            else channel.exit(code ?? 255);
            channel.end();
          });
        });
      });
      client.on('tcpip', (accept, reject, info) => !hanging && join(connect(info.destPort, info.destIP), accept, reject));
      client.on('openssh.streamlocal', (accept, reject, info) => !hanging && join(connect(info.socketPath), accept, reject));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    hostKey: hostPair.publicKey,
    clientKey: clientPair.privateKey,
    get logins() {
      return state.logins;
    },
    commands: state.commands,
    dropAll() {
      for (const c of live) c.end();
    },
    hang(on) {
      hanging = on;
    },
    close() {
      for (const c of live) c.end();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A forwarding channel joined to the socket it asked for, once that connects; refused if it does not. */
function join(socket: ReturnType<typeof connect>, accept: () => ServerChannel, reject?: () => void): void {
  socket.once('error', () => reject?.());
  socket.once('connect', () => {
    const channel = accept();
    socket.removeAllListeners('error');
    socket.on('error', () => channel.destroy());
    channel.pipe(socket).pipe(channel);
  });
}
