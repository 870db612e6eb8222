import { z } from 'zod';

/** Parsing of the human units scenarios use: durations ("90m", "1h30m", "10s") and sizes ("512M", "2G"). */

const DURATION_PART = /(\d+(?:\.\d+)?)(ms|s|m|h)/g;
const DURATION_WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h))+$/;
const DURATION_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** Milliseconds of a duration string, or undefined if it is not one. */
export function parseDuration(text: string): number | undefined {
  const compact = text.replace(/\s+/g, '');
  if (!DURATION_WHOLE.test(compact)) return undefined;
  let total = 0;
  for (const match of compact.matchAll(DURATION_PART)) {
    total += Number(match[1]) * (DURATION_MS[match[2] as string] as number);
  }
  return Math.round(total);
}

const SIZE = /^(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B?)?$/i;
const SIZE_FACTOR: Record<string, number> = { '': 1, K: 1024, M: 1024 ** 2, G: 1024 ** 3, T: 1024 ** 4 };

/** Bytes of a size string ("512M", "2GiB", "1024"), or undefined if it is not one. Binary units. */
export function parseSize(text: string): number | undefined {
  const match = SIZE.exec(text.trim());
  if (!match) return undefined;
  const factor = SIZE_FACTOR[(match[2] ?? '').toUpperCase()];
  if (factor === undefined) return undefined;
  return Math.round(Number(match[1]) * factor);
}

/**
 * A duration field ("90m", "1h30m", "10s") parsed to milliseconds. `positive`
 * refuses zero; `numberIsMs` also takes a plain number of milliseconds
 * (configuration files).
 */
export function durationSchema(what: string, options: { positive?: boolean; numberIsMs?: boolean } = {}) {
  const valid = (ms: number | undefined) => ms !== undefined && (!options.positive || ms > 0);
  const message = `${what} must be a duration like "90m", "1h30m" or "45s"`;
  if (options.numberIsMs) {
    const toMs = (v: string | number) => (typeof v === 'number' ? v : parseDuration(v));
    return z
      .union([z.string(), z.number()])
      .refine((v) => valid(toMs(v)), { message })
      .transform((v) => toMs(v) as number);
  }
  return z
    .string()
    .refine((text) => valid(parseDuration(text)), { message })
    .transform((text) => parseDuration(text) as number);
}
