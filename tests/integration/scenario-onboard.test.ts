import { test } from '@jest/globals';
import { expectScenarioProves } from './helpers.js';

test('workstation-onboarding: the faults fail every check, the solution passes them all', () => expectScenarioProves('workstation-onboarding'), 300_000);
