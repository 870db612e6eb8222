import { cpSync, existsSync, readdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { InputError } from '../util/errors.js';

/** The file of the template that is the scenario itself (renamed after the new id). */
const TEMPLATE_FILE = 'scenario.yaml';
const TEMPLATE_ID = 'mon-scenario';
const ID = /^[a-z0-9][a-z0-9._-]*$/;

/**
 * Starts a trainer's folder from the template: the scenario (renamed
 * `<id>.yaml`, with that id), an image of its own and a file it uploads.
 * Never writes into a folder that already has something in it.
 */
export function newScenarioFolder(templateDir: string, targetDir: string, id = basename(targetDir).toLowerCase()): string {
  if (!ID.test(id)) throw new InputError(`"${id}" cannot be a scenario id: use lowercase letters, digits, ".", "_" or "-" (give one with --id)`);
  if (existsSync(targetDir) && readdirSync(targetDir).length) throw new InputError(`${targetDir} is not empty: a new scenario starts in a new folder`);
  cpSync(templateDir, targetDir, { recursive: true });
  const file = join(targetDir, `${id}.yaml`);
  renameSync(join(targetDir, TEMPLATE_FILE), file);
  writeFileSync(file, readFileSync(file, 'utf8').replace(`\nid: ${TEMPLATE_ID}\n`, `\nid: ${id}\n`));
  return file;
}
