import { test } from '@jest/globals';
import { expectScenarioProves } from './helpers.js';

test('broken-workstation: the faults fail every check, the solution passes them all', () => expectScenarioProves('broken-workstation'), 300_000);
