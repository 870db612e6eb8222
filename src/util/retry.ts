import { TimeoutError, errorMessage } from './errors.js';

/** Time source, injectable so waits can be tested without sleeping. */
export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const systemClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export interface RetryOptions {
  /** What is awaited, for the timeout message ("SSH on machine pc"). */
  what: string;
  timeoutMs: number;
  intervalMs?: number;
  clock?: Clock;
}

/**
 * Calls `attempt` until it returns a value accepted by `done`, or until the
 * timeout. Errors thrown by `attempt` count as "not yet"; the last one is kept
 * in the timeout message so the reason is never lost.
 */
export async function retryUntil<T>(
  attempt: () => Promise<T>,
  done: (value: T) => boolean,
  options: RetryOptions,
): Promise<T> {
  const clock = options.clock ?? systemClock;
  const interval = options.intervalMs ?? 250;
  const deadline = clock.now() + options.timeoutMs;
  let lastProblem = 'no attempt finished';
  for (;;) {
    try {
      const value = await attempt();
      if (done(value)) return value;
      lastProblem = `last answer: ${JSON.stringify(value)}`;
    } catch (err) {
      lastProblem = errorMessage(err);
    }
    if (clock.now() + interval > deadline) {
      throw new TimeoutError(`timed out after ${formatMs(options.timeoutMs)} waiting for ${options.what} (${lastProblem})`);
    }
    await clock.sleep(interval);
  }
}

/** Rejects with a TimeoutError naming `what` if `promise` takes longer than `ms`. */
export async function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`timed out after ${formatMs(ms)}: ${what}`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  return Number.isInteger(s) ? `${s} s` : `${s.toFixed(1)} s`;
}

export interface AttemptOptions {
  /** Attempts in all, counted from 1. */
  attempts: number;
  /** The number of the first attempt here (attempts already made, before a restart for instance, count). */
  first?: number;
  /** The pause after failed attempt `n`, before the next. */
  delayMs: (attempt: number) => number;
  /** Whether this failure may be tried again; when not, it is rethrown at once. */
  retryable?: (err: unknown, attempt: number) => boolean;
  /** Told of every failure, and whether another attempt follows. */
  onFailure?: (err: unknown, attempt: number, willRetry: boolean) => void;
  clock?: Clock;
}

/** Runs `attempt` until it succeeds or the attempts run out (the last error is thrown). */
export async function retryAttempts<T>(attempt: (n: number) => Promise<T>, options: AttemptOptions): Promise<T> {
  const clock = options.clock ?? systemClock;
  for (let n = options.first ?? 1; ; n++) {
    try {
      return await attempt(n);
    } catch (err) {
      const again = n < options.attempts && (options.retryable?.(err, n) ?? true);
      options.onFailure?.(err, n, again);
      if (!again) throw err;
      await clock.sleep(options.delayMs(n));
    }
  }
}
