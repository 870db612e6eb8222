import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { parseDocument, visit } from 'yaml';
import type { z } from 'zod';
import { InputError, errorMessage, type ErrorDetail } from '../util/errors.js';
import { CHECK_KINDS } from '../checks/index.js';
import { checkReferences, type LoadOptions } from './references.js';
import { placementError } from './render.js';

export type { LoadOptions } from './references.js';
import { scenarioSchema, type Scenario } from './schema.js';
import { byPosition, SourceFile, valueAt, type Path } from './source.js';

export interface LoadedScenario {
  scenario: Scenario;
  file: string;
  /** The exact text, kept with every lab so a result can always be traced to it. */
  text: string;
}

/**
 * What a trainer should know about a valid scenario: each `command` check
 * trusts the machine's own tools (its shell, its binaries), which the
 * candidate, root on the machine, can change.
 */
export function scenarioWarnings(loaded: LoadedScenario): ErrorDetail[] {
  const source = new SourceFile(loaded.file, loaded.text, (t, lineCounter) => parseDocument(t, { lineCounter }));
  const warnings = loaded.scenario.checks.flatMap((check, i) =>
    check.kind === 'command'
      ? [source.detail(['checks', i, 'kind'], 'trusts the machine\'s tools: a candidate who is root there can change what it reports; prefer a kind the grader observes itself (file, service, access, ...) where one fits')]
      : [],
  );
  // An ordinary roster name this scenario could not place would stop that candidate's exam at the roster: say so now.
  const refused = placementError(loaded.scenario, SAMPLE_CANDIDATE);
  const detail = refused?.details[0];
  if (refused && detail?.where) {
    const path = [...detail.where.matchAll(/([^.[\]]+)|\[(\d+)\]/g)].map((m) => (m[2] !== undefined ? Number(m[2]) : (m[1] as string)));
    warnings.push(source.detail(path, `a roster entry such as ${JSON.stringify(SAMPLE_CANDIDATE)} cannot be placed here, so such a roster would be refused: ${detail.message}`));
  }
  return warnings;
}

/** A name as rosters hold them: a space, an apostrophe, an accent. */
const SAMPLE_CANDIDATE = { id: 'c-001', name: "Zoé N'Diaye" };

/** Reads and validates a scenario file; throws InputError listing every problem. */
export async function loadScenarioFile(file: string, options: LoadOptions = {}): Promise<LoadedScenario> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InputError(`cannot read scenario ${file}: ${errorMessage(err)}`);
  }
  // Kept absolute: a lab records where its scenario is, and is reset or graded later from anywhere.
  const absolute = resolve(file);
  const baseDir = options.baseDir ?? dirname(absolute);
  return { scenario: parseScenario(text, file, { ...options, baseDir }), file: absolute, text };
}

/** Validates scenario text. `fileName` is only used in messages. */
export function parseScenario(text: string, fileName: string, options: LoadOptions = {}): Scenario {
  const source = new SourceFile(fileName, text, (t, lineCounter) =>
    parseDocument(t, { lineCounter, uniqueKeys: true, prettyErrors: false, strict: true }),
  );
  const syntax = source.doc.errors.map((e) => ({
    where: source.position(e.pos[0]),
    message: e.message.split('\n')[0] as string,
  }));
  if (syntax.length) throw invalid(fileName, syntax);

  const data = toData(source, fileName);
  const parsed = scenarioSchema.safeParse(data);
  const details: ErrorDetail[] = parsed.success ? [] : parsed.error.issues.flatMap((issue) => describeIssue(source, data, issue));
  // References are checked on the raw data too, so one run reports every problem of the file.
  details.push(...checkReferences(source, data, options));
  if (details.length || !parsed.success) throw invalid(fileName, dedupe(details));
  return parsed.data as Scenario;
}

/**
 * The document as plain data. An alias whose anchor comes later (or never)
 * and an alias bomb are only found here: they are problems of the file, at
 * the alias, not crashes.
 */
function toData(source: SourceFile, fileName: string): unknown {
  try {
    return source.doc.toJS({ maxAliasCount: 100 });
  } catch (err) {
    let offset = 0;
    const name = /: (\S+)$/.exec(errorMessage(err))?.[1];
    visit(source.doc, {
      Alias(_key, node) {
        if (name === undefined || node.source === name) {
          offset = node.range?.[0] ?? 0;
          return visit.BREAK;
        }
        return undefined;
      },
    });
    throw invalid(fileName, [{ where: source.position(offset), message: errorMessage(err).split('\n')[0] as string }]);
  }
}

function invalid(fileName: string, details: ErrorDetail[]): InputError {
  details.sort(byPosition);
  const count = details.length === 1 ? '1 problem' : `${details.length} problems`;
  return new InputError(`${fileName}: invalid scenario (${count})`, details);
}

function dedupe(details: ErrorDetail[]): ErrorDetail[] {
  const seen = new Set<string>();
  return details.filter((d) => {
    const key = `${d.where} ${d.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

const KIND_NAMES = CHECK_KINDS.map((k) => k.kind).join(', ');

/** Turns a zod issue into located, plain-spoken problems. */
function describeIssue(source: SourceFile, data: unknown, issue: z.core.$ZodIssue): ErrorDetail[] {
  const path = issue.path as Path;
  switch (issue.code) {
    case 'unrecognized_keys':
      return issue.keys.map((key) => source.detail(path, `unknown key "${key}"`, { key }));
    case 'invalid_type':
      if (valueAt(data, path) === undefined) return [source.detail(path, 'required')];
      return [source.detail(path, `expected ${issue.expected}, got ${describeValue(valueAt(data, path))}`)];
    case 'invalid_union': {
      const note = (issue as { note?: string }).note;
      const discriminator = (issue as { discriminator?: string }).discriminator;
      if (discriminator === 'kind' || note === 'No matching discriminator') {
        const kindPath = path.at(-1) === 'kind' ? path : [...path, 'kind'];
        const kind = valueAt(data, kindPath);
        const message = kind === undefined ? `required; one of ${KIND_NAMES}` : `unknown check kind "${String(kind)}"; known: ${KIND_NAMES}`;
        return [source.detail(kindPath, message)];
      }
      return [source.detail(path, issue.message)];
    }
    case 'invalid_value': {
      const options = issue.values.map((v) => JSON.stringify(v)).join(', ');
      if (valueAt(data, path) === undefined) return [source.detail(path, `required: one of ${options}`)];
      return [source.detail(path, `expected one of ${options}, got ${describeValue(valueAt(data, path))}`)];
    }
    default:
      return [source.detail(path, issue.message)];
  }
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${JSON.stringify(value)}`;
}
