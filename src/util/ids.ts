import { createHash, randomBytes } from 'node:crypto';

/** A short random id, lowercase hex: lab ids, run ids. */
export function newId(bytes = 6): string {
  return randomBytes(bytes).toString('hex');
}

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}
