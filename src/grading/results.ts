/** What grading produces: one result per check. Plain data, stored and exported as is. */

export type CheckStatus = 'pass' | 'fail' | 'error' | 'skipped';

export interface CheckResult {
  checkId: string;
  title: string;
  kind: string;
  machine: string;
  competency?: string;
  hidden: boolean;
  baseline: 'pass' | 'fail' | 'any';
  status: CheckStatus;
  /** Points awarded. */
  points: number;
  maxPoints: number;
  expected: string;
  actual: string;
  /** What the probe saw, for the jury. */
  evidence: string;
  /** Why the check errored or was skipped. */
  message?: string;
  durationMs: number;
}
