import { ProbeError, type Assertion, type Observation, type ProbeFacts, type ProbeRecord, type ProbeVerb } from './check-kind.js';
import { match, showActual, type Actual, type Matcher } from './matchers.js';

/** Parses the probe's plain KEY=VALUE lines (values have no newline). */
export function parsePlain(stdout: string): Map<string, string> {
  const facts = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq > 0) facts.set(line.slice(0, eq), line.slice(eq + 1));
  }
  return facts;
}

/** An observation for the plan: `obs('read', path, 65536)`. */
export function obs(verb: ProbeVerb, ...args: (string | number)[]): Observation {
  return { verb, args };
}

/** The probe's answer for `key`; a missing one means the machine did not answer for this check. */
export function recordOf(facts: ProbeFacts, key: string): ProbeRecord {
  const record = facts.probe?.get(key);
  if (!record) throw new ProbeError('the machine returned no answer for this check');
  return record;
}

/** An answer the probe could give (ok, part or neg); `err` means nobody can decide, so the check is an error. */
export function answered(facts: ProbeFacts, key: string, what: string): ProbeRecord {
  const record = recordOf(facts, key);
  if (record.status === 'err') throw new ProbeError(`cannot ${what}: ${record.data.toString('utf8').trim() || 'the probe said nothing'}`);
  return record;
}

/**
 * The whole text of an answer that must be positive; a negative one is an
 * error naming `what`, and so is one cut at its limit: a table or database
 * read in part could hide exactly what the check looks for (a candidate can
 * pad /etc/passwd past the limit to hide an account).
 */
export function textOf(facts: ProbeFacts, key: string, what: string): string {
  const record = answered(facts, key, what);
  if (record.status === 'neg') throw new ProbeError(`cannot ${what}: ${record.data.toString('utf8').trim()}`);
  if (record.status === 'part') throw new ProbeError(`cannot ${what} whole: larger than the grader reads (${record.data.length} bytes)`);
  return record.data.toString('utf8');
}

/** A whole file's content as the probe read it, or undefined when it does not exist; a file cut at the limit is an error. */
export function fileText(facts: ProbeFacts, key: string, path: string): string | undefined {
  const record = answered(facts, key, `read ${path}`);
  if (record.status === 'part') throw new ProbeError(`cannot read ${path} whole: larger than the grader reads (${record.data.length} bytes)`);
  return record.status === 'neg' ? undefined : record.data.toString('utf8');
}

/** An assertion from a matcher; `name` says what was compared ("mode", "stdout"). */
export function assertMatch(name: string, matcher: Matcher, actual: Actual): Assertion {
  const result = match(matcher, actual);
  return { name, pass: result.pass, expected: `${name} ${result.expected}`, actual: `${name} ${showActual(actual)}` };
}

/** A yes/no assertion ("exists", "active"). */
export function assertFlag(name: string, expected: boolean, actual: boolean, actualText?: string): Assertion {
  return {
    name,
    pass: expected === actual,
    expected: expected ? name : `not ${name}`,
    actual: actualText ?? (actual ? name : `not ${name}`),
  };
}

/** Cuts long evidence so reports stay readable; says how much was cut. */
export function clip(text: string, max = 2000): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length - max} more characters)`;
}
