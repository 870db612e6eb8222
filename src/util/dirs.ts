import { mkdirSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { EnvironmentError, errorMessage, StorageError } from './errors.js';
import { storageError } from './storage.js';

/**
 * `mkdir -p` for paths that come from people (the data directory): one
 * level at a time, so a place where no directory can be made (under /proc,
 * say, where Node's own recursive mkdirSync loops forever) fails at once,
 * naming the directory and why. New directories get `mode`.
 */
export function makeDirs(path: string, mode = 0o700): void {
  const target = resolve(path);
  const missing: string[] = [];
  for (let dir = target; ; dir = dirname(dir)) {
    let isDir: boolean | undefined;
    try {
      isDir = statSync(dir).isDirectory();
    } catch {
      isDir = undefined;
    }
    if (isDir === false) throw new EnvironmentError(`cannot make the directory ${target}: ${dir} is not a directory`);
    if (isDir) break;
    missing.unshift(dir);
    if (dirname(dir) === dir) break;
  }
  for (const dir of missing) {
    try {
      mkdirSync(dir, { mode });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST' && statSync(dir).isDirectory()) continue;
      const full = storageError(err, dirname(dir));
      if (full instanceof StorageError) throw full;
      throw new EnvironmentError(`cannot make the directory ${dir}: ${errorMessage(err)}`);
    }
  }
}
