import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { createTestApp, leftovers } from './helpers.js';
import { testScenario } from '../../src/labs/scenario-test.js';
import { PACKAGE_ROOT } from '../../src/daemon/config.js';

describe('the ad-join scenario proves itself on the real engine', () => {
  // A Samba AD domain controller provisioned in the lab and a workstation joined to it: about a minute once the images are built.
  test('ad-join: the faults fail every check, the solution passes them all', async () => {
    const app = await createTestApp();
    try {
      const loaded = await app.loadScenario(join(PACKAGE_ROOT, 'scenarios/ad-join.yaml'));
      const report = await testScenario(app.labs, loaded);
      expect(report.problems).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.broken?.score.percent).toBeLessThan(10);
      expect(report.solved?.score.percent).toBe(100);
      expect(report.broken?.checks.filter((c) => c.baseline === 'fail').every((c) => c.status !== 'pass')).toBe(true);
      // The domain user's real login is refused in the broken state, not skipped or in error.
      expect(report.broken?.checks.find((c) => c.id === 'domain-login')?.status).toBe('fail');
      expect(await leftovers(app, report.labId as string)).toEqual({ containers: 0, networks: 0, volumes: 0 });
    } finally {
      app.cleanup();
    }
  }, 600_000);
});
