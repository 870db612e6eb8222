import { test } from '@jest/globals';
import { expectScenarioProves } from './helpers.js';

test('file-share-permissions: the faults fail every check, the solution passes them all', () => expectScenarioProves('file-share-permissions'), 300_000);
