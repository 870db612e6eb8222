import type { IncomingMessage, Server } from 'node:http';
import { STATUS_CODES } from 'node:http';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import { readCredential, type Authenticator, type Principal } from '../access/index.js';
import { CLOSE_MESSAGES, RECORDING_ID, type CastEvent, type LabShell, type LabShells, type Recordings, type ShellCloseReason } from '../terminal/index.js';
import { errorMessage, NotAllowedError, NotFoundError } from '../util/errors.js';
import { CANDIDATE_ID } from '../exams/index.js';
import { toHttpError } from './errors.js';
import { RequestError } from './route.js';

/** How long a browser's shell outlives its dropped WebSocket, waiting to be resumed. */
export const RESUME_MS = 60_000;
/** What a detached shell's output keeps for the resume, at most. */
const REPLAY_LIMIT = 1024 * 1024;
const MACHINE = /^[a-z0-9][a-z0-9-]{0,62}$/i;
const LIVE = /^\/api\/exams\/([0-9a-f]{12})\/candidates\/([^/]+)\/recordings\/([^/]+)\/live$/;

export interface SocketDeps {
  auth: Authenticator;
  shells: LabShells;
  recordings: Recordings;
  log: Logger;
  resumeMs?: number;
}

/** A browser's lab shell, with or without a WebSocket attached at the moment. */
interface BrowserSession {
  examId: string;
  candidateId: string;
  shell: LabShell;
  ws?: WebSocket;
  /** Output printed while no WebSocket was attached, replayed at the resume. */
  missed: Buffer[];
  missedBytes: number;
  timer?: NodeJS.Timeout;
}

/**
 * The daemon's WebSockets, on its HTTP server: a candidate's terminal
 * (`/api/me/terminal?machine=NAME[&resume=ID]`) and a staff member's live
 * watch of a recording. Only from the daemon's own pages (Origin), with the
 * session cookie (or a Bearer token, for tools).
 */
export class DaemonSockets {
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 1024 * 1024 });
  private readonly sessions = new Map<string, BrowserSession>();
  private readonly heartbeat: NodeJS.Timeout;

  constructor(private readonly deps: SocketDeps) {
    // A dead connection (a cable pulled) is noticed within a minute; the shell then waits for the resume.
    this.heartbeat = setInterval(() => {
      for (const ws of this.wss.clients) {
        const alive = ws as WebSocket & { examlabAlive?: boolean };
        if (alive.examlabAlive === false) {
          ws.terminate();
          continue;
        }
        alive.examlabAlive = false;
        ws.ping();
      }
    }, 20_000);
    this.heartbeat.unref();
  }

  attach(server: Server): void {
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      socket.on('error', () => socket.destroy());
      try {
        const url = new URL(req.url ?? '/', 'http://daemon');
        checkOrigin(req);
        if (url.pathname === '/api/me/terminal') return this.terminal(req, socket, head, url);
        const live = LIVE.exec(url.pathname);
        if (live) return this.watch(req, socket, head, live[1] as string, decodeURIComponent(live[2] as string), decodeURIComponent(live[3] as string));
        throw new NotFoundError(`no WebSocket at ${url.pathname}`);
      } catch (err) {
        refuse(socket, err);
      }
    });
  }

  /** Closes every WebSocket; the shells themselves are closed with the candidates' sessions. */
  close(): void {
    clearInterval(this.heartbeat);
    for (const session of this.sessions.values()) session.shell.close('ended');
    for (const ws of this.wss.clients) ws.terminate();
    this.wss.close();
  }

  private principal(req: IncomingMessage): Principal {
    return this.deps.auth.authenticate(readCredential(req.headers)?.token);
  }

  private terminal(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): void {
    const principal = this.principal(req);
    if (principal.kind !== 'candidate') throw new NotAllowedError('the terminal is for candidates, with their own token');
    const { examId, candidateId } = principal;
    const machine = url.searchParams.get('machine') ?? undefined;
    if (machine !== undefined && !MACHINE.test(machine)) throw new RequestError(`invalid query: machine: not a machine name`);
    const size = (name: string, max: number, fallback: number) => {
      const value = Number(url.searchParams.get(name) ?? fallback);
      return Number.isInteger(value) && value >= 2 && value <= max ? value : fallback;
    };
    // Their own lab, now: checked before the upgrade so a refusal is a plain HTTP answer.
    const chosen = this.deps.shells.check(examId, candidateId, machine).machine;
    const resume = url.searchParams.get('resume');
    const existing = resume ? this.sessions.get(resume) : undefined;
    const resumable = existing && existing.examId === examId && existing.candidateId === candidateId && existing.shell.machine === chosen && !existing.shell.closed ? existing : undefined;
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      watchAlive(ws);
      // Keys typed before the shell is open are kept for it, not lost.
      const early: [RawData, boolean][] = [];
      const keep = (data: RawData, isBinary: boolean) => void early.push([data, isBinary]);
      ws.on('message', keep);
      const attach = (session: BrowserSession, resumed: boolean) => {
        ws.off('message', keep);
        this.attachSocket(session, ws, resumed, early);
      };
      if (resumable) return attach(resumable, true);
      this.deps.shells
        .open({ examId, candidateId, machine: chosen, via: 'browser', pty: { term: 'xterm-256color', cols: size('cols', 500, 80), rows: size('rows', 200, 24) } })
        .then(
          (shell) => {
            const session: BrowserSession = { examId, candidateId, shell, missed: [], missedBytes: 0 };
            this.sessions.set(shell.id, session);
            shell.on('data', (d: Buffer) => this.output(session, d));
            shell.on('close', (reason: ShellCloseReason, message: string) => {
              clearTimeout(session.timer);
              this.sessions.delete(shell.id);
              if (session.ws) sendClosed(session.ws, reason, message);
            });
            if (ws.readyState === ws.OPEN) attach(session, false);
            else this.detach(session);
            shell.flow();
          },
          (err: unknown) => {
            this.deps.log.info({ exam: examId, candidate: candidateId, err: errorMessage(err) }, 'browser terminal refused');
            sendClosed(ws, 'unreachable', errorMessage(err));
          },
        );
    });
  }

  private attachSocket(session: BrowserSession, ws: WebSocket, resumed: boolean, early: [RawData, boolean][] = []): void {
    clearTimeout(session.timer);
    session.timer = undefined;
    // The same shell in a second tab: the first one lets go.
    if (session.ws && session.ws !== ws) session.ws.close(4000, 'opened elsewhere');
    session.ws = ws;
    ws.send(JSON.stringify({ type: 'session', id: session.shell.id, machine: session.shell.machine, resumed }));
    for (const chunk of session.missed) ws.send(chunk, { binary: true });
    session.missed = [];
    session.missedBytes = 0;
    const onMessage = (data: RawData, isBinary: boolean) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data as ArrayBuffer);
      if (isBinary) return session.shell.write(bytes);
      try {
        const message = JSON.parse(bytes.toString('utf8')) as { type?: string; cols?: unknown; rows?: unknown };
        if (message.type === 'resize' && isSize(message.cols, 500) && isSize(message.rows, 200)) session.shell.resize(message.cols, message.rows);
      } catch {
        // Not JSON: ignored, like any unknown control message.
      }
    };
    for (const [data, isBinary] of early) onMessage(data, isBinary);
    ws.on('message', onMessage);
    ws.on('close', () => {
      if (session.ws !== ws) return;
      session.ws = undefined;
      if (!session.shell.closed) this.detach(session);
    });
  }

  private detach(session: BrowserSession): void {
    clearTimeout(session.timer);
    session.timer = setTimeout(() => session.shell.close('ended'), this.deps.resumeMs ?? RESUME_MS);
    session.timer.unref();
  }

  private output(session: BrowserSession, data: Buffer): void {
    if (session.ws && session.ws.readyState === session.ws.OPEN) return session.ws.send(data, { binary: true });
    session.missed.push(data);
    session.missedBytes += data.length;
    while (session.missedBytes > REPLAY_LIMIT && session.missed.length > 1) session.missedBytes -= (session.missed.shift() as Buffer).length;
  }

  /** A jury member (or the operator) watches a recording, live if it is still being made; what they type is ignored. */
  private watch(req: IncomingMessage, socket: Duplex, head: Buffer, examId: string, candidateId: string, id: string): void {
    const principal = this.principal(req);
    if (principal.kind !== 'staff') throw new NotAllowedError('a candidate token only opens /api/me');
    if (!CANDIDATE_ID.test(candidateId) || !RECORDING_ID.test(id)) throw new NotFoundError(`no recording ${id} of ${candidateId}`);
    // Refused before the upgrade when there is no such recording.
    this.deps.recordings.castFile(examId, candidateId, id);
    this.wss.handleUpgrade(req, socket, head, (ws) => {
      watchAlive(ws);
      // Read and subscribed in one go: the recording writes synchronously, so nothing falls between.
      const current = this.deps.recordings.live(examId, candidateId, id);
      const { header, events } = this.deps.recordings.read(examId, candidateId, id);
      ws.send(JSON.stringify({ type: 'header', ...header }));
      // Output and resizes: what the screen showed (keystrokes stay in the .cast, for the replay).
      const shown = (event: CastEvent) => event[1] !== 'i';
      for (const event of events.filter(shown)) ws.send(JSON.stringify({ type: 'event', event }));
      if (!current) {
        ws.send(JSON.stringify({ type: 'closed' }));
        return ws.close(1000);
      }
      const onEvent = (event: CastEvent) => {
        if (shown(event)) ws.send(JSON.stringify({ type: 'event', event }));
      };
      const onEnd = () => {
        ws.send(JSON.stringify({ type: 'closed' }));
        ws.close(1000);
      };
      current.on('event', onEvent);
      current.once('end', onEnd);
      ws.on('close', () => {
        current.off('event', onEvent);
        current.off('end', onEnd);
      });
    });
  }
}

const isSize = (value: unknown, max: number): value is number => Number.isInteger(value) && (value as number) >= 2 && (value as number) <= max;

function watchAlive(ws: WebSocket): void {
  const alive = ws as WebSocket & { examlabAlive?: boolean };
  alive.examlabAlive = true;
  ws.on('pong', () => (alive.examlabAlive = true));
  ws.on('error', () => ws.terminate());
}

function sendClosed(ws: WebSocket, reason: ShellCloseReason, message = CLOSE_MESSAGES[reason]): void {
  if (ws.readyState !== ws.OPEN) return;
  ws.send(JSON.stringify({ type: 'closed', reason, message }));
  ws.close(1000);
}

/** Only the daemon's own pages open its WebSockets: a page elsewhere would ride the candidate's cookie. */
function checkOrigin(req: IncomingMessage): void {
  const origin = req.headers.origin;
  let host: string | undefined;
  try {
    host = origin ? new URL(origin).host : undefined;
  } catch {
    host = undefined;
  }
  if (!host || host !== req.headers.host) throw new NotAllowedError(`WebSockets open only from the daemon's own pages (Origin ${origin ?? 'missing'})`);
}

/** A refused upgrade: a plain HTTP answer with the API's error body. */
function refuse(socket: Duplex, err: unknown): void {
  const { status, body } = toHttpError(err);
  const text = JSON.stringify(body);
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`);
}
