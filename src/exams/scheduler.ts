import type { Logger } from 'pino';
import { errorMessage } from '../util/errors.js';
import type { ExamStore } from './exam-store.js';
import type { Clock } from '../util/retry.js';
import type { ExamService } from './exam-service.js';
import { HEARTBEAT_KEY } from './reconciler.js';

/**
 * The server-side clock: one tick a second starts the exams whose time has
 * come, ends the candidates whose deadline has passed and writes the
 * heartbeat that tells a restarted daemon how long it was away. Deadlines
 * live in the store, so nothing is lost with the process.
 */
export class Scheduler {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly deps: { service: ExamService; exams: ExamStore; clock: Clock; log: Logger; tickMs: number },
  ) {}

  start(): void {
    if (this.timer) return;
    this.timer = setInterval(() => this.tick(), this.deps.tickMs);
  }

  tick(): void {
    const now = this.deps.clock.now();
    try {
      this.deps.exams.setState(HEARTBEAT_KEY, new Date(now).toISOString());
      this.deps.service.tick(now);
    } catch (err) {
      this.deps.log.error({ err: errorMessage(err) }, 'scheduler tick failed');
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
