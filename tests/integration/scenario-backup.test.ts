import { test } from '@jest/globals';
import { expectScenarioProves } from './helpers.js';

test('backup-restore: the faults fail every check, the solution passes them all', () => expectScenarioProves('backup-restore'), 300_000);
