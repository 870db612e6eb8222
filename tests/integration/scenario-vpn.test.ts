import { test } from '@jest/globals';
import { expectScenarioProves } from './helpers.js';

test('vpn-misconfigured: the faults fail every check, the solution passes them all', () => expectScenarioProves('vpn-misconfigured'), 300_000);
