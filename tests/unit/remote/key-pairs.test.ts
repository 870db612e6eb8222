import { describe, expect, test } from '@jest/globals';
import ssh2 from 'ssh2';
import { generateKeyPair } from '../../../src/remote/ssh-client.js';

describe('SSH key pairs', () => {
  test('every pair made is usable: both halves parse, and the private one signs what the public one verifies', () => {
    // ssh2 alone gets about one pair in 128 wrong: 1000 pairs would meet one almost surely (1 - (127/128)^1000 > 99.9 %).
    for (let i = 0; i < 1000; i++) {
      const pair = generateKeyPair(`key ${i}`);
      const privateKey = ssh2.utils.parseKey(pair.privateKey);
      const publicKey = ssh2.utils.parseKey(pair.publicKey);
      if (privateKey instanceof Error || publicKey instanceof Error) throw new Error(`pair ${i} does not parse: ${pair.publicKey}`);
      expect(publicKey.verify(Buffer.from('x'), privateKey.sign(Buffer.from('x')))).toBe(true);
      expect(pair.publicKey).toMatch(new RegExp(`^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} key ${i}$`));
    }
  });
});
