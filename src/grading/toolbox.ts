import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EnvironmentError } from '../util/errors.js';
import { sha256 } from '../util/ids.js';

/**
 * The grader's own tools, uploaded to a machine for each grading run: a
 * static busybox (Debian's busybox-static) and the static examlab-probe.
 * Built by `make toolbox` into build/toolbox/.
 */
export interface Toolbox {
  busybox: Buffer;
  probe: Buffer;
  /** sha256 of each, checked against what the machine reports it received. */
  hashes: { busybox: string; probe: string };
}

export async function loadToolbox(dir: string): Promise<Toolbox> {
  const read = async (name: string) => {
    try {
      return await readFile(join(dir, name));
    } catch {
      throw new EnvironmentError(`the grader toolbox is missing ${join(dir, name)}; build it with \`make toolbox\``);
    }
  };
  const [busybox, probe] = await Promise.all([read('busybox'), read('examlab-probe')]);
  return { busybox, probe, hashes: { busybox: sha256(busybox), probe: sha256(probe) } };
}
