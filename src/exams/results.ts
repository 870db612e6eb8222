import type { CheckResult, CheckStatus } from '../grading/index.js';
import type { FaultDraw, Scenario } from '../scenario/index.js';
import type { CandidateRecord, MarkRecord, ReportRecord } from './exam-store.js';
import type { RunRecord } from '../labs/index.js';

export interface Points {
  points: number;
  maxPoints: number;
}

/** One automatic check, as the grader left it. */
export interface AutoLine extends Points {
  source: 'auto';
  id: string;
  title: string;
  competency?: string;
  machine: string;
  hidden: boolean;
  status: CheckStatus | 'not-graded';
  expected: string;
  actual: string;
  evidence: string;
  message?: string;
}

/** One manual criterion, as the jury marked it. */
export interface ManualLine extends Points {
  source: 'manual';
  id: string;
  title: string;
  competency?: string;
  status: 'marked' | 'unmarked';
  level?: string;
  levelTitle?: string;
  comment?: string;
  markedBy?: string;
  markedAt?: string;
}

export interface CompetencyResult extends Points {
  id: string;
  title: string;
  auto: Points;
  manual: Points;
}

export interface CandidateResult {
  candidate: { id: string; name: string; email?: string };
  phase: CandidateRecord['phase'];
  labId?: string;
  /** The option each fault pool of the scenario drew for this candidate (pool id → option id). */
  faults: FaultDraw;
  /** The grading run the automatic points come from. */
  runId?: string;
  gradedAt?: string;
  auto: Points;
  manual: Points;
  total: Points & { percent: number; passMark: number; passed: boolean };
  /** False until every check is decided and every manual criterion is marked. */
  complete: boolean;
  /** Why the result is not final yet. */
  pending: string[];
  competencies: CompetencyResult[];
  checks: AutoLine[];
  manualCriteria: ManualLine[];
  report?: ReportRecord;
}

const round = (n: number) => Math.round(n * 100) / 100;
const sum = (lines: readonly Points[]): Points => ({
  points: round(lines.reduce((s, l) => s + l.points, 0)),
  maxPoints: round(lines.reduce((s, l) => s + l.maxPoints, 0)),
});

/**
 * A candidate's result: the automatic points of their final grading run
 * plus the jury's manual marks, per check, per criterion and per
 * competency, each line saying where its points come from. Pure.
 */
export function candidateResult(
  scenario: Pick<Scenario, 'checks' | 'competencies' | 'manualCriteria' | 'passMark'>,
  candidate: CandidateRecord,
  run: RunRecord | undefined,
  marks: readonly MarkRecord[],
  report: ReportRecord | undefined,
  faults: FaultDraw = {},
): CandidateResult {
  const graded = run?.status === 'done' ? run : undefined;
  const checks: AutoLine[] = graded
    ? graded.results.map(autoLine)
    : scenario.checks.map((c) => ({
        source: 'auto',
        id: c.id,
        title: c.title,
        competency: c.competency,
        machine: c.machine,
        hidden: c.hidden,
        status: 'not-graded',
        points: 0,
        maxPoints: c.points,
        expected: '',
        actual: '',
        evidence: '',
      }));
  const manualCriteria: ManualLine[] = scenario.manualCriteria.map((criterion) => {
    const maxPoints = Math.max(...criterion.levels.map((l) => l.points));
    const mark = marks.find((m) => m.criterionId === criterion.id);
    const base = { source: 'manual' as const, id: criterion.id, title: criterion.title, competency: criterion.competency, maxPoints };
    if (!mark) return { ...base, status: 'unmarked', points: 0 };
    return {
      ...base,
      status: 'marked',
      points: mark.points,
      level: mark.level,
      levelTitle: criterion.levels.find((l) => l.id === mark.level)?.title,
      comment: mark.comment,
      markedBy: mark.markedBy,
      markedAt: mark.markedAt,
    };
  });

  const auto = sum(checks);
  const manual = sum(manualCriteria);
  const total = sum([auto, manual]);
  const percent = total.maxPoints > 0 ? round((total.points / total.maxPoints) * 100) : 0;
  const pending: string[] = [];
  if (!graded) pending.push('not graded yet');
  const inError = checks.filter((c) => c.status === 'error').map((c) => c.id);
  if (inError.length) pending.push(`checks that could not be decided (regrade): ${inError.join(', ')}`);
  const unmarked = manualCriteria.filter((m) => m.status === 'unmarked').map((m) => m.id);
  if (unmarked.length) pending.push(`manual criteria not marked yet: ${unmarked.join(', ')}`);

  const competencies = scenario.competencies.map((c) => {
    const a = sum(checks.filter((l) => l.competency === c.id));
    const m = sum(manualCriteria.filter((l) => l.competency === c.id));
    return { id: c.id, title: c.title, auto: a, manual: m, ...sum([a, m]) };
  });

  return {
    candidate: { id: candidate.id, name: candidate.name, email: candidate.email },
    phase: candidate.phase,
    labId: candidate.labId,
    faults,
    runId: graded?.id,
    gradedAt: graded?.finishedAt,
    auto,
    manual,
    total: { ...total, percent, passMark: scenario.passMark, passed: percent >= scenario.passMark },
    complete: pending.length === 0,
    pending,
    competencies,
    checks,
    manualCriteria,
    report,
  };
}

function autoLine(r: CheckResult): AutoLine {
  return {
    source: 'auto',
    id: r.checkId,
    title: r.title,
    competency: r.competency,
    machine: r.machine,
    hidden: r.hidden,
    status: r.status,
    points: r.points,
    maxPoints: r.maxPoints,
    expected: r.expected,
    actual: r.actual,
    evidence: r.evidence,
    message: r.message,
  };
}
