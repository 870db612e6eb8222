import { statfs } from 'node:fs/promises';
import { DISK_RESERVE } from '../labs/index.js';
import { errorMessage } from '../util/errors.js';
import { formatBytes } from '../util/units.js';

/** Free and total bytes of the filesystem a path is on. */
export type DiskSpace = { freeBytes: number; totalBytes: number };
export type DiskReader = (path: string) => Promise<DiskSpace>;

export const readDiskSpace: DiskReader = async (path) => {
  const s = await statfs(path);
  return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
};

/** Below this many times the reserve, the daemon warns that space is running low. */
const WARN_FACTOR = 2;

export interface DiskCheck {
  /** False once free space is under the reserve: /readyz fails, and the operator is told. */
  ok: boolean;
  /** Under twice the reserve: said in the log before it runs out. */
  low: boolean;
  detail: string;
}

/**
 * The data directory's filesystem keeps a reserve for the store (every
 * state change of every candidate is a write): a candidate's disk filler, or
 * a room of labs, on the same filesystem must not take it. Labs are not the
 * store's to stop; the daemon says so, early, where an operator looks.
 */
export async function checkDataDisk(dir: string, reserveBytes = DISK_RESERVE, read: DiskReader = readDiskSpace): Promise<DiskCheck> {
  let space: DiskSpace;
  try {
    space = await read(dir);
  } catch (err) {
    return { ok: false, low: true, detail: `cannot read the free space of ${dir}: ${errorMessage(err)}` };
  }
  const gib = formatBytes;
  const ok = space.freeBytes >= reserveBytes;
  const low = space.freeBytes < reserveBytes * WARN_FACTOR;
  const state = !ok ? `below the reserve of ${gib(reserveBytes)}: free space now, or the store may stop taking writes` : low ? `running low (the reserve is ${gib(reserveBytes)})` : `reserve ${gib(reserveBytes)}`;
  return { ok, low, detail: `${gib(space.freeBytes)} free of ${gib(space.totalBytes)} on ${dir}; ${state}` };
}
