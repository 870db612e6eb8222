import type { Logger } from 'pino';
import { SYSTEM, type AuditLog } from '../audit/index.js';
import { errorMessage, StorageError } from '../util/errors.js';
import type { ExamStore } from './exam-store.js';
import type { Clock } from '../util/retry.js';
import type { ExamService } from './exam-service.js';
import type { LabPipeline } from './lab-pipeline.js';
import { HEARTBEAT_KEY } from './reconciler.js';

export interface SchedulerDeps {
  service: ExamService;
  exams: ExamStore;
  pipeline: LabPipeline;
  audit: AuditLog;
  clock: Clock;
  log: Logger;
  tickMs: number;
}

/** A period while the store refused writes (its data directory full): since when, why, whose sessions it refused. */
interface Refusal {
  since: number;
  problem: string;
  lastSaid: number;
  sessions: Map<string, { examId: string; candidateId: string; refused: number }>;
}

/** While the store refuses writes, the log says so again this often. */
const REMIND_MS = 60_000;

/**
 * The server-side clock: one tick a second starts the exams whose time has
 * come, ends the candidates whose deadline has passed and writes the
 * heartbeat that tells a restarted daemon how long it was away (even while
 * the store refuses other writes, when SQLite can). Deadlines live in the
 * store, so nothing is lost with the process.
 *
 * While the store refuses writes (its data directory full), the clock
 * still runs: a candidate whose deadline passes is cut off at once (their
 * sessions closed, their token refused), and their end, like every other
 * change the store refused, is written by a later tick once it takes
 * writes again; the pipeline's refused work is then done again. The
 * period is recorded when it is over (`daemon.store.refused`).
 */
export class Scheduler {
  private timer: NodeJS.Timeout | undefined;
  private refusal?: Refusal;

  constructor(private readonly deps: SchedulerDeps) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.deps.tickMs);
  }

  tick(): void {
    const now = this.deps.clock.now();
    let refused: StorageError | undefined;
    try {
      // Kept even while the store refuses other writes: a restart then counts only the time the daemon was really away.
      this.deps.exams.setState(HEARTBEAT_KEY, new Date(now).toISOString(), { evenWhenFull: true });
      refused = this.deps.exams.refusal();
    } catch (err) {
      if (!(err instanceof StorageError)) return this.failed(err);
      refused = err;
    }
    try {
      this.deps.service.tick(now);
    } catch (err) {
      if (!(err instanceof StorageError)) this.failed(err);
      else refused ??= err;
    }
    if (refused) {
      this.storeRefused(refused, now);
      return;
    }
    if (this.refusal && !this.storeBack(this.refusal, now)) return;
    try {
      this.deps.audit.appendHeld();
      this.deps.pipeline.resumeRefused();
    } catch (err) {
      this.failed(err);
    }
  }

  /** A candidate's session was refused because the store could not record it. */
  sessionRefused(examId: string, candidateId: string, err: StorageError): void {
    const refusal = this.storeRefused(err, this.deps.clock.now());
    const key = `${examId}/${candidateId}`;
    const seen = refusal.sessions.get(key) ?? { examId, candidateId, refused: 0 };
    seen.refused++;
    refusal.sessions.set(key, seen);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  private failed(err: unknown): void {
    this.deps.log.error({ err: errorMessage(err) }, 'scheduler tick failed');
  }

  private storeRefused(err: StorageError, now: number): Refusal {
    if (!this.refusal) {
      this.refusal = { since: now, problem: err.message, lastSaid: now, sessions: new Map() };
      this.deps.log.error(
        { err: err.message, details: err.details },
        'the store refuses writes: state changes wait (refused over the API with 507). Deadlines still cut access; ends, gradings and the rest are written once it takes writes again, by itself',
      );
    } else if (now - this.refusal.lastSaid >= REMIND_MS) {
      this.refusal.lastSaid = now;
      this.deps.log.error({ err: err.message, seconds: Math.round((now - this.refusal.since) / 1000) }, 'the store still refuses writes');
    }
    return this.refusal;
  }

  /** The store takes writes again: the period goes on the record (who was refused a session, for the operator to extend if fair). */
  private storeBack(refusal: Refusal, now: number): boolean {
    const detail = {
      from: new Date(refusal.since).toISOString(),
      to: new Date(now).toISOString(),
      seconds: Math.round((now - refusal.since) / 1000),
      problem: refusal.problem,
      sessionsRefused: [...refusal.sessions.values()],
    };
    try {
      this.deps.audit.append({ actor: SYSTEM, action: 'daemon.store.refused', detail });
    } catch (err) {
      if (err instanceof StorageError) return false;
      throw err;
    }
    this.refusal = undefined;
    this.deps.log.warn(detail, 'the store takes writes again: what it refused is being written');
    return true;
  }
}
