import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EnvironmentError } from '../util/errors.js';
import { sha256 } from '../util/ids.js';

/**
 * The grader's own tool: the static examlab-probe, built by `make toolbox`
 * into build/toolbox/. Containers get it from a read-only volume; VMs get a
 * fresh copy for each grading run.
 */
export interface Toolbox {
  /** The folder it was read from. */
  dir: string;
  probe: Buffer;
  /** sha256 of the probe: names the volume that carries it. */
  hash: string;
}

export async function loadToolbox(dir: string): Promise<Toolbox> {
  const file = join(dir, 'examlab-probe');
  let probe: Buffer;
  try {
    probe = await readFile(file);
  } catch {
    throw new EnvironmentError(`the grader's probe is missing: ${file}; build it with \`make toolbox\``);
  }
  return { dir, probe, hash: sha256(probe) };
}
