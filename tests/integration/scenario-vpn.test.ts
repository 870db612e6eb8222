import { join } from 'node:path';
import { describe, expect, test } from '@jest/globals';
import { createTestApp, leftovers } from './helpers.js';
import { testScenario } from '../../src/labs/scenario-test.js';
import { PACKAGE_ROOT } from '../../src/daemon/config.js';

describe('the vpn-misconfigured scenario proves itself on the real engine', () => {
  test('vpn-misconfigured: the faults fail every check, the solution passes them all', async () => {
    const app = await createTestApp();
    try {
      const loaded = await app.loadScenario(join(PACKAGE_ROOT, 'scenarios/vpn-misconfigured.yaml'));
      const report = await testScenario(app.labs, loaded);
      expect(report.problems).toEqual([]);
      expect(report.ok).toBe(true);
      expect(report.broken?.score.percent).toBeLessThan(10);
      expect(report.solved?.score.percent).toBe(100);
      expect(report.broken?.checks.filter((c) => c.baseline === 'fail').every((c) => c.status !== 'pass')).toBe(true);
      expect(await leftovers(app, report.labId as string)).toEqual({ containers: 0, networks: 0, volumes: 0 });
    } finally {
      app.cleanup();
    }
  }, 300_000);
});
