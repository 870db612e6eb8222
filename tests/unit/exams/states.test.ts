import { ConflictError } from '../../../src/util/errors.js';
import { assertCandidateTransition, assertExamTransition, canMoveCandidate } from '../../../src/exams/states.js';

describe('exam and candidate lifecycles', () => {
  test('a candidate goes waiting → provisioning → active → ending → ended, and back to provisioning on a reset', () => {
    for (const [from, to] of [
      ['waiting', 'provisioning'],
      ['provisioning', 'active'],
      ['active', 'provisioning'],
      ['failed', 'provisioning'],
      ['active', 'ending'],
      ['ending', 'ended'],
    ] as const) {
      expect(canMoveCandidate(from, to)).toBe(true);
    }
  });

  test('nothing leaves ended; an ending candidate cannot be offered a lab', () => {
    expect(canMoveCandidate('ended', 'provisioning')).toBe(false);
    expect(canMoveCandidate('ending', 'active')).toBe(false);
    expect(() => assertCandidateTransition('alice', 'ended', 'active')).toThrow(ConflictError);
    expect(() => assertCandidateTransition('alice', 'ended', 'active')).toThrow('candidate alice is ended; they cannot become active (allowed: none)');
  });

  test('an ended exam cannot start again', () => {
    expect(() => assertExamTransition('e1', 'ended', 'running')).toThrow('exam e1 is ended; it cannot become running (allowed: none)');
    expect(() => assertExamTransition('e1', 'scheduled', 'ended')).not.toThrow();
  });
});
