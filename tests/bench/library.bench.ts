import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { expect, test } from '@jest/globals';
import { PACKAGE_ROOT } from '../../src/daemon/config.js';
import { proveScenario, type ScenarioTestReport } from '../../src/labs/scenario-test.js';
import { ScenarioLibrary } from '../../src/scenario/index.js';
import { createTestApp } from '../integration/helpers.js';

/**
 * Each scenario of the library, as `examlab scenario test` proves it: the
 * time to build a lab (machines, setup, faults), to grade the broken and the
 * solved state, to apply the solution and to tear down, per variant of its
 * fault pools. Scenarios run one after the other (their images built
 * beforehand, untimed), so each figure is one lab on this host. Scenarios
 * that need what this host does not have (a centre's Windows disk) are
 * left out by name: SKIP=ad-join-windows (the default).
 * Figures: build/bench/library.json.
 */
test('the library: provisioning and grading time of each scenario', async () => {
  const app = await createTestApp();
  const skip = new Set((process.env.SKIP ?? 'ad-join-windows').split(',').filter(Boolean));
  const only = process.env.ONLY ? new Set(process.env.ONLY.split(',')) : undefined;
  const entries = new ScenarioLibrary([join(PACKAGE_ROOT, 'scenarios')]).list().filter((e) => !skip.has(e.name) && (!only || only.has(e.name)));
  const rows: Record<string, unknown>[] = [];
  try {
    for (const entry of entries) {
      const loaded = await app.loadScenario(entry.file);
      for (const image of new Set(loaded.scenario.machines.flatMap((m) => (m.image ? [m.image] : [])))) await app.images.ensure(image, { scenarioDir: join(entry.file, '..') });
      const proof = await proveScenario(app.labs, loaded, () => undefined, { parallel: 1 });
      for (const v of proof.variants) {
        const t = (k: keyof ScenarioTestReport['timings'] & string) => Math.round((v.timings[k] ?? 0) / 100) / 10;
        rows.push({
          scenario: entry.name,
          variant: Object.entries(v.draw).map(([p, o]) => `${p}=${o}`).join(', ') || '-',
          machines: loaded.scenario.machines.map((m) => `${m.name}${m.provider === 'libvirt' ? ' (VM)' : ''}`).join(', '),
          checks: loaded.scenario.checks.length,
          ok: v.ok,
          provisionS: t('provisionMs'),
          gradeBrokenS: t('gradeBrokenMs'),
          solutionS: t('solutionMs'),
          gradeSolvedS: t('gradeSolvedMs'),
          teardownS: t('teardownMs'),
          loadavg1: Math.round((loadavg()[0] as number) * 10) / 10,
          problems: v.problems,
        });
      }
    }
  } finally {
    app.cleanup();
  }
  mkdirSync(join(PACKAGE_ROOT, 'build/bench'), { recursive: true });
  writeFileSync(join(PACKAGE_ROOT, 'build/bench/library.json'), `${JSON.stringify(rows, null, 2)}\n`);
  console.log(rows.map((r) => `${r.scenario} [${r.variant}]: provision ${r.provisionS} s, grade broken ${r.gradeBrokenS} s, solution ${r.solutionS} s, grade solved ${r.gradeSolvedS} s, teardown ${r.teardownS} s${r.ok ? '' : ' FAILED'}`).join('\n'));
  expect(rows.filter((r) => !r.ok)).toEqual([]);
});
