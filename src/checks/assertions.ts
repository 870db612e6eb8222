import { ProbeError, type Assertion, type FragmentOutput } from './check-kind.js';
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

export function requireFragment(output: FragmentOutput | undefined): FragmentOutput {
  if (!output) throw new ProbeError('the machine did not run this check');
  return output;
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
