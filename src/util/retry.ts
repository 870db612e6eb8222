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
