import { existsSync, readdirSync, statSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { InputError } from '../util/errors.js';

export interface LibraryEntry {
  /** What an exam names the scenario by: its file name without `.yaml`. */
  name: string;
  file: string;
}

/**
 * The scenarios an exam can be made from: examlab's own folder and the
 * trainers' folders the daemon is given. In each folder, a scenario is a
 * `NAME.yaml` at the top, or the `NAME/NAME.yaml` of a folder of its own
 * (what `examlab scenario new` makes, with its images and files beside it).
 * Read at each call: a scenario added to a folder is offered at once.
 */
export class ScenarioLibrary {
  private readonly folders: string[];

  constructor(folders: readonly string[]) {
    this.folders = [...new Set(folders.map((f) => resolve(f)))];
  }

  /** Every scenario, by name; a name found twice is refused, naming both files. */
  list(): LibraryEntry[] {
    const found = new Map<string, string>();
    for (const folder of this.folders) {
      for (const entry of scenariosIn(folder)) {
        const other = found.get(entry.name);
        if (other) throw new InputError(`two scenarios are named "${entry.name}": ${other} and ${entry.file}; rename one`);
        found.set(entry.name, entry.file);
      }
    }
    return [...found].map(([name, file]) => ({ name, file })).sort((a, b) => a.name.localeCompare(b.name));
  }

  names(): string[] {
    return this.list().map((e) => e.name);
  }

  /** The file of a scenario, or undefined when the library has none of that name. */
  fileOf(name: string): string | undefined {
    return this.list().find((e) => e.name === name)?.file;
  }
}

function scenariosIn(folder: string): LibraryEntry[] {
  if (!existsSync(folder)) return [];
  const entries: LibraryEntry[] = [];
  for (const item of readdirSync(folder, { withFileTypes: true })) {
    const path = join(folder, item.name);
    if (item.isFile() && item.name.endsWith('.yaml')) entries.push({ name: basename(item.name, '.yaml'), file: path });
    else if (item.isDirectory()) {
      const own = join(path, `${item.name}.yaml`);
      if (existsSync(own) && statSync(own).isFile()) entries.push({ name: item.name, file: own });
    }
  }
  return entries;
}
