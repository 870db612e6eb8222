import { candidateReportHtml, resultsCsv } from '../../../src/exams/export.js';
import { candidateResult } from '../../../src/exams/results.js';
import type { CheckResult } from '../../../src/grading/results.js';
import type { Check } from '../../../src/scenario/index.js';
import type { CandidateRecord, ExamRecord, MarkRecord } from '../../../src/exams/exam-store.js';
import type { RunRecord } from '../../../src/labs/lab-store.js';

const check = (id: string, points: number, competency: string): Check => ({ id, title: `check ${id}`, machine: 'pc', kind: 'file', points, competency, hidden: false, prerequisites: [], baseline: 'fail', partial: false, timeout: 10_000 }) as unknown as Check;
const scenario = {
  title: 'Scénario',
  ccp: 'CCP1' as const,
  language: 'fr' as const,
  passMark: 60,
  faultPools: [],
  competencies: [
    { id: 'C1', title: 'Diagnostiquer' },
    { id: 'C2', title: 'Sécuriser' },
  ],
  checks: [check('a', 2, 'C1'), check('b', 3, 'C2')],
  manualCriteria: [
    { id: 'report', title: 'Report <b>', competency: 'C1', levels: [{ id: 'no', title: 'No', points: 0 }, { id: 'yes', title: 'Yes & clear', points: 5 }] },
    { id: 'talk', title: 'Interview', levels: [{ id: 'low', title: 'Low', points: 0 }, { id: 'high', title: 'High', points: 2 }] },
  ],
};
const candidate: CandidateRecord = { examId: 'e', id: 'alice', position: 0, name: 'Alice <Martin>', phase: 'ended', seed: 's', revoked: false, extensionMs: 0, attempts: 1, updatedAt: '' };
const result = (checkId: string, status: CheckResult['status'], points: number, maxPoints: number, competency: string): CheckResult => ({
  checkId,
  title: `check ${checkId}`,
  kind: 'file',
  machine: 'pc',
  competency,
  hidden: false,
  baseline: 'fail',
  status,
  points,
  maxPoints,
  expected: 'mode 2770',
  actual: 'mode 0700',
  evidence: '<drwx------>',
  durationMs: 3,
});
const run = (results: CheckResult[]): RunRecord => ({ id: 'r1', labId: 'l', purpose: 'final', status: 'done', startedAt: '', finishedAt: '2026-01-01T10:00:00Z', results });
const mark = (criterionId: string, level: string, points: number): MarkRecord => ({ examId: 'e', candidateId: 'alice', criterionId, level, points, markedBy: 'jury:j', markedAt: '' });

describe('a candidate result', () => {
  test('adds manual marks to the automatic points, per competency, each line saying its source', () => {
    const r = candidateResult(scenario, candidate, run([result('a', 'pass', 2, 2, 'C1'), result('b', 'fail', 0, 3, 'C2')]), [mark('report', 'yes', 5), mark('talk', 'high', 2)], undefined);
    expect(r.auto).toEqual({ points: 2, maxPoints: 5 });
    expect(r.manual).toEqual({ points: 7, maxPoints: 7 });
    expect(r.total).toEqual({ points: 9, maxPoints: 12, percent: 75, passMark: 60, passed: true });
    expect(r.competencies).toEqual([
      { id: 'C1', title: 'Diagnostiquer', auto: { points: 2, maxPoints: 2 }, manual: { points: 5, maxPoints: 5 }, points: 7, maxPoints: 7 },
      { id: 'C2', title: 'Sécuriser', auto: { points: 0, maxPoints: 3 }, manual: { points: 0, maxPoints: 0 }, points: 0, maxPoints: 3 },
    ]);
    expect(r.checks.map((l) => [l.source, l.id, l.status])).toEqual([
      ['auto', 'a', 'pass'],
      ['auto', 'b', 'fail'],
    ]);
    expect(r.manualCriteria.map((l) => [l.source, l.id, l.levelTitle])).toEqual([
      ['manual', 'report', 'Yes & clear'],
      ['manual', 'talk', 'High'],
    ]);
    expect(r).toMatchObject({ complete: true, pending: [], runId: 'r1' });
  });

  test('says why it is not final: not graded, undecided checks, unmarked criteria', () => {
    const ungraded = candidateResult(scenario, candidate, undefined, [], undefined);
    expect(ungraded.auto).toEqual({ points: 0, maxPoints: 5 });
    expect(ungraded.checks.every((l) => l.status === 'not-graded')).toBe(true);
    expect(ungraded.pending).toEqual(['not graded yet', 'manual criteria not marked yet: report, talk']);
    const undecided = candidateResult(scenario, candidate, run([result('a', 'error', 0, 2, 'C1'), result('b', 'pass', 3, 3, 'C2')]), [mark('report', 'no', 0), mark('talk', 'low', 0)], undefined);
    expect(undecided.pending).toEqual(['checks that could not be decided (regrade): a']);
    expect(undecided.complete).toBe(false);
  });
});

describe('exports', () => {
  const r = candidateResult(scenario, candidate, run([result('a', 'pass', 2, 2, 'C1'), result('b', 'fail', 0, 3, 'C2')]), [mark('report', 'yes', 5)], {
    examId: 'e',
    candidateId: 'alice',
    diagnosis: 'DNS <cassé>',
    actions: 'corrigé',
    result: 'ok',
    revision: 2,
    submittedAt: 'now',
  });

  test('CSV: one row per candidate, a column per check, criterion and competency; unmarked is empty, not zero', () => {
    expect(resultsCsv(scenario, [r]).split('\n')).toEqual([
      'candidate_id,name,email,phase,total_points,max_points,percent,passed,complete,auto_points,manual_points,check:a,check:b,manual:report,manual:talk,competency:C1,competency:C2',
      'alice,Alice <Martin>,,ended,7,12,58.33,no,no,2,5,2,0,5,,7,0',
      '',
    ]);
  });

  test('HTML: everything the jury reads, escaped', () => {
    const exam = { id: 'e', title: 'Session & co' } as ExamRecord;
    const html = candidateReportHtml(exam, scenario, r);
    expect(html).toContain('Alice &lt;Martin&gt;');
    expect(html).toContain('Session &amp; co');
    expect(html).toContain('DNS &lt;cassé&gt;');
    expect(html).toContain('&lt;drwx------&gt;');
    expect(html).toContain('dont automatique 2 / 5 et jury 5 / 7');
    expect(html).toContain('NON ACQUIS');
    expect(html).not.toContain('<Martin>');
    expect(html).toContain('Résultat provisoire: critères à noter : talk');
    expect(candidateReportHtml(exam, { ...scenario, language: 'en' }, r)).toContain('automatic 2 / 5 and jury 5 / 7');
  });
});
