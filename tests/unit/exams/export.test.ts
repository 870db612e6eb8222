import { parse } from 'csv-parse/sync';
import ExcelJS from 'exceljs';
import { candidateReportHtml, resultsCsv } from '../../../src/exams/export.js';
import { resultsXlsx } from '../../../src/exams/export-xlsx.js';
import { candidateResult, type CandidateResult } from '../../../src/exams/results.js';
import { neutraliseFormula } from '../../../src/exams/spreadsheet.js';
import type { CheckResult } from '../../../src/grading/results.js';
import type { Check } from '../../../src/scenario/index.js';
import type { CandidateRecord, ExamRecord, MarkRecord } from '../../../src/exams/exam-store.js';
import type { RunRecord } from '../../../src/labs/lab-store.js';

const check = (id: string, points: number, competency: string): Check => ({ id, title: `check ${id}`, machine: 'pc', kind: 'file', points, competency, hidden: false }) as unknown as Check;
const scenario = {
  title: 'Poste en panne',
  ccp: 'CCP1' as const,
  language: 'fr' as const,
  passMark: 60,
  competencies: [
    { id: 'C1', title: 'Diagnostiquer' },
    { id: 'C2', title: 'Sécuriser' },
  ],
  checks: [check('a', 2, 'C1'), check('b', 3.5, 'C2')],
  manualCriteria: [{ id: 'cr', title: "Compte rendu d'intervention", competency: 'C1', levels: [{ id: 'non', title: 'Absent', points: 0 }, { id: 'oui', title: 'Complet et clair', points: 5 }] }],
  faultPools: [
    {
      id: 'dns',
      title: 'Résolution DNS cassée',
      options: [
        { id: 'resolveur', title: 'Le résolveur pointe ailleurs', steps: [], solution: [] },
        { id: 'hosts', title: 'Une entrée fausse dans /etc/hosts', steps: [], solution: [] },
      ],
    },
  ],
};
const exam = {
  id: '3f2a9c0d1e4b',
  title: 'Session de juin – salle B',
  timeZone: 'Europe/Paris',
  startedAt: '2025-06-12T07:30:00.000Z',
  endedAt: '2025-06-12T20:27:01.000Z',
} as ExamRecord;

const candidate = (id: string, name: string, email?: string): CandidateRecord => ({ examId: exam.id, id, position: 0, name, email, phase: 'ended', seed: 's', revoked: false, extensionMs: 0, attempts: 1, updatedAt: '' });
const line = (checkId: string, status: CheckResult['status'], points: number, maxPoints: number, competency: string, actual: string): CheckResult => ({
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
  actual,
  evidence: '',
  durationMs: 3,
});
const run = (results: CheckResult[]): RunRecord => ({ id: 'r1', labId: 'l', purpose: 'final', status: 'done', startedAt: '', finishedAt: '2025-06-12T20:27:01.000Z', results });
const mark = (candidateId: string, level: string, points: number, comment: string): MarkRecord => ({
  examId: exam.id,
  candidateId,
  criterionId: 'cr',
  level,
  points,
  comment,
  markedBy: 'jury:dupont',
  markedAt: '2025-06-12T21:05:00.000Z',
});

/** Zoé passes with half points; a hostile name and comment try to run formulas; Éloïse is not marked yet. */
const results: CandidateResult[] = [
  candidateResult(scenario, candidate('zoe', "Zoé N'Diaye", 'zoe@example.fr'), run([line('a', 'pass', 2, 2, 'C1', 'mode 2770'), line('b', 'pass', 3.5, 3.5, 'C2', 'ok')]), [mark('zoe', 'oui', 5, 'Très clair, bien structuré')], undefined, { dns: 'hosts' }),
  candidateResult(scenario, candidate('hack', '=HYPERLINK("http://evil","clic")'), run([line('a', 'fail', 0, 2, 'C1', '-rw-r--r-- root'), line('b', 'pass', 3.5, 3.5, 'C2', '@SUM(1)')]), [mark('hack', 'non', 0, '+cmd|" /C calc"!A0')], undefined, { dns: 'resolveur' }),
  candidateResult(scenario, candidate('eloise', "Éloïse d'Artagnan"), undefined, [], undefined),
];

describe('results as CSV', () => {
  test('plain: "," and decimal points; formulas neutralised', () => {
    const rows = parse(resultsCsv(scenario, results), { columns: true }) as Record<string, string>[];
    expect(rows.map((r) => [r.candidate_id, r.name, r.total_points, r.percent, r.passed, r['check:b'], r['manual:cr'], r['fault:dns']])).toEqual([
      ['zoe', "Zoé N'Diaye", '10.50', '100', 'yes', '3.50', '5', 'hosts'],
      ['hack', `'=HYPERLINK("http://evil","clic")`, '3.50', '33.33', 'no', '3.50', '0', 'resolveur'],
      ['eloise', "Éloïse d'Artagnan", '0', '0', 'no', '', '', ''],
    ]);
  });

  test('excel-fr: UTF-8 BOM, ";", decimal commas, CRLF; the same table', () => {
    const text = resultsCsv(scenario, results, 'excel-fr');
    expect(text.startsWith('\uFEFFcandidate_id;name;email;')).toBe(true);
    expect(text.split('\r\n')).toHaveLength(results.length + 2);
    const rows = parse(text, { bom: true, delimiter: ';', columns: true }) as Record<string, string>[];
    expect(rows.map((r) => [r.name, r.total_points, r.max_points, r.percent, r['check:b']])).toEqual([
      ["Zoé N'Diaye", '10,50', '10,50', '100', '3,50'],
      [`'=HYPERLINK("http://evil","clic")`, '3,50', '10,50', '33,33', '3,50'],
      ["Éloïse d'Artagnan", '0', '10,50', '0', ''],
    ]);
  });

  test('what counts as a formula', () => {
    expect(['=1+1', '+33 6', '-2', '@SUM(A1)', '\tx', '\rx', 'Zoé', "N'Diaye", ' =1'].map(neutraliseFormula)).toEqual([
      "'=1+1", "'+33 6", "'-2", "'@SUM(A1)", "'\tx", "'\rx", 'Zoé', "N'Diaye", ' =1',
    ]);
  });
});

describe('results as an XLSX workbook', () => {
  let workbook: ExcelJS.Workbook;
  beforeAll(async () => {
    workbook = new ExcelJS.Workbook();
    await workbook.xlsx.load((await resultsXlsx(exam, scenario, results)) as unknown as Parameters<typeof workbook.xlsx.load>[0]);
  });
  const rowsOf = (name: string) => {
    const sheet = workbook.getWorksheet(name);
    if (!sheet) throw new Error(`no sheet ${name}`);
    const rows: ExcelJS.CellValue[][] = [];
    sheet.eachRow((row) => rows.push((row.values as ExcelJS.CellValue[]).slice(1)));
    return rows;
  };

  test('the sheets, in the exam\'s language', () => {
    expect(workbook.worksheets.map((s) => s.name)).toEqual(['Candidats', 'Vérifications', 'Notes du jury', 'Épreuve']);
  });

  test('candidates: points, percent, verdict and competencies as numbers; the grading date as a date in the exam\'s time zone', () => {
    const [header, zoe, hack, eloise] = rowsOf('Candidats');
    expect(header).toEqual(['Identifiant', 'Nom', 'Courriel', 'Points', 'Sur', '%', 'Résultat', 'Définitif', 'Automatique', 'Jury', 'C1 – Diagnostiquer', 'C2 – Sécuriser', 'Résolution DNS cassée', 'Notée le']);
    // 20:27:01 UTC is 22:27:01 in Paris in June (UTC+2): the cell shows the room's clock.
    expect(zoe).toEqual(['zoe', "Zoé N'Diaye", 'zoe@example.fr', 10.5, 10.5, 100, 'ACQUIS', 'oui', 5.5, 5, 7, 3.5, 'hosts – Une entrée fausse dans /etc/hosts', new Date(Date.UTC(2025, 5, 12, 22, 27, 1))]);
    expect(hack?.slice(0, 8)).toEqual(['hack', `'=HYPERLINK("http://evil","clic")`, undefined, 3.5, 10.5, 33.33, 'NON ACQUIS', 'oui']);
    expect(eloise?.slice(0, 8)).toEqual(['eloise', "Éloïse d'Artagnan", undefined, 0, 10.5, 0, 'NON ACQUIS', 'non']);
    const sheet = workbook.getWorksheet('Candidats');
    expect(sheet?.getCell('N2').numFmt).toBe('dd/mm/yyyy hh:mm');
    expect(sheet?.getCell('D2').type).toBe(ExcelJS.ValueType.Number);
    expect(sheet?.getCell('B3').type).toBe(ExcelJS.ValueType.String);
  });

  test('checks: one row per candidate and check, with expected and actual; text that looks like a formula stays text', () => {
    const [header, ...rows] = rowsOf('Vérifications');
    expect(header).toEqual(['Identifiant', 'Nom', 'Vérification', 'Intitulé', 'Compétence', 'Machine', 'Statut', 'Points', 'Sur', 'Attendu', 'Constaté', 'Message']);
    expect(rows.map((r) => [r[0], r[2], r[6], r[7], r[8], r[9], r[10]])).toEqual([
      ['zoe', 'a', 'réussi', 2, 2, 'mode 2770', 'mode 2770'],
      ['zoe', 'b', 'réussi', 3.5, 3.5, 'mode 2770', 'ok'],
      ['hack', 'a', 'échoué', 0, 2, 'mode 2770', "'-rw-r--r-- root"],
      ['hack', 'b', 'réussi', 3.5, 3.5, 'mode 2770', "'@SUM(1)"],
      ['eloise', 'a', 'non noté', undefined, 2, '', ''],
      ['eloise', 'b', 'non noté', undefined, 3.5, '', ''],
    ]);
  });

  test("the jury's marks and comments, who marked and when; unmarked criteria show as such", () => {
    const [header, ...rows] = rowsOf('Notes du jury');
    expect(header).toEqual(['Identifiant', 'Nom', 'Critère', 'Intitulé', 'Compétence', 'Niveau', 'Points', 'Sur', 'Commentaire', 'Noté par', 'Noté le']);
    expect(rows).toEqual([
      ['zoe', "Zoé N'Diaye", 'cr', "Compte rendu d'intervention", 'C1', 'Complet et clair', 5, 5, 'Très clair, bien structuré', 'jury:dupont', new Date(Date.UTC(2025, 5, 12, 23, 5))],
      ['hack', `'=HYPERLINK("http://evil","clic")`, 'cr', "Compte rendu d'intervention", 'C1', 'Absent', 0, 5, `'+cmd|" /C calc"!A0`, 'jury:dupont', new Date(Date.UTC(2025, 5, 12, 23, 5))],
      ['eloise', "Éloïse d'Artagnan", 'cr', "Compte rendu d'intervention", 'C1', 'à noter', undefined, 5],
    ]);
  });

  test('no cell of the workbook is a formula', () => {
    const types = workbook.worksheets.flatMap((sheet) => {
      const found: ExcelJS.ValueType[] = [];
      sheet.eachRow((row) => row.eachCell((cell) => found.push(cell.type)));
      return found;
    });
    expect(types.length).toBeGreaterThan(50);
    expect(types).not.toContain(ExcelJS.ValueType.Formula);
  });

  test('in English for an English scenario', async () => {
    const english = new ExcelJS.Workbook();
    await english.xlsx.load((await resultsXlsx(exam, { ...scenario, language: 'en' }, results)) as unknown as Parameters<typeof english.xlsx.load>[0]);
    expect(english.worksheets.map((s) => s.name)).toEqual(['Candidates', 'Checks', 'Jury marks', 'Exam']);
    expect(english.getWorksheet('Candidates')?.getCell('G2').value).toBe('PASSED');
  });
});

describe('the printable report', () => {
  test("dates in the exam's time zone on a 24-hour clock, decimal commas in French", () => {
    const zoe = { ...(results[0] as CandidateResult), report: { examId: exam.id, candidateId: 'zoe', diagnosis: 'DNS', actions: 'corrigé', result: 'ok', revision: 1, submittedAt: '2025-12-01T16:05:00.000Z' } };
    const html = candidateReportHtml(exam, scenario, zoe);
    expect(html).toContain('notée le 12/06/2025 22:27');
    expect(html).toContain('déposée le 01/12/2025 17:05');
    expect(html).toContain('Total: <b>10,50 / 10,50</b>');
    expect(html).not.toMatch(/\b(AM|PM)\b/);
    // The variant of each fault pool the candidate faced.
    expect(html).toContain('Pannes tirées: Résolution DNS cassée: <b>Une entrée fausse dans /etc/hosts</b> (hosts)');
    const english = candidateReportHtml({ ...exam, timeZone: 'America/Cayenne' }, { ...scenario, language: 'en' }, zoe);
    expect(english).toContain('graded at 12/06/2025, 17:27');
    expect(english).toContain('Total: <b>10.50 / 10.50</b>');
  });
});

describe('the audit anchor on every export', () => {
  const anchor = { seq: 42, digest: '1a2b3c4d5e6f7a8b', text: '42:1a2b3c4d5e6f7a8b' };
  const examSheet = async (a?: typeof anchor, language: 'fr' | 'en' = 'fr') => {
    const book = new ExcelJS.Workbook();
    await book.xlsx.load((await resultsXlsx(exam, { ...scenario, language }, results, a)) as unknown as Parameters<typeof book.xlsx.load>[0]);
    const rows: ExcelJS.CellValue[][] = [];
    book.getWorksheet(language === 'fr' ? 'Épreuve' : 'Exam')?.eachRow((row) => rows.push((row.values as ExcelJS.CellValue[]).slice(1)));
    return rows;
  };

  test("the workbook's exam sheet says the head the chain had when it was made", async () => {
    expect((await examSheet(anchor)).at(-1)).toEqual(["Ancre du journal d'audit", '42:1a2b3c4d5e6f7a8b (enregistrement:empreinte, à vérifier par GET /api/audit?anchor=)']);
    expect((await examSheet(anchor, 'en')).at(-1)).toEqual(['Audit anchor', '42:1a2b3c4d5e6f7a8b (record:digest, check it with GET /api/audit?anchor=)']);
    // Not anchored: said, not left out.
    expect((await examSheet(undefined, 'en')).at(-1)).toEqual(['Audit anchor', 'none (the audit log is not anchored: see GET /api/audit)']);
  });

  test('the printable report ends with it', () => {
    const html = candidateReportHtml(exam, scenario, results[0] as CandidateResult, anchor);
    expect(html).toContain(`<p class="anchor">Ancre du journal d&#39;audit: 42:1a2b3c4d5e6f7a8b (enregistrement:empreinte, à vérifier par GET /api/audit?anchor=)</p>`);
    expect(candidateReportHtml(exam, { ...scenario, language: 'en' }, results[0] as CandidateResult)).toContain('Audit anchor: none');
  });
});
