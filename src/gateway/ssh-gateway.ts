import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import ssh2 from 'ssh2';
import type { AuthContext, Connection, PseudoTtyInfo, ServerChannel, Session } from 'ssh2';
import type { Authenticator } from '../access/index.js';
import { errorMessage } from '../util/errors.js';
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
}

interface Caller {
  examId: string;
  candidateId: string;
  /** The machine asked for with `candidate+machine`; the first login machine otherwise. */
  machine?: string;
}

/** Loads the gateway's host key from the data directory, making it at first start. */
export function gatewayHostKey(file: string): string {
  if (!existsSync(file)) writeFileSync(file, generateKeyPair('examlab-gateway').privateKey, { mode: 0o600 });
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
  private readonly server: InstanceType<typeof Server>;

  constructor(private readonly deps: GatewayDeps) {
    this.server = new Server({ hostKeys: [deps.hostKey] }, (client) => this.onClient(client));
    this.server.on('error', (err: Error) => deps.log.error({ err: err.message }, 'gateway error'));
  }

  listen(port: number, host: string): Promise<AddressInfo> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, host, () => {
        this.server.off('error', reject);
        resolve(this.server.address() as AddressInfo);
      });
    });
  }

  close(): Promise<void> {
    this.deps.sessions.closeAll();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }

  private onClient(client: Connection): void {
    let caller: Caller | undefined;
    client.on('error', (err) => this.deps.log.debug({ err: err.message }, 'gateway client error'));
    client.on('authentication', (ctx) => {
      if (ctx.method === 'password') return this.authenticate(ctx, ctx.password, (c) => (caller = c));
      if (ctx.method === 'keyboard-interactive') {
        return ctx.prompt([{ prompt: 'Access token: ', echo: false }], 'examlab', 'Type the access token on your exam card.', (answers) =>
          this.authenticate(ctx, answers[0] ?? '', (c) => (caller = c)),
        );
      }
      ctx.reject(['password', 'keyboard-interactive']);
    });
    client.on('ready', () => {
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

  private authenticate(ctx: AuthContext, token: string, accept: (caller: Caller) => void): void {
    const [user, machine] = ctx.username.split('+', 2) as [string, string | undefined];
    try {
      const { examId, candidateId } = this.deps.auth.candidate(token);
      if (candidateId.toLowerCase() !== user.toLowerCase()) throw new Error(`token of ${candidateId} used as ${user}`);
      accept({ examId, candidateId, machine });
      ctx.accept();
    } catch (err) {
      this.deps.metrics.error('access');
      this.deps.log.info({ user: ctx.username, reason: errorMessage(err) }, 'gateway login refused');
      // A pause per failure makes guessing tokens slower still.
      setTimeout(() => ctx.reject(['password', 'keyboard-interactive']), 500).unref();
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
