import { open } from 'node:fs/promises';
import { plainText } from '../util/terminal.js';

/** How much of a console log is read for its last lines. */
const TAIL_BYTES = 16 * 1024;

/**
 * The last lines a VM printed on its serial console (kept in a log by
 * virtlogd, even when nobody is attached), cleaned of terminal escapes so
 * they read well in an error message. Empty when there is no log yet.
 * `elsewhere` reads the log where the VM's host keeps it when that host is
 * another (see Provider.consoleLogTail); it gives nothing for this host's.
 */
export async function consoleTail(path: string, lines = 25, elsewhere?: (maxBytes: number) => Promise<Buffer | undefined>): Promise<string> {
  const bytes = (await elsewhere?.(TAIL_BYTES)) ?? (await fileTail(path, TAIL_BYTES));
  if (!bytes) return '';
  return plainText(bytes.toString('utf8'))
    .split('\n')
    .map((l) => l.trimEnd())
    .filter(Boolean)
    .slice(-lines)
    .join('\n');
}

async function fileTail(path: string, maxBytes: number): Promise<Buffer | undefined> {
  let file;
  try {
    file = await open(path, 'r');
  } catch {
    return undefined;
  }
  try {
    const { size } = await file.stat();
    const length = Math.min(size, maxBytes);
    const buffer = Buffer.alloc(length);
    await file.read(buffer, 0, length, size - length);
    return buffer;
  } finally {
    await file.close();
  }
}
