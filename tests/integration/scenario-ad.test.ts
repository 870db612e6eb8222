import { expect, test } from '@jest/globals';
import { expectScenarioProves } from './helpers.js';

// A Samba AD domain controller provisioned in the lab and a workstation joined to it: about a minute once the images are built.
test('ad-join: the faults fail every check, the solution passes them all', async () => {
  const [report] = (await expectScenarioProves('ad-join')).variants;
  // The domain user's real login is refused in the broken state, not skipped or in error.
  expect(report?.broken?.checks.find((c) => c.id === 'domain-login')?.status).toBe('fail');
}, 600_000);
