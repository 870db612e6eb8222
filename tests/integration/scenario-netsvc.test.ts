import { test } from '@jest/globals';
import { expectScenarioProves } from './helpers.js';

test('network-services: the faults fail every check, the solution passes them all', () => expectScenarioProves('network-services'), 300_000);
