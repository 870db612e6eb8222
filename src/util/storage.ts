import { existsSync, ftruncateSync, renameSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import { errorMessage, StorageError, StorageFullError } from './errors.js';
import { formatBytes } from './units.js';

/**
 * Below this much free space on the data directory's filesystem, the store
 * takes no write at all (util/database.ts): every state change is refused
 * whole and early, the same way every time, rather than some passing and
 * some not as SQLite reuses its journal's room; and what is left keeps room
 * for SQLite's own journal and checkpoints and for the audit anchor's line
 * after each commit.
 */
export const STORE_FLOOR_BYTES = 8 * 1024 ** 2;

export interface FreeSpace {
  freeBytes: number;
  totalBytes: number;
}

/** Free and total bytes of the filesystem `path` is on (its nearest existing folder); undefined when it cannot be read. */
export function freeSpace(path: string): FreeSpace | undefined {
  let at = path;
  while (!existsSync(at) && dirname(at) !== at) at = dirname(at);
  try {
    const s = statfsSync(at);
    return { freeBytes: s.bavail * s.bsize, totalBytes: s.blocks * s.bsize };
  } catch {
    return undefined;
  }
}

/** The system's and SQLite's words for a full disk (or a full quota). */
const FULL_CODES = new Set(['SQLITE_FULL', 'ENOSPC', 'EDQUOT']);
/** Errors of the disk itself; with less than the floor free they are a full disk too (SQLite cannot even map its shared memory then). */
const IO_CODES = /^(SQLITE_IOERR(_[A-Z]+)?|EIO)$/;

/**
 * The one mapping of a failed write (or read) in the data directory to
 * examlab's error: a full disk (SQLITE_FULL, ENOSPC, EDQUOT, or an I/O
 * error with less than the floor free) is a StorageFullError saying how
 * much is free and where; another I/O error a StorageError. Any other
 * error is given back unchanged.
 */
export function storageError(err: unknown, dir: string): unknown {
  if (err instanceof StorageError) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code !== 'string' || (!FULL_CODES.has(code) && !IO_CODES.test(code))) return err;
  const space = freeSpace(dir);
  const details = [{ where: dir, message: `${code}: ${errorMessage(err)}` }];
  if (FULL_CODES.has(code) || (space && space.freeBytes < STORE_FLOOR_BYTES)) return new StorageFullError(fullMessage(dir, space), details, { cause: err });
  return new StorageError(`cannot write to the data directory ${dir}: ${errorMessage(err)}${space ? ` (${spaceText(space)})` : ''}`, details, { cause: err });
}

/** The store's own refusal under the floor, before SQLite is asked. */
export function belowFloorError(dir: string, space: FreeSpace): StorageFullError {
  return new StorageFullError(fullMessage(dir, space, STORE_FLOOR_BYTES), [{ where: dir, message: `under ${formatBytes(STORE_FLOOR_BYTES)} free: the store takes no write` }]);
}

function fullMessage(dir: string, space: FreeSpace | undefined, floorBytes?: number): string {
  const kept = floorBytes ? `; the store keeps ${formatBytes(floorBytes)}` : '';
  return `the data directory's filesystem is full (${space ? spaceText(space) : 'free space unknown'}, at ${dir}${kept}): nothing was saved; free space on it`;
}

function spaceText(space: FreeSpace): string {
  return `${formatBytes(space.freeBytes)} free of ${formatBytes(space.totalBytes)}`;
}

/**
 * Appends all of `data` to the file open on `fd` (in append mode) whose
 * length is `size`, or nothing: a write cut short (a full disk lets part of
 * it through) is taken back, so the file never ends with half a line.
 * Throws the mapped error (see storageError).
 */
export function appendWhole(fd: number, data: Buffer, size: number, dir: string): void {
  let written = 0;
  try {
    while (written < data.length) written += writeSync(fd, data, written, data.length - written);
  } catch (err) {
    if (written > 0) {
      try {
        ftruncateSync(fd, size);
      } catch {
        // Shrinking a file needs no room; if even that fails the reader drops the unfinished last line.
      }
    }
    throw storageError(err, dir);
  }
}

/**
 * Writes a whole file, or leaves the one there unchanged: written beside
 * it, then renamed over it. A full disk never leaves a file cut short (a
 * key that no longer reads, a recording's description gone). Throws the
 * mapped error (see storageError).
 */
export function writeFileWhole(file: string, data: string | Buffer, mode = 0o600): void {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    writeFileSync(temporary, data, { mode });
    renameSync(temporary, file);
  } catch (err) {
    rmSync(temporary, { force: true });
    throw storageError(err, dirname(file));
  }
}
