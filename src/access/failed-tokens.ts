import { isIPv6 } from 'node:net';
import { ExamlabError } from '../util/errors.js';

/** Too many refused tokens from one address (HTTP 429, with Retry-After). */
export class TooManyAttemptsError extends ExamlabError {
  constructor(
    message: string,
    /** Whole seconds until the address may try again. */
    readonly retryAfterSeconds: number,
  ) {
    super(message);
  }
}

export interface FailedTokenLimits {
  /** Refused tokens an address may send in one window; at this count its tokens are not checked until the window ends. */
  perAddress: number;
  windowMs: number;
}

export const DEFAULT_FAILED_TOKEN_LIMITS: FailedTokenLimits = { perAddress: 20, windowMs: 10 * 60_000 };

/** Addresses remembered at most: past this, windows that have ended are dropped, then the oldest. */
const MAX_ADDRESSES = 10_000;

/**
 * Where a client comes from, as counted: an IPv4 address (also when it
 * arrives mapped into IPv6), or the /64 of an IPv6 address, since one host
 * commonly holds a whole /64 and could otherwise count afresh from each.
 */
export function addressKey(address: string | undefined): string {
  if (!address) return 'unknown';
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (mapped) return mapped[1] as string;
  if (!isIPv6(address)) return address;
  const [head = '', tail = ''] = address.split('::', 2);
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const groups = [...left, ...Array<string>(Math.max(0, 8 - left.length - right.length)).fill('0'), ...right];
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '').toLowerCase()).join(':')}::/64`;
}

/**
 * Refused tokens counted per client address over a fixed window, for both
 * faces (HTTP API and SSH gateway): whoever guesses tokens guesses them on
 * either. Only refusals are counted, so a candidate's or a juror's normal
 * requests never come near the limit; an address at the limit is refused
 * without its token being checked until its window ends.
 */
export class FailedTokens {
  private readonly byAddress = new Map<string, { count: number; resetAt: number }>();

  constructor(
    readonly limits: FailedTokenLimits = DEFAULT_FAILED_TOKEN_LIMITS,
    private readonly now: () => number = Date.now,
  ) {}

  /** Refused tokens of this address in its current window. */
  count(address: string | undefined): number {
    const entry = this.byAddress.get(addressKey(address));
    return entry && entry.resetAt > this.now() ? entry.count : 0;
  }

  /** Throws TooManyAttemptsError while the address is at its limit. */
  check(address: string | undefined): void {
    const entry = this.byAddress.get(addressKey(address));
    const now = this.now();
    if (!entry || entry.resetAt <= now || entry.count < this.limits.perAddress) return;
    const seconds = Math.max(1, Math.ceil((entry.resetAt - now) / 1000));
    throw new TooManyAttemptsError(`too many refused tokens from ${addressKey(address)} (${entry.count} within ${Math.round(this.limits.windowMs / 1000)} s); try again in ${seconds} s`, seconds);
  }

  /** Records a refused token; returns the address's count in its window, this one included. */
  fail(address: string | undefined): number {
    const key = addressKey(address);
    const now = this.now();
    let entry = this.byAddress.get(key);
    if (!entry || entry.resetAt <= now) {
      this.byAddress.delete(key);
      if (this.byAddress.size >= MAX_ADDRESSES) this.prune(now);
      entry = { count: 0, resetAt: now + this.limits.windowMs };
      this.byAddress.set(key, entry);
    }
    entry.count += 1;
    return entry.count;
  }

  private prune(now: number): void {
    for (const [key, entry] of this.byAddress) if (entry.resetAt <= now) this.byAddress.delete(key);
    // Still full (a flood of distinct addresses): the oldest windows go first (a Map keeps insertion order).
    for (const key of this.byAddress.keys()) {
      if (this.byAddress.size < MAX_ADDRESSES) break;
      this.byAddress.delete(key);
    }
  }
}
