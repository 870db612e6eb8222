import type { CellValue, Workbook } from 'exceljs';
import type { PrintedAnchor } from '../audit/index.js';
import type { Scenario } from '../scenario/index.js';
import { wallClock, type Language } from '../util/dates.js';
import type { ExamRecord } from './exam-store.js';
import { anchorValue, statusWord } from './export.js';
import type { CandidateResult } from './results.js';
import { neutraliseFormula, newWorkbook } from './spreadsheet.js';

/** Sheet names and column headers, in the exam's language. */
const WORDS = {
  fr: {
    sheets: { candidates: 'Candidats', checks: 'Vérifications', marks: 'Notes du jury', exam: 'Épreuve' },
    id: 'Identifiant',
    name: 'Nom',
    email: 'Courriel',
    points: 'Points',
    maxPoints: 'Sur',
    percent: '%',
    verdict: 'Résultat',
    passed: 'ACQUIS',
    notPassed: 'NON ACQUIS',
    final: 'Définitif',
    yes: 'oui',
    no: 'non',
    auto: 'Automatique',
    jury: 'Jury',
    gradedAt: 'Notée le',
    check: 'Vérification',
    criterion: 'Critère',
    title: 'Intitulé',
    competency: 'Compétence',
    machine: 'Machine',
    status: 'Statut',
    expected: 'Attendu',
    actual: 'Constaté',
    message: 'Message',
    level: 'Niveau',
    comment: 'Commentaire',
    markedBy: 'Noté par',
    markedAt: 'Noté le',
    examTitle: 'Épreuve',
    scenario: 'Mise en situation',
    session: 'Session',
    passMark: 'Seuil de réussite (%)',
    startedAt: 'Début',
    endedAt: 'Fin',
    timeZone: 'Fuseau horaire',
    anchor: "Ancre du journal d'audit",
  },
  en: {
    sheets: { candidates: 'Candidates', checks: 'Checks', marks: 'Jury marks', exam: 'Exam' },
    id: 'Id',
    name: 'Name',
    email: 'Email',
    points: 'Points',
    maxPoints: 'Out of',
    percent: '%',
    verdict: 'Result',
    passed: 'PASSED',
    notPassed: 'NOT PASSED',
    final: 'Final',
    yes: 'yes',
    no: 'no',
    auto: 'Automatic',
    jury: 'Jury',
    gradedAt: 'Graded at',
    check: 'Check',
    criterion: 'Criterion',
    title: 'Title',
    competency: 'Competency',
    machine: 'Machine',
    status: 'Status',
    expected: 'Expected',
    actual: 'Actual',
    message: 'Message',
    level: 'Level',
    comment: 'Comment',
    markedBy: 'Marked by',
    markedAt: 'Marked at',
    examTitle: 'Exam',
    scenario: 'Scenario',
    session: 'Session',
    passMark: 'Pass mark (%)',
    startedAt: 'Started',
    endedAt: 'Ended',
    timeZone: 'Time zone',
    anchor: 'Audit anchor',
  },
};

/** Excel refuses longer cells. */
const MAX_CELL = 32_767;
const DATE_FORMAT = 'dd/mm/yyyy hh:mm';

type Value = string | number | Date | undefined;

/**
 * The results as a workbook for the jury: a sheet of candidates (points,
 * percent, verdict, per competency), one of checks per candidate with
 * expected and actual, one of the jury's marks and comments, one about
 * the exam. Numbers are numbers, dates are dates in the exam's time zone,
 * and no text can run as a formula.
 */
export async function resultsXlsx(
  exam: ExamRecord,
  scenario: Pick<Scenario, 'title' | 'ccp' | 'language' | 'passMark' | 'competencies' | 'faultPools'>,
  results: readonly CandidateResult[],
  anchor?: PrintedAnchor,
): Promise<Buffer> {
  const language: Language = scenario.language === 'en' ? 'en' : 'fr';
  const w = WORDS[language];
  const date = (iso: string | undefined) => (iso ? wallClock(iso, exam.timeZone) : undefined);
  const workbook = await newWorkbook();
  workbook.creator = 'examlab';
  workbook.title = exam.title;

  const who = (r: CandidateResult) => [r.candidate.id, r.candidate.name];
  sheet(workbook, w.sheets.candidates, [
    [w.id, 14], [w.name, 28], [w.email, 28], [w.points, 9], [w.maxPoints, 9], [w.percent, 8], [w.verdict, 14], [w.final, 10], [w.auto, 12], [w.jury, 9],
    ...scenario.competencies.map((c): [string, number] => [`${c.id} – ${c.title}`, 18]),
    ...scenario.faultPools.map((p): [string, number] => [p.title, 24]),
    [w.gradedAt, 17],
  ], results.map((r) => [
    ...who(r),
    r.candidate.email,
    r.total.points,
    r.total.maxPoints,
    r.total.percent,
    r.total.passed ? w.passed : w.notPassed,
    r.complete ? w.yes : w.no,
    r.auto.points,
    r.manual.points,
    ...scenario.competencies.map((c) => r.competencies.find((l) => l.id === c.id)?.points ?? 0),
    ...scenario.faultPools.map((p) => {
      const option = p.options.find((o) => o.id === r.faults[p.id]);
      return option ? `${option.id} – ${option.title}` : undefined;
    }),
    date(r.gradedAt),
  ]));

  sheet(workbook, w.sheets.checks, [
    [w.id, 14], [w.name, 24], [w.check, 18], [w.title, 36], [w.competency, 16], [w.machine, 12], [w.status, 12], [w.points, 9], [w.maxPoints, 9], [w.expected, 40], [w.actual, 40], [w.message, 40],
  ], results.flatMap((r) => r.checks.map((c) => [
    ...who(r), c.id, c.title, c.competency, c.machine, statusWord(language, c.status), c.status === 'not-graded' ? undefined : c.points, c.maxPoints, c.expected, c.actual, c.message,
  ])));

  sheet(workbook, w.sheets.marks, [
    [w.id, 14], [w.name, 24], [w.criterion, 18], [w.title, 36], [w.competency, 16], [w.level, 18], [w.points, 9], [w.maxPoints, 9], [w.comment, 50], [w.markedBy, 18], [w.markedAt, 17],
  ], results.flatMap((r) => r.manualCriteria.map((m) => [
    ...who(r), m.id, m.title, m.competency, m.levelTitle ?? statusWord(language, m.status), m.status === 'marked' ? m.points : undefined, m.maxPoints, m.comment, m.markedBy, date(m.markedAt),
  ])));

  const about = workbook.addWorksheet(w.sheets.exam);
  about.columns = [{ width: 24 }, { width: 50 }];
  const facts: [string, Value][] = [
    [w.examTitle, exam.title],
    [w.scenario, `${scenario.title} (${scenario.ccp})`],
    [w.session, exam.id],
    [w.passMark, scenario.passMark],
    [w.startedAt, date(exam.startedAt)],
    [w.endedAt, date(exam.endedAt)],
    [w.timeZone, exam.timeZone],
    [w.anchor, anchorValue(language, anchor)],
  ];
  for (const [label, value] of facts) {
    const row = about.addRow([label, cellValue(value)]);
    row.getCell(1).font = { bold: true };
    if (value instanceof Date) row.getCell(2).numFmt = DATE_FORMAT;
  }

  return Buffer.from(await workbook.xlsx.writeBuffer());
}

function cellValue(value: Value): CellValue {
  if (typeof value === 'string') return neutraliseFormula(value.length > MAX_CELL - 1 ? `${value.slice(0, MAX_CELL - 2)}…` : value);
  return value ?? null;
}

/** A sheet with a bold header row that stays in view and filters, then the rows. */
function sheet(workbook: Workbook, name: string, columns: [string, number][], rows: Value[][]): void {
  const ws = workbook.addWorksheet(name, { views: [{ state: 'frozen', ySplit: 1 }] });
  ws.columns = columns.map(([, width]) => ({ width }));
  const header = ws.addRow(columns.map(([title]) => cellValue(title)));
  header.font = { bold: true };
  header.alignment = { vertical: 'top', wrapText: true };
  for (const values of rows) {
    const row = ws.addRow(values.map(cellValue));
    values.forEach((v, i) => {
      if (v instanceof Date) row.getCell(i + 1).numFmt = DATE_FORMAT;
    });
  }
  ws.autoFilter = { from: { row: 1, column: 1 }, to: { row: 1, column: columns.length } };
}
