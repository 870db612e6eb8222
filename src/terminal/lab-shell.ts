import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import ssh2 from 'ssh2';
import type { ClientChannel } from 'ssh2';
import { actorOf, type CutReason, type SessionRegistry } from '../access/index.js';
import type { AuditLog } from '../audit/index.js';
import type { ExamService } from '../exams/index.js';
import { fingerprint, openTunnel } from '../remote/index.js';
import { EnvironmentError, errorMessage, StorageError, StorageFullError } from '../util/errors.js';
import { withTimeout } from '../util/retry.js';
import type { Recording, Recordings, SessionVia } from './recordings.js';

const { Client } = ssh2;

/** Why a lab shell closed: its access was cut, the shell ended, the lab does not answer, or something broke. */
export type ShellCloseReason = CutReason | 'unreachable' | 'error';

/** What the candidate is told when a shell closes (the pages say it in their own language, by reason). */
export const CLOSE_MESSAGES: Record<ShellCloseReason, string> = {
  'time-up': 'time is up: your exam is over',
  ended: 'the session is over',
  revoked: 'your access has been withdrawn; ask the exam supervisor',
  reset: 'your lab is being reset: open the terminal again in a minute',
  unreachable: 'your lab machine does not answer; tell the exam supervisor',
  error: 'the session broke off; open it again',
};

/** The lab does not answer (HTTP 503, SSH: a message on stderr). */
export class LabUnreachableError extends EnvironmentError {}

/** A session that could not be recorded (the data directory full) is not opened: every session is on the record. */
export class SessionNotRecordedError extends StorageFullError {}

/** What the candidate reads when their session cannot be recorded; the operator's log has the cause. */
export const NOT_RECORDED_MESSAGE = 'your session cannot be recorded right now (the exam server has no disk space left): tell the exam supervisor, your lab keeps running';

export interface PtyRequest {
  term: string;
  cols: number;
  rows: number;
  width?: number;
  height?: number;
  modes?: Record<string, number | undefined>;
}

export interface ShellRequest {
  examId: string;
  candidateId: string;
  /** The machine asked for; the first login machine otherwise. */
  machine?: string;
  via: SessionVia;
  /** A terminal, or none (an SSH exec without -t). */
  pty?: PtyRequest;
  /** A command instead of the login shell (SSH exec). */
  command?: string;
}

export interface LabShellDeps {
  exams: Pick<ExamService, 'labTarget'>;
  sessions: SessionRegistry;
  audit: AuditLog;
  recordings: Recordings;
  metrics: { error(kind: string): void };
  log: Logger;
  /** Told of each session refused because the store refused its record (the data directory full). */
  refused?: (examId: string, candidateId: string, err: StorageError) => void;
}

/**
 * One candidate's shell on one machine of their own lab, as their login
 * user, whichever way they came (the SSH gateway, the browser terminal).
 * Recorded as asciicast v2; cut with the candidate's other sessions.
 * Events: `data` (output bytes), `stderr` (bytes, exec without a terminal),
 * `exit` (status), `close` (reason, message): once, last; delivered from
 * `flow()` on, so that none is lost before the consumer listens.
 */
export class LabShell extends EventEmitter {
  private reason?: ShellCloseReason;
  private exitCode?: number;
  /** Events held until the consumer has its listeners on (`flow`): a quick command may end before. */
  private held: [string, unknown[]][] | undefined = [];

  constructor(
    readonly request: ShellRequest & { machine: string },
    readonly recording: Recording,
    private readonly channel: ClientChannel,
    private readonly finish: () => void,
    private readonly touch: () => void,
  ) {
    super();
    channel.on('data', (d: Buffer) => {
      recording.output(d);
      this.out('data', d);
    });
    channel.stderr.on('data', (d: Buffer) => {
      recording.output(d);
      this.out('stderr', d);
    });
    channel.on('exit', (code: number | null) => {
      this.exitCode = code ?? 255;
      this.out('exit', this.exitCode);
    });
    // ssh2 closes a channel once its output has been read, not its stderr: that is read to the end first.
    channel.on('close', () => {
      if (channel.stderr.readableEnded || channel.stderr.destroyed) this.close('ended');
      else channel.stderr.once('end', () => this.close('ended'));
    });
  }

  /** Starts delivering events, those held so far first; call once the listeners are on. */
  flow(): void {
    const held = this.held ?? [];
    this.held = undefined;
    for (const [event, args] of held) this.emit(event, ...args);
  }

  private out(event: string, ...args: unknown[]): void {
    if (this.held) this.held.push([event, args]);
    else this.emit(event, ...args);
  }

  get id(): string {
    return this.recording.id;
  }

  get machine(): string {
    return this.request.machine;
  }

  get closed(): boolean {
    return this.reason !== undefined;
  }

  /** Keystrokes (or an exec's input). */
  write(data: Buffer): void {
    if (this.closed) return;
    this.recording.input(data);
    this.touch();
    this.channel.write(data);
  }

  /** No more input (an exec's stdin closed). */
  end(): void {
    if (!this.closed) this.channel.end();
  }

  resize(cols: number, rows: number, width = 0, height = 0): void {
    if (this.closed) return;
    this.recording.resize(cols, rows);
    this.channel.setWindow(rows, cols, height, width);
  }

  /** Ends the shell (idempotent); `close` is emitted with the reason. */
  close(reason: ShellCloseReason = 'ended'): void {
    if (this.closed) return;
    this.reason = reason;
    this.channel.close();
    this.finish();
    this.out('close', reason, CLOSE_MESSAGES[reason]);
  }
}

/**
 * Opens candidates' lab shells: the access rules checked again for every
 * session (their own lab, running, not revoked, exam not over), the SSH
 * connection to the machine as the login user, the recording, the audit
 * records, the registration that lets a cut end it.
 */
export class LabShells {
  /** Connections to lab machines still open: their close is recorded before the store closes. */
  private readonly upstreams = new Set<ssh2.Client>();

  constructor(private readonly deps: LabShellDeps) {}

  /** Ends every connection to a lab machine still open and waits (at most `ms`) until each has closed and said so in the audit log. */
  async closeAll(ms: number): Promise<void> {
    const closed = [...this.upstreams].map((upstream) => new Promise<void>((resolve) => upstream.once('close', () => resolve()).end()));
    await withTimeout(Promise.all(closed), ms, 'the connections to lab machines to close').catch((err: unknown) => this.deps.log.warn({ err: errorMessage(err), open: this.upstreams.size }, 'lab connections still open at shutdown'));
  }

  /** Whether the candidate may open this machine now; throws the refusal (403/404/409) otherwise. */
  check(examId: string, candidateId: string, machine: string | undefined): { machine: string } {
    return { machine: this.deps.exams.labTarget(examId, candidateId, machine).machine };
  }

  async open(request: ShellRequest): Promise<LabShell> {
    const { examId, candidateId } = request;
    // Checked again per session: access may have been cut since the login.
    const lab = this.deps.exams.labTarget(examId, candidateId, request.machine);
    const actor = actorOf({ kind: 'candidate', examId, candidateId });
    const log = this.deps.log.child({ exam: examId, candidate: candidateId, machine: lab.machine, via: request.via });
    const sock = await openTunnel(lab.target, lab.machine).catch((err: unknown) => {
      log.warn({ err: errorMessage(err) }, 'cannot reach the lab through its engine');
      this.deps.metrics.error('gateway');
      throw new LabUnreachableError(`your lab machine ${lab.machine} does not answer; tell the exam supervisor`);
    });
    const upstream = new Client();
    const started = Date.now();
    let recordingId: string | undefined;
    const notRecorded = (err: unknown): unknown => {
      if (!(err instanceof StorageError)) return err;
      log.error({ err: err.message }, 'candidate session refused: it cannot be recorded');
      this.deps.metrics.error('gateway');
      this.deps.refused?.(examId, candidateId, err);
      return new SessionNotRecordedError(NOT_RECORDED_MESSAGE, err.details, { cause: err });
    };
    try {
      this.deps.audit.append({ actor, action: 'lab.session.open', examId, candidateId, labId: lab.lab.id, detail: { machine: lab.machine, via: request.via, command: request.command?.slice(0, 200) } });
    } catch (err) {
      sock?.destroy();
      throw notRecorded(err);
    }
    this.upstreams.add(upstream);
    upstream.on('close', () => {
      this.upstreams.delete(upstream);
      // An event of a socket: the record waits for the store if it must, it never throws here.
      this.deps.audit.appendLater({ actor, action: 'lab.session.close', examId, candidateId, labId: lab.lab.id, detail: { machine: lab.machine, via: request.via, recording: recordingId, seconds: Math.round((Date.now() - started) / 1000) } });
    });
    return new Promise<LabShell>((resolve, reject) => {
      let shell: LabShell | undefined;
      upstream.on('error', (err) => {
        if (shell) return shell.close('error');
        log.warn({ err: err.message }, 'cannot reach the lab');
        this.deps.metrics.error('gateway');
        reject(new LabUnreachableError(`your lab machine ${lab.machine} does not answer; tell the exam supervisor`));
      });
      upstream.on('ready', () => {
        const done = (err: Error | undefined, channel: ClientChannel) => {
          if (err) {
            upstream.end();
            return reject(new LabUnreachableError(`cannot open a session on ${lab.machine}: ${err.message}`));
          }
          const pty = request.pty;
          let recording: Recording;
          try {
            recording = this.deps.recordings.start({ examId, candidateId, machine: lab.machine, via: request.via, cols: pty?.cols ?? 80, rows: pty?.rows ?? 24, term: pty?.term ?? 'dumb' });
          } catch (startErr) {
            channel.close();
            upstream.end();
            return reject(notRecorded(startErr));
          }
          recordingId = recording.id;
          let unregister = () => {};
          shell = new LabShell(
            { ...request, machine: lab.machine },
            recording,
            channel,
            () => {
              unregister();
              recording.end();
              upstream.end();
            },
            () => this.deps.sessions.touch(examId, candidateId),
          );
          const opened = shell;
          unregister = this.deps.sessions.register(examId, candidateId, (reason) => opened.close(reason));
          log.info({ lab: lab.lab.id, exec: request.command !== undefined, recording: recording.id }, 'candidate session opened');
          resolve(opened);
        };
        const pty = request.pty;
        const window = pty ? { term: pty.term, rows: pty.rows, cols: pty.cols, width: pty.width ?? 0, height: pty.height ?? 0, modes: pty.modes } : false;
        if (request.command !== undefined) upstream.exec(request.command, { pty: window }, done);
        else upstream.shell(window, done);
      });
      const expected = lab.target.hostKey;
      upstream.connect({
        sock,
        host: lab.target.host,
        port: lab.target.port ?? 22,
        username: lab.target.username,
        privateKey: lab.target.privateKey,
        readyTimeout: 15_000,
        keepaliveInterval: 15_000,
        hostVerifier: (key: Buffer) => !expected || fingerprint(key) === expected,
      });
    }).catch((err: unknown) => {
      upstream.end();
      throw err instanceof LabUnreachableError || err instanceof SessionNotRecordedError ? err : new LabUnreachableError(errorMessage(err));
    });
  }
}
