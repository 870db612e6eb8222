import { readFileSync } from 'node:fs';
import { parseScenario, type LoadOptions } from '../../src/scenario/index.js';
import { InputError } from '../../src/util/errors.js';

/** The scenario of tests/fixtures/minimal.yaml, as text. */
export const MINIMAL_SCENARIO = readFileSync(new URL('../fixtures/minimal.yaml', import.meta.url), 'utf8');

/** Parses scenario text and returns its problems as `where: message` lines (empty when valid); other errors are thrown. */
export function scenarioProblems(text: string, fileName = 'sc.yaml', options: LoadOptions = {}): string[] {
  try {
    parseScenario(text, fileName, options);
    return [];
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    return err.details.map((d) => `${d.where}: ${d.message}`);
  }
}
