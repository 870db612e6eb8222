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

/** A size for people: "512 B", "12.0 KiB", "40.5 MiB", "2.0 GiB". */
export function formatBytes(bytes: number): string {
  const units: [number, string][] = [
    [1024 ** 3, 'GiB'],
    [1024 ** 2, 'MiB'],
    [1024, 'KiB'],
  ];
  for (const [factor, unit] of units) if (Math.abs(bytes) >= factor) return `${(bytes / factor).toFixed(1)} ${unit}`;
  return `${bytes} B`;
}

/** A size field ("2G", "512M", "2GiB") parsed to bytes; a plain number is bytes. */
export function sizeSchema(what: string) {
  const toBytes = (v: string | number) => (typeof v === 'number' ? (Number.isInteger(v) && v >= 0 ? v : undefined) : parseSize(v));
  return z
    .union([z.string(), z.number()])
    .refine((v) => toBytes(v) !== undefined, { message: `${what} must be a size like "2G", "512M" or a number of bytes` })
    .transform((v) => toBytes(v) as number);
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
