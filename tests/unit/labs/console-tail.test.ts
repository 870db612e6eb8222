import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { consoleTail } from '../../../src/labs/console.js';

describe('console log tail', () => {
  test('keeps the last lines, without terminal colours, cursor moves or carriage returns', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'examlab-console-'));
    try {
      const file = join(dir, 'pc.console.log');
      writeFileSync(file, `${Array.from({ length: 40 }, (_, i) => `line ${i}`).join('\r\n')}\r\n\x1b[0;1;31mFAILED\x1b[0m] Failed to mount /srv/donnees.\r\n\x1b[K\r\nYou are in emergency mode.\r\n`);
      expect(await consoleTail(file, 3)).toBe('line 39\nFAILED] Failed to mount /srv/donnees.\nYou are in emergency mode.');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('is empty when the machine never wrote a log', async () => {
    expect(await consoleTail('/nonexistent/pc.console.log')).toBe('');
  });
});
