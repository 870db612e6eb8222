import { InputError, type ErrorDetail } from '../util/errors.js';
import { findPlaceholders, renderText, type TextContext } from '../util/template.js';
import { CHECK_KINDS, fieldPattern } from '../checks/index.js';
import type { Scenario } from './schema.js';

type Path = (string | number)[];

/** Labels of letters, digits, "-" and "_" (a roster id may hold one; engines take it). */
const HOSTNAME = /^(?=.{1,253}$)[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?(?:\.[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?)*$/;
const STEP_LISTS = new Set(['setup', 'faults', 'solution', 'steps']);
const STEP_PATHS = new Set(['file', 'to', 'upload']);

/**
 * The scenario with one lab's values filled in, each escaped for where it
 * lands (see `src/util/template.ts`): the scripts of `run` steps and
 * `command` checks are shell (or PowerShell on a Windows machine), `matches`
 * is a regular expression, the paths of steps, checks and tmpfs are paths;
 * everything else (instructions, titles, names, addresses) is text.
 */
export function renderScenario(scenario: Scenario, values: ReadonlyMap<string, string>): Scenario {
  const shellOf = (machine: unknown): TextContext => (scenario.machines.find((m) => m.name === machine)?.shell === 'powershell' ? 'powershell' : 'sh');
  const contextOf = (path: Path, parent: Record<string, unknown>): TextContext => {
    const key = path[path.length - 1];
    const [section] = path;
    if (section === 'checks') {
      if (key === 'matches') return 'regex';
      if (path.length === 3 && key === 'run' && parent.kind === 'command') return parent.shell === 'powershell' ? 'powershell' : 'sh';
      if (path.length === 3 && key === 'path') return 'path';
      return 'text';
    }
    if (section === 'machines' && path[2] === 'tmpfs' && key === 'path') return 'path';
    // A step: the key's grandparent is a list of steps (setup, faults, solution, a pool option's steps).
    if (typeof path[path.length - 2] === 'number' && STEP_LISTS.has(String(path[path.length - 3])) && section !== 'checks') {
      if (key === 'run') return shellOf(parent.machine);
      if (STEP_PATHS.has(String(key))) return 'path';
    }
    return 'text';
  };
  const walk = (value: unknown, path: Path, parent: Record<string, unknown>): unknown => {
    if (typeof value === 'string') return renderText(value, values, contextOf(path, parent), where(path));
    if (Array.isArray(value)) return value.map((v, i) => walk(v, [...path, i], parent));
    if (value && typeof value === 'object') {
      const object = value as Record<string, unknown>;
      return Object.fromEntries(Object.entries(object).map(([k, v]) => [k, walk(v, [...path, k], object)]));
    }
    return value;
  };
  const rendered = walk(scenario, [], {}) as Scenario;
  rendered.machines.forEach((machine, i) => {
    const before = scenario.machines[i]?.hostname;
    if (before && findPlaceholders(before).length && machine.hostname !== undefined && !HOSTNAME.test(machine.hostname)) {
      const message = `${JSON.stringify(before)} gives ${JSON.stringify(machine.hostname)} with this lab's values, which is not a host name (letters, digits, "-" and "_", in dot-separated labels of at most 63)`;
      throw new InputError(`machines[${i}].hostname: ${message}`, [{ where: `machines[${i}].hostname`, message }]);
    }
  });
  rendered.checks.forEach((check, i) => refuseReshaped(scenario.checks[i] as Record<string, unknown>, check as Record<string, unknown>, `checks[${i}]`));
  return rendered;
}

/**
 * A field with a shape (a user name, a unit, a DNS name, a URL) that was
 * templated is held to that shape once rendered: a roster value cannot turn
 * `http://{{ candidate.id }}.lab/` into another host, or a user name into
 * an option.
 */
function refuseReshaped(before: Record<string, unknown>, after: Record<string, unknown>, where: string): void {
  const fields = CHECK_KINDS.find((k) => k.kind === before.kind)?.fields ?? {};
  for (const [key, value] of Object.entries(before)) {
    if (typeof value !== 'string' || !findPlaceholders(value).length) continue;
    const shape = fieldPattern(fields[key] as never);
    const text = after[key] as string;
    if (shape && !shape.re.test(text)) {
      const names = [...new Set(findPlaceholders(value).map((p) => `{{ ${p.name} }}`))].join(', ');
      const message = `${JSON.stringify(value)} gives ${JSON.stringify(text)} with this lab's values of ${names}, which is not allowed here: ${shape.message}`;
      throw new InputError(`${where}.${key}: ${message}`, [{ where: `${where}.${key}`, message }]);
    }
  }
}

/** `checks[2].stdout.matches`: the field, as an error names it. */
function where(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

/**
 * Whether each roster entry's id and name can be placed everywhere the
 * scenario uses them (a name with "/" in a path, a name with a space inside
 * `…` in a script): found when the roster is given, not when that
 * candidate's lab is built. Lab facts and variables stand in as plain words.
 */
export function rosterProblems(scenario: Scenario, roster: readonly { id: string; name: string }[], source = 'candidates'): ErrorDetail[] {
  const problems: ErrorDetail[] = [];
  roster.forEach((entry, i) => {
    const err = placementError(scenario, entry);
    if (err) problems.push({ where: `${source}[${i}] ${err.message.includes('{{ candidate.id }}') ? 'id' : 'name'}`, message: `the scenario cannot use this value: ${err.message}` });
  });
  return problems;
}

/** Why the scenario cannot place this candidate's id or name (its `details[0].where` is the field), or nothing. */
export function placementError(scenario: Scenario, entry: { id: string; name: string }): InputError | undefined {
  try {
    renderScenario(
      scenario,
      new PlainDefaults([
        ['candidate.id', entry.id],
        ['candidate.name', entry.name],
      ]),
    );
    return undefined;
  } catch (err) {
    if (err instanceof InputError) return err;
    throw err;
  }
}

/** Values where every name the scenario may use has one: a plain word unless given. */
class PlainDefaults extends Map<string, string> {
  override get(name: string): string {
    return super.get(name) ?? 'x';
  }
}
