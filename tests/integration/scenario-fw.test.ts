import { test } from '@jest/globals';
import { expectScenarioProves } from './helpers.js';

test('firewall-rules: the faults fail every check, the solution passes them all', () => expectScenarioProves('firewall-rules'), 300_000);
