import { test } from '@jest/globals';
import { expectScenarioProves } from './helpers.js';

test('router-and-vlans: the faults fail every check, the solution passes them all', () => expectScenarioProves('router-and-vlans'), 300_000);
