import { existsSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server as TcpServer, type Socket } from 'node:net';
import type { Logger } from 'pino';
import ssh2 from 'ssh2';
import type { AuthContext, Connection, PseudoTtyInfo, ServerChannel, Session } from 'ssh2';
import { addressKey, TooManyAttemptsError, type Authenticator } from '../access/index.js';
import { errorMessage } from '../util/errors.js';
import { writeFileWhole } from '../util/storage.js';
import type { ExamMetrics } from '../exams/index.js';
import { fingerprint, generateKeyPair } from '../remote/index.js';
import type { SessionRegistry } from '../access/index.js';
import type { LabShell, LabShells, PtyRequest, ShellCloseReason } from '../terminal/index.js';

const { Server, utils } = ssh2;

export interface GatewayDeps {
  auth: Authenticator;
  shells: LabShells;
  sessions: SessionRegistry;
  metrics: ExamMetrics;
  log: Logger;
  /** The gateway's own host key (OpenSSH private key). */
  hostKey: string;
  /** Connections that have not logged in yet: how many, and for how long. */
  unauthenticated?: UnauthenticatedLimits;
}

export interface UnauthenticatedLimits {
  /** From one client address (an IPv6 client by its /64); more are closed at once. */
  perAddress: number;
  /** From all addresses together. */
  total: number;
  /** A connection not logged in by then is closed. */
  timeoutMs: number;
}

export const DEFAULT_UNAUTHENTICATED: UnauthenticatedLimits = { perAddress: 10, total: 200, timeoutMs: 30_000 };

/** The pause before a refused login answers: doubled for each unknown token the address sent in its window, up to the last. */
export const LOGIN_PAUSE_MS = { first: 500, max: 8_000 };

/** A TCP connection that has not logged in yet. */
interface Pending {
  socket: Socket;
  address: string;
  deadline: NodeJS.Timeout;
}

interface Caller {
  examId: string;
  candidateId: string;
  /** The machine asked for with `candidate+machine`; the first login machine otherwise. */
  machine?: string;
}

/** Loads the gateway's host key from the data directory, making it at first start. */
export function gatewayHostKey(file: string): string {
  // Whole or not at all: a key cut short by a full disk would not read at the next start.
  if (!existsSync(file)) writeFileWhole(file, generateKeyPair('examlab-gateway').privateKey);
  return readFileSync(file, 'utf8');
}

export function hostKeyFingerprint(privateKey: string): string {
  const parsed = utils.parseKey(privateKey);
  if (parsed instanceof Error) throw parsed;
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  return fingerprint(key.getPublicSSH());
}

/**
 * The candidates' only way into their lab: an SSH server in the daemon.
 * `ssh -p PORT alice@HOST` with alice's access token as the password opens
 * a shell on alice's lab machine, as the scenario's login user, and
 * nowhere else. No port forwarding, agent, X11 or subsystems: the gateway
 * reaches every lab, the candidate only theirs. Sessions end when the
 * candidate's access is cut (freeze, revoke, reset, new token).
 */
export class SshGateway {
  /** The SSH protocol only: sockets are accepted by `tcp` and handed over once admitted. */
  private readonly server: InstanceType<typeof Server>;
  private readonly tcp: TcpServer;
  private readonly limits: UnauthenticatedLimits;
  /** Connections not logged in yet, by "address port" of the client. */
  private readonly pending = new Map<string, Pending>();
  private readonly pendingByAddress = new Map<string, number>();

  constructor(private readonly deps: GatewayDeps) {
    this.limits = deps.unauthenticated ?? DEFAULT_UNAUTHENTICATED;
    this.server = new Server({ hostKeys: [deps.hostKey] }, (client, info) => this.onClient(client, `${info.ip} ${info.port}`));
    this.server.on('error', (err: Error) => deps.log.error({ err: err.message }, 'gateway error'));
    this.tcp = createServer((socket) => this.admit(socket));
    this.tcp.on('error', (err: Error) => deps.log.error({ err: err.message }, 'gateway error'));
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.tcp.once('error', reject);
      this.tcp.listen(port, host, () => {
        this.tcp.off('error', reject);
        resolve(this.tcp.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    this.deps.sessions.closeAll();
    for (const p of this.pending.values()) p.socket.destroy();
    return new Promise((resolve) => this.tcp.close(() => resolve()));
  }

  /**
   * A connection that has not logged in holds a socket and the SSH
   * protocol's state: before any SSH byte is read, one over the address's
   * or the gateway's limit is closed, and every other one gets a deadline
   * to log in (a client that connects and says nothing, or stalls the key
   * exchange, would otherwise hold them for ever).
   */
  private admit(socket: Socket): void {
    const { remoteAddress, remotePort } = socket;
    if (!remoteAddress) return void socket.destroy();
    const address = addressKey(remoteAddress);
    const fromAddress = this.pendingByAddress.get(address) ?? 0;
    if (fromAddress >= this.limits.perAddress || this.pending.size >= this.limits.total) {
      this.deps.log.debug({ address, fromAddress, total: this.pending.size }, 'gateway connection refused: too many not logged in');
      this.deps.metrics.error('access');
      return void socket.destroy();
    }
    const id = `${remoteAddress} ${remotePort}`;
    const deadline = setTimeout(() => {
      this.deps.log.info({ address }, `gateway connection closed: not logged in within ${Math.round(this.limits.timeoutMs / 1000)} s`);
      socket.destroy();
    }, this.limits.timeoutMs);
    this.pending.set(id, { socket, address, deadline });
    this.pendingByAddress.set(address, fromAddress + 1);
    socket.once('close', () => this.loggedInOrGone(id));
    this.server.injectSocket(socket);
  }

  /** The connection no longer counts as unauthenticated: it logged in, or it closed. */
  private loggedInOrGone(id: string): void {
    const p = this.pending.get(id);
    if (!p) return;
    clearTimeout(p.deadline);
    this.pending.delete(id);
    const left = (this.pendingByAddress.get(p.address) ?? 1) - 1;
    if (left > 0) this.pendingByAddress.set(p.address, left);
    else this.pendingByAddress.delete(p.address);
  }

  private onClient(client: Connection, id: string): void {
    let caller: Caller | undefined;
    const from = id.slice(0, id.lastIndexOf(' '));
    client.on('error', (err) => this.deps.log.debug({ err: err.message }, 'gateway client error'));
    client.on('authentication', (ctx) => {
      if (ctx.method === 'password') return this.authenticate(ctx, ctx.password, from, (c) => (caller = c));
      if (ctx.method === 'keyboard-interactive') {
        return ctx.prompt([{ prompt: 'Access token: ', echo: false }], 'examlab', 'Type the access token on your exam card.', (answers) =>
          this.authenticate(ctx, answers[0] ?? '', from, (c) => (caller = c)),
        );
      }
      ctx.reject(['password', 'keyboard-interactive']);
    });
    client.on('ready', () => {
      this.loggedInOrGone(id);
      const who = caller as Caller;
      // The login holds the door: cut with the candidate's shells (a new token must not reuse it).
      const unregister = this.deps.sessions.register(who.examId, who.candidateId, () => client.end(), { counted: false });
      client.on('close', unregister);
      client.on('session', (accept) => this.onSession(accept(), who));
      // The gateway can reach every lab: nothing but sessions goes through it.
      client.on('tcpip', (_accept, reject) => reject());
      client.on('openssh.streamlocal', (_accept, reject) => reject());
      client.on('request', (_accept, reject) => reject?.());
    });
  }

  private authenticate(ctx: AuthContext, token: string, from: string, accept: (caller: Caller) => void): void {
    const [user, machine] = ctx.username.split('+', 2) as [string, string | undefined];
    try {
      const { examId, candidateId } = this.deps.auth.candidate(token, from);
      if (candidateId.toLowerCase() !== user.toLowerCase()) throw new Error(`token of ${candidateId} used as ${user}`);
      accept({ examId, candidateId, machine });
      ctx.accept();
    } catch (err) {
      this.deps.metrics.error('access');
      this.deps.log.info({ user: ctx.username, address: addressKey(from), reason: errorMessage(err) }, 'gateway login refused');
      // A pause per refusal, growing with the address's unknown tokens: guessing gets slower and slower.
      const failures = this.deps.auth.failures.count(from);
      const pause = err instanceof TooManyAttemptsError ? LOGIN_PAUSE_MS.max : Math.min(LOGIN_PAUSE_MS.max, LOGIN_PAUSE_MS.first * 2 ** Math.max(0, failures - 1));
      setTimeout(() => ctx.reject(['password', 'keyboard-interactive']), pause).unref();
    }
  }

  private onSession(session: Session, who: Caller): void {
    let pty: PseudoTtyInfo | undefined;
    let shell: LabShell | undefined;
    session.on('pty', (accept, _reject, info) => {
      pty = info;
      accept?.();
    });
    session.on('window-change', (accept, _reject, info) => {
      shell?.resize(info.cols, info.rows, info.width, info.height);
      accept?.();
    });
    for (const refused of ['env', 'x11', 'auth-agent', 'signal', 'subsystem', 'sftp']) session.on(refused, (_accept: unknown, reject?: () => void) => reject?.());
    session.on('shell', (accept) => this.open(accept(), who, pty, undefined, (s) => (shell = s)));
    session.on('exec', (accept, _reject, info) => this.open(accept(), who, pty, info.command, (s) => (shell = s)));
  }

  /** Connects the candidate's channel to a lab shell on their machine (the shared LabShell: access checked again, recorded). */
  private open(channel: ServerChannel, who: Caller, pty: PseudoTtyInfo | undefined, command: string | undefined, onShell: (shell: LabShell) => void): void {
    const refuse = (message: string) => {
      channel.stderr.write(`examlab: ${message}\r\n`);
      channel.exit(1);
      channel.end();
    };
    let opening: Promise<LabShell>;
    try {
      opening = this.deps.shells.open({
        examId: who.examId,
        candidateId: who.candidateId,
        machine: who.machine,
        via: 'ssh',
        pty: pty ? { term: pty.term, cols: pty.cols, rows: pty.rows, width: pty.width, height: pty.height, modes: pty.modes as PtyRequest['modes'] } : undefined,
        command,
      });
    } catch (err) {
      return refuse(errorMessage(err));
    }
    opening.then(
      (shell) => {
        onShell(shell);
        channel.on('data', (d: Buffer) => shell.write(d));
        channel.on('end', () => shell.end());
        shell.on('data', (d: Buffer) => channel.write(d));
        shell.on('stderr', (d: Buffer) => channel.stderr.write(d));
        shell.on('exit', (code: number) => channel.exit(code));
        // Ended by hand on close, after the exit status: an early end would close the channel first.
        shell.on('close', (reason: ShellCloseReason, message: string) => {
          if (reason !== 'ended') channel.stderr.write(`\r\nexamlab: ${message}\r\n`);
          channel.end();
        });
        channel.on('close', () => shell.close());
        shell.flow();
      },
      (err: unknown) => refuse(errorMessage(err)),
    );
  }
}
