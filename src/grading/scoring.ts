import type { CheckResult, CheckStatus } from './results.js';

export interface CompetencyScore {
  id: string;
  title: string;
  points: number;
  maxPoints: number;
}

export interface Score {
  points: number;
  maxPoints: number;
  /** 0..100, two decimals. */
  percent: number;
  passMark: number;
  passed: boolean;
  /**
   * False when some check could not be decided (status error): the score is
   * provisional and the lab should be regraded before the result is final.
   */
  complete: boolean;
  errors: string[];
  counts: Record<CheckStatus, number>;
  byCompetency: CompetencyScore[];
}

const round = (n: number) => Math.round(n * 100) / 100;

/** Totals, per-competency subtotals and the verdict. Pure: no I/O, same input same output. */
export function computeScore(
  results: readonly CheckResult[],
  scenario: { passMark: number; competencies: readonly { id: string; title: string }[] },
): Score {
  const points = round(results.reduce((sum, r) => sum + r.points, 0));
  const maxPoints = round(results.reduce((sum, r) => sum + r.maxPoints, 0));
  const percent = maxPoints > 0 ? round((points / maxPoints) * 100) : 0;
  const counts: Record<CheckStatus, number> = { pass: 0, fail: 0, error: 0, skipped: 0 };
  for (const r of results) counts[r.status]++;
  const errors = results.filter((r) => r.status === 'error').map((r) => r.checkId);
  const byCompetency = scenario.competencies.map((c) => {
    const mine = results.filter((r) => r.competency === c.id);
    return {
      id: c.id,
      title: c.title,
      points: round(mine.reduce((sum, r) => sum + r.points, 0)),
      maxPoints: round(mine.reduce((sum, r) => sum + r.maxPoints, 0)),
    };
  });
  return { points, maxPoints, percent, passMark: scenario.passMark, passed: percent >= scenario.passMark, complete: errors.length === 0, errors, counts, byCompetency };
}
