import type { CheckResult } from '../../../src/grading/results.js';
import { computeScore } from '../../../src/grading/scoring.js';

const result = (id: string, status: CheckResult['status'], points: number, maxPoints: number, competency?: string): CheckResult => ({
  checkId: id, title: id, kind: 'file', machine: 'pc', competency, hidden: false, baseline: 'fail',
  status, points, maxPoints, expected: '', actual: '', evidence: '', durationMs: 1,
});

const scenario = { passMark: 60, competencies: [{ id: 'A', title: 'a' }, { id: 'B', title: 'b' }] };

describe('scoring', () => {
  test('totals, percent, per-competency subtotals and verdict', () => {
    const score = computeScore([result('1', 'pass', 3, 3, 'A'), result('2', 'fail', 1.5, 3, 'A'), result('3', 'pass', 4, 4, 'B')], scenario);
    expect(score).toMatchObject({ points: 8.5, maxPoints: 10, percent: 85, passed: true, complete: true, errors: [] });
    expect(score.byCompetency).toEqual([
      { id: 'A', title: 'a', points: 4.5, maxPoints: 6 },
      { id: 'B', title: 'b', points: 4, maxPoints: 4 },
    ]);
    expect(score.counts).toEqual({ pass: 2, fail: 1, error: 0, skipped: 0 });
  });

  test('under the pass mark does not pass', () => {
    expect(computeScore([result('1', 'pass', 5, 10, 'A'), result('2', 'fail', 0, 0, 'A')], scenario).passed).toBe(false);
  });

  test('errors are reported apart and make the score provisional', () => {
    const score = computeScore([result('1', 'pass', 5, 5, 'A'), result('2', 'error', 0, 5, 'B')], scenario);
    expect(score.complete).toBe(false);
    expect(score.errors).toEqual(['2']);
    expect(score.percent).toBe(50);
  });

  test('a scenario with no points scores 0 without dividing by zero', () => {
    expect(computeScore([result('1', 'pass', 0, 0)], scenario).percent).toBe(0);
  });
});
