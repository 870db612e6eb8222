import type { Clock } from '../../src/util/retry.js';

/**
 * A clock that moves only when told to, or when someone sleeps on it: a
 * sleep returns at once, having advanced the time. Retry delays and
 * deadlines are then exact and cost nothing.
 */
export class ManualClock implements Clock {
  /** Every sleep asked for, in order. */
  readonly sleeps: number[] = [];

  constructor(private time = Date.parse('2026-03-02T08:00:00.000Z')) {}

  now(): number {
    return this.time;
  }

  iso(): string {
    return new Date(this.time).toISOString();
  }

  advance(ms: number): void {
    this.time += ms;
  }

  async sleep(ms: number): Promise<void> {
    this.sleeps.push(ms);
    this.time += ms;
  }
}
