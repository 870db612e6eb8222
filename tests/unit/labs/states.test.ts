import { ConflictError } from '../../../src/util/errors.js';
import { assertTransition, canTransition, LAB_STATES } from '../../../src/labs/states.js';
import { openDatabase } from '../../../src/util/database.js';
import { LabStore } from '../../../src/labs/lab-store.js';

describe('lab lifecycle', () => {
  test('the happy path is allowed, step by step', () => {
    const path = ['requested', 'provisioning', 'ready', 'running', 'frozen', 'graded', 'destroyed'] as const;
    for (let i = 1; i < path.length; i++) expect(canTransition(path[i - 1] as never, path[i] as never)).toBe(true);
  });

  test('destroyed is final and every state can be destroyed', () => {
    for (const s of LAB_STATES) {
      expect(canTransition('destroyed', s)).toBe(false);
      if (s !== 'destroyed') expect(canTransition(s, 'destroyed')).toBe(true);
    }
  });

  test('a forbidden transition is a conflict that says what is allowed', () => {
    expect(() => assertTransition('abc', 'requested', 'graded')).toThrow(ConflictError);
    expect(() => assertTransition('abc', 'requested', 'graded')).toThrow('lab abc is requested; it cannot become graded (allowed: provisioning, failed, destroyed)');
  });

  test('the store records each transition with an event, atomically, and refuses forbidden ones', () => {
    const store = new LabStore(openDatabase(':memory:'));
    const secrets = { graderPrivateKey: 'k', graderPublicKey: 'p', candidatePrivateKey: 'k', candidatePublicKey: 'p', candidatePassword: 'x' };
    store.create({ id: 'l1', scenarioId: 's', scenarioFile: 'f', scenarioText: 't', scenarioHash: 'h', seed: 's', variables: {}, secrets });
    store.transition('l1', 'provisioning');
    store.transition('l1', 'failed', 'setup[0] exited 1');
    expect(() => store.transition('l1', 'ready')).toThrow(ConflictError);
    expect(store.get('l1')).toMatchObject({ state: 'failed', stateDetail: 'setup[0] exited 1' });
    expect(store.events('l1').map((e) => `${e.from ?? ''}>${e.to}`)).toEqual(['>requested', 'requested>provisioning', 'provisioning>failed']);
  });
});
