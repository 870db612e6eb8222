import { createHmac } from 'node:crypto';
import type { Scenario } from './schema.js';

const CHARSETS: Record<string, string> = {
  alnum: 'abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789',
  alpha: 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ',
  lower: 'abcdefghijklmnopqrstuvwxyz',
  digits: '0123456789',
  hex: '0123456789abcdef',
};

/**
 * Picks each variable's value for one candidate. The choice is derived from
 * `seed` (stored with the lab), so a reset or a regrade sees the same values
 * while two candidates get different ones.
 */
export function resolveVariables(variables: Scenario['variables'], seed: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const [name, variable] of Object.entries(variables)) {
    const stream = randomStream(`${seed}/${name}`);
    if (variable.value !== undefined) values.set(name, variable.value);
    else if (variable.oneOf) values.set(name, variable.oneOf[stream() % variable.oneOf.length] as string);
    else if (variable.random) {
      const chars = CHARSETS[variable.random.charset] as string;
      let text = variable.random.prefix;
      for (let i = 0; i < variable.random.length; i++) text += chars[stream() % chars.length];
      values.set(name, text);
    }
  }
  return values;
}

/** Deterministic 32-bit numbers from a seed (HMAC-SHA256 in counter mode). */
function randomStream(seed: string): () => number {
  let counter = 0;
  let block = Buffer.alloc(0);
  let offset = 0;
  return () => {
    if (offset + 4 > block.length) {
      block = createHmac('sha256', seed).update(String(counter++)).digest();
      offset = 0;
    }
    const n = block.readUInt32BE(offset);
    offset += 4;
    return n;
  };
}
