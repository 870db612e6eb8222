import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { daemonConfigSchema, loadDaemonConfig } from '../../../src/daemon/settings.js';

describe('daemon.yaml: limits on unauthenticated clients', () => {
  test('defaults: 10 connections not logged in per address, 200 in all, 30 s to log in; 30 unknown tokens per address in 5 min', () => {
    const config = daemonConfigSchema.parse({});
    expect(config.ssh.unauthenticated).toEqual({ perAddress: 10, total: 200, timeout: 30_000 });
    expect(config.failedTokens).toEqual({ perAddress: 30, window: 300_000 });
  });

  test('a bad value is refused, naming the file and the field', () => {
    const dir = mkdtempSync(join(tmpdir(), 'examlab-settings-'));
    try {
      const file = join(dir, 'daemon.yaml');
      writeFileSync(file, 'ssh:\n  unauthenticated: { perAddress: 0, timeout: 0s }\nfailedTokens: { window: soon }\n');
      let details: { where?: string; message: string }[] = [];
      expect(() => {
        try {
          loadDaemonConfig(file);
        } catch (err) {
          details = (err as { details: typeof details }).details;
          throw err;
        }
      }).toThrow(`${file}: invalid daemon configuration`);
      expect(details.map((d) => d.where)).toEqual([`${file} ssh.unauthenticated.perAddress`, `${file} ssh.unauthenticated.timeout`, `${file} failedTokens.window`]);
      expect(details[2]?.message).toMatch(/failedTokens.window must be a duration/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
