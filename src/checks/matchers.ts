import { z } from 'zod';

/**
 * Matchers in the spirit of Goss and InSpec. A bare scalar means "equals".
 * An object is a conjunction of its operators: `{ ge: 1, lt: 5 }`.
 *
 * Actual values are strings, numbers, booleans or lists of strings (group
 * members, resolved addresses, mount options). On a list, `contains` asks for
 * an element, `equals` compares as sets and `matches` wants any element to match.
 */

export type Scalar = string | number | boolean;
export type Matcher = Scalar | MatcherObject;
export interface MatcherObject {
  equals?: Scalar | Scalar[];
  contains?: Scalar | Scalar[];
  matches?: string;
  not?: Matcher;
  oneOf?: Scalar[];
  gt?: number;
  ge?: number;
  lt?: number;
  le?: number;
  allOf?: Matcher[];
  anyOf?: Matcher[];
}
export type Actual = string | number | boolean | string[] | undefined;

const scalar = z.union([z.string(), z.number(), z.boolean()]);
const regex = z.string().refine(
  (source) => {
    try {
      new RegExp(source);
      return true;
    } catch {
      return false;
    }
  },
  { message: 'not a valid regular expression' },
);

export const matcherSchema: z.ZodType<Matcher> = z.lazy(() =>
  z.union([
    scalar,
    z
      .strictObject({
        equals: z.union([scalar, z.array(scalar)]).optional(),
        contains: z.union([scalar, z.array(scalar)]).optional(),
        matches: regex.optional(),
        not: matcherSchema.optional(),
        oneOf: z.array(scalar).min(1).optional(),
        gt: z.number().optional(),
        ge: z.number().optional(),
        lt: z.number().optional(),
        le: z.number().optional(),
        allOf: z.array(matcherSchema).min(1).optional(),
        anyOf: z.array(matcherSchema).min(1).optional(),
      })
      .refine((m) => Object.keys(m).length > 0, { message: 'a matcher needs at least one operator (equals, contains, matches, not, oneOf, gt, ge, lt, le, allOf, anyOf)' }),
  ]),
);

export interface MatchResult {
  pass: boolean;
  /** Human description of what was expected, e.g. `contains "10.0.0.5"`. */
  expected: string;
}

export function match(matcher: Matcher, actual: Actual): MatchResult {
  return { pass: test(matcher, actual), expected: describe(matcher) };
}

export function describe(matcher: Matcher): string {
  if (typeof matcher !== 'object') return `= ${show(matcher)}`;
  const parts: string[] = [];
  const m = matcher;
  if (m.equals !== undefined) parts.push(`= ${show(m.equals)}`);
  if (m.contains !== undefined) parts.push(`contains ${show(m.contains)}`);
  if (m.matches !== undefined) parts.push(`matches /${m.matches}/`);
  if (m.not !== undefined) parts.push(`not (${describe(m.not)})`);
  if (m.oneOf !== undefined) parts.push(`one of ${show(m.oneOf)}`);
  if (m.gt !== undefined) parts.push(`> ${m.gt}`);
  if (m.ge !== undefined) parts.push(`>= ${m.ge}`);
  if (m.lt !== undefined) parts.push(`< ${m.lt}`);
  if (m.le !== undefined) parts.push(`<= ${m.le}`);
  if (m.allOf !== undefined) parts.push(`all of [${m.allOf.map(describe).join('; ')}]`);
  if (m.anyOf !== undefined) parts.push(`any of [${m.anyOf.map(describe).join('; ')}]`);
  return parts.join(' and ');
}

/** Renders an actual value the way reports show it. */
export function showActual(actual: Actual): string {
  if (actual === undefined) return '(none)';
  return show(actual);
}

function show(value: Scalar | Scalar[]): string {
  if (Array.isArray(value)) return `[${value.map((v) => show(v)).join(', ')}]`;
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function test(matcher: Matcher, actual: Actual): boolean {
  if (typeof matcher !== 'object') return equals(matcher, actual);
  const m = matcher;
  const checks: boolean[] = [];
  if (m.equals !== undefined) checks.push(equals(m.equals, actual));
  if (m.contains !== undefined) checks.push(contains(m.contains, actual));
  if (m.matches !== undefined) checks.push(matches(m.matches, actual));
  if (m.not !== undefined) checks.push(!test(m.not, actual));
  if (m.oneOf !== undefined) checks.push(m.oneOf.some((option) => equals(option, actual)));
  if (m.gt !== undefined) checks.push(compare(actual, (n) => n > (m.gt as number)));
  if (m.ge !== undefined) checks.push(compare(actual, (n) => n >= (m.ge as number)));
  if (m.lt !== undefined) checks.push(compare(actual, (n) => n < (m.lt as number)));
  if (m.le !== undefined) checks.push(compare(actual, (n) => n <= (m.le as number)));
  if (m.allOf !== undefined) checks.push(m.allOf.every((inner) => test(inner, actual)));
  if (m.anyOf !== undefined) checks.push(m.anyOf.some((inner) => test(inner, actual)));
  return checks.every(Boolean);
}

function scalarEquals(expected: Scalar, actual: Scalar): boolean {
  if (typeof expected === 'number' || typeof actual === 'number') {
    const a = toNumber(actual);
    const e = toNumber(expected);
    return a !== undefined && e !== undefined && a === e;
  }
  if (typeof expected === 'boolean' || typeof actual === 'boolean') {
    return String(expected) === String(actual);
  }
  return expected === actual;
}

function equals(expected: Scalar | Scalar[], actual: Actual): boolean {
  if (actual === undefined) return false;
  if (Array.isArray(actual)) {
    const wanted = Array.isArray(expected) ? expected : [expected];
    return (
      wanted.every((w) => actual.some((a) => scalarEquals(w, a))) &&
      actual.every((a) => wanted.some((w) => scalarEquals(w, a)))
    );
  }
  if (Array.isArray(expected)) return false;
  return scalarEquals(expected, actual);
}

function contains(expected: Scalar | Scalar[], actual: Actual): boolean {
  if (actual === undefined) return false;
  const wanted = Array.isArray(expected) ? expected : [expected];
  if (Array.isArray(actual)) return wanted.every((w) => actual.some((a) => scalarEquals(w, a)));
  const text = String(actual);
  return wanted.every((w) => text.includes(String(w)));
}

function matches(source: string, actual: Actual): boolean {
  if (actual === undefined) return false;
  const re = new RegExp(source, 'm');
  if (Array.isArray(actual)) return actual.some((a) => re.test(a));
  return re.test(String(actual));
}

function compare(actual: Actual, predicate: (n: number) => boolean): boolean {
  if (actual === undefined || Array.isArray(actual)) return false;
  const n = toNumber(actual);
  return n !== undefined && predicate(n);
}

function toNumber(value: Scalar): number | undefined {
  if (typeof value === 'number') return value;
  if (typeof value === 'boolean') return undefined;
  const trimmed = value.trim();
  if (trimmed === '') return undefined;
  const n = Number(trimmed);
  return Number.isFinite(n) ? n : undefined;
}
