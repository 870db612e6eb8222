import { open } from 'node:fs/promises';
import { plainText } from '../util/terminal.js';

/**
 * The last lines a VM printed on its serial console (kept in a log by
 * virtlogd, even when nobody is attached), cleaned of terminal escapes so
 * they read well in an error message. Empty when there is no log yet.
 */
export async function consoleTail(path: string, lines = 25): Promise<string> {
  let file;
  try {
    file = await open(path, 'r');
  } catch {
    return '';
  }
  try {
    const { size } = await file.stat();
    const length = Math.min(size, 16 * 1024);
    const buffer = Buffer.alloc(length);
    await file.read(buffer, 0, length, size - length);
    return plainText(buffer.toString('utf8'))
      .split('\n')
      .map((l) => l.trimEnd())
      .filter(Boolean)
      .slice(-lines)
      .join('\n');
  } finally {
    await file.close();
  }
}
