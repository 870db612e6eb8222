import { renderText, type TextContext } from '../util/template.js';
import type { Scenario } from './schema.js';

type Path = (string | number)[];

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
  return walk(scenario, [], {}) as Scenario;
}

/** `checks[2].stdout.matches`: the field, as an error names it. */
function where(path: Path): string {
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}
