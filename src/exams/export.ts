import { stringify } from 'csv-stringify/sync';
import type { PrintedAnchor } from '../audit/index.js';
import type { Scenario } from '../scenario/index.js';
import { formatDateTime, type DateStyle, type Language } from '../util/dates.js';
import type { ExamRecord } from './exam-store.js';
import type { CandidateResult } from './results.js';
import { formatPoints as fmt, neutraliseFormula, type CsvDialect } from './spreadsheet.js';

/**
 * One row per candidate; one column per check, per manual criterion and
 * per competency (points), after the totals. Unmarked criteria and
 * ungraded checks are empty cells, not zeros. The `excel-fr` dialect is
 * the same table as French Excel opens it: ";" between cells, decimal
 * commas, a UTF-8 BOM (so accents are read right) and CRLF line ends.
 */
export function resultsCsv(
  scenario: Pick<Scenario, 'checks' | 'manualCriteria' | 'competencies' | 'faultPools'>,
  results: readonly CandidateResult[],
  dialect: CsvDialect = 'plain',
): string {
  const excel = dialect === 'excel-fr';
  const num = (n: number) => fmt(n, excel);
  const text = (s: string | undefined) => neutraliseFormula(s ?? '');
  const header = [
    'candidate_id',
    'name',
    'email',
    'phase',
    'total_points',
    'max_points',
    'percent',
    'passed',
    'complete',
    'auto_points',
    'manual_points',
    ...scenario.checks.map((c) => `check:${c.id}`),
    ...scenario.manualCriteria.map((m) => `manual:${m.id}`),
    ...scenario.competencies.map((c) => `competency:${c.id}`),
    ...scenario.faultPools.map((p) => `fault:${p.id}`),
  ];
  const rows = results.map((r) => [
    text(r.candidate.id),
    text(r.candidate.name),
    text(r.candidate.email),
    r.phase,
    num(r.total.points),
    num(r.total.maxPoints),
    num(r.total.percent),
    r.total.passed ? 'yes' : 'no',
    r.complete ? 'yes' : 'no',
    num(r.auto.points),
    num(r.manual.points),
    ...scenario.checks.map((c) => {
      const line = r.checks.find((l) => l.id === c.id);
      return !line || line.status === 'not-graded' ? '' : num(line.points);
    }),
    ...scenario.manualCriteria.map((m) => {
      const line = r.manualCriteria.find((l) => l.id === m.id);
      return line?.status === 'marked' ? num(line.points) : '';
    }),
    ...scenario.competencies.map((c) => num(r.competencies.find((l) => l.id === c.id)?.points ?? 0)),
    ...scenario.faultPools.map((p) => r.faults[p.id] ?? ''),
  ]);
  return stringify([header, ...rows], excel ? { delimiter: ';', bom: true, record_delimiter: 'windows' } : {});
}

/** The response header that carries the audit anchor on a CSV export (a CSV has no room for a comment line). */
export const AUDIT_ANCHOR_HEADER = 'X-Examlab-Audit-Anchor';

/**
 * The audit chain's head as printed on an export: a jury keeping the paper
 * can later give it to `GET /api/audit?anchor=` and learn whether the log
 * still holds that record unchanged.
 */
export function anchorLine(language: Language, anchor: PrintedAnchor | undefined): string {
  return `${WORDS[language].anchor}: ${anchorValue(language, anchor)}`;
}

/** The anchor without its label, for a cell. */
export function anchorValue(language: Language, anchor: PrintedAnchor | undefined): string {
  const w = WORDS[language];
  return anchor ? `${anchor.text} (${w.anchorHow})` : w.noAnchor;
}

/** A check's or criterion's status in words of the exam's language. */
export function statusWord(language: Language, status: string): string {
  return WORDS[language].status[status] ?? status;
}

const esc = (text: string | undefined) =>
  (text ?? '').replace(/[&<>"']/g, (ch) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[ch] as string);

/** The report speaks the scenario's language. */
const WORDS = {
  fr: {
    status: { pass: 'réussi', fail: 'échoué', error: 'indécis', skipped: 'non évalué', 'not-graded': 'non noté', marked: 'noté', unmarked: 'à noter' } as Record<string, string>,
    candidate: 'Candidat',
    scenario: 'Mise en situation',
    session: 'session',
    gradedAt: 'notée le',
    total: 'Total',
    passMark: 'seuil',
    passed: 'ACQUIS',
    notPassed: 'NON ACQUIS',
    of: 'dont automatique',
    jury: 'et jury',
    provisional: 'Résultat provisoire',
    variant: 'Pannes tirées',
    notGraded: 'pas encore noté',
    undecided: 'vérifications indécises (à renoter) : ',
    unmarked: 'critères à noter : ',
    competencies: 'Compétences',
    code: 'code',
    competency: 'compétence',
    auto: 'automatique',
    juryCol: 'jury',
    totalCol: 'total',
    checks: 'Vérifications automatiques',
    check: 'vérification',
    statusCol: 'statut',
    points: 'points',
    expectedActual: 'attendu / constaté',
    expected: 'attendu',
    actual: 'constaté',
    evidence: 'preuve',
    hidden: 'caché',
    manual: 'Critères notés par le jury',
    criterion: 'critère',
    level: 'niveau',
    comment: 'commentaire',
    noManual: 'Aucun critère manuel.',
    report: "Compte rendu d'intervention du candidat",
    revision: 'version',
    submitted: 'déposée le',
    diagnosis: 'Diagnostic',
    actions: 'Actions menées',
    result: 'Résultat',
    noReport: 'Aucun compte rendu déposé.',
    anchor: "Ancre du journal d'audit",
    anchorHow: 'enregistrement:empreinte, à vérifier par GET /api/audit?anchor=',
    noAnchor: "aucune (le journal d'audit n'est pas ancré : voir GET /api/audit)",
  },
  en: {
    status: { pass: 'pass', fail: 'fail', error: 'undecided', skipped: 'skipped', 'not-graded': 'not graded', marked: 'marked', unmarked: 'to mark' } as Record<string, string>,
    candidate: 'Candidate',
    scenario: 'Scenario',
    session: 'session',
    gradedAt: 'graded at',
    total: 'Total',
    passMark: 'pass mark',
    passed: 'PASSED',
    notPassed: 'NOT PASSED',
    of: 'automatic',
    jury: 'and jury',
    provisional: 'Provisional result',
    variant: 'Faults drawn',
    notGraded: 'not graded yet',
    undecided: 'checks that could not be decided (regrade): ',
    unmarked: 'manual criteria not marked yet: ',
    competencies: 'Competencies',
    code: 'code',
    competency: 'competency',
    auto: 'automatic',
    juryCol: 'jury',
    totalCol: 'total',
    checks: 'Automatic checks',
    check: 'check',
    statusCol: 'status',
    points: 'points',
    expectedActual: 'expected / actual',
    expected: 'expected',
    actual: 'actual',
    evidence: 'evidence',
    hidden: 'hidden',
    manual: 'Criteria marked by the jury',
    criterion: 'criterion',
    level: 'level',
    comment: 'comment',
    noManual: 'No manual criteria.',
    report: "Candidate's intervention report",
    revision: 'revision',
    submitted: 'submitted at',
    diagnosis: 'Diagnosis',
    actions: 'Actions',
    result: 'Result',
    noReport: 'No report submitted.',
    anchor: 'Audit anchor',
    anchorHow: 'record:digest, check it with GET /api/audit?anchor=',
    noAnchor: 'none (the audit log is not anchored: see GET /api/audit)',
  },
};

/** A printable page for the jury: totals, every check with expected and actual, the manual marks, the candidate's report. */
export function candidateReportHtml(
  exam: ExamRecord,
  scenario: Pick<Scenario, 'title' | 'ccp' | 'language' | 'faultPools'>,
  result: CandidateResult,
  anchor?: PrintedAnchor,
): string {
  const r = result;
  const language: Language = scenario.language === 'en' ? 'en' : 'fr';
  const w = WORDS[language];
  const dates: DateStyle = { language, timeZone: exam.timeZone };
  const num = (n: number) => fmt(n, language === 'fr');
  const pts = (p: { points: number; maxPoints: number }) => `${num(p.points)} / ${num(p.maxPoints)}`;
  const undecided = r.checks.filter((c) => c.status === 'error').map((c) => c.id);
  const unmarked = r.manualCriteria.filter((m) => m.status === 'unmarked').map((m) => m.id);
  const pending = [
    ...(r.runId ? [] : [w.notGraded]),
    ...(undecided.length ? [w.undecided + undecided.join(', ')] : []),
    ...(unmarked.length ? [w.unmarked + unmarked.join(', ')] : []),
  ];
  const checkRows = r.checks
    .map(
      (c) => `<tr class="${esc(c.status)}"><td>${esc(c.id)}${c.hidden ? ` <small>(${w.hidden})</small>` : ''}</td><td>${esc(c.title)}</td><td>${esc(w.status[c.status] ?? c.status)}</td><td class="n">${pts(c)}</td>
<td><div><b>${w.expected}:</b> ${esc(c.expected)}</div><div><b>${w.actual}:</b> ${esc(c.actual)}</div>${c.message ? `<div><i>${esc(c.message)}</i></div>` : ''}${c.evidence ? `<details><summary>${w.evidence}</summary><pre>${esc(c.evidence)}</pre></details>` : ''}</td></tr>`,
    )
    .join('\n');
  const manualRows = r.manualCriteria
    .map(
      (m) => `<tr class="${esc(m.status)}"><td>${esc(m.id)}</td><td>${esc(m.title)}</td><td>${esc(m.levelTitle ?? w.status[m.status])}</td><td class="n">${m.status === 'marked' ? pts(m) : `– / ${num(m.maxPoints)}`}</td><td>${esc(m.comment)}${m.markedBy ? ` <small>(${esc(m.markedBy)})</small>` : ''}</td></tr>`,
    )
    .join('\n');
  // Which variant of each fault pool this candidate faced: the jury compares like with like.
  const drawn = scenario.faultPools
    .map((p) => ({ pool: p, option: p.options.find((o) => o.id === r.faults[p.id]) }))
    .filter((d) => d.option)
    .map((d) => `${esc(d.pool.title)}: <b>${esc(d.option?.title)}</b> (${esc(d.option?.id)})`);
  const competencyRows = r.competencies
    .map((c) => `<tr><td>${esc(c.id)}</td><td>${esc(c.title)}</td><td class="n">${pts(c.auto)}</td><td class="n">${pts(c.manual)}</td><td class="n"><b>${pts(c)}</b></td></tr>`)
    .join('\n');
  const report = r.report
    ? `<h2>${w.report}</h2><p><small>${w.revision} ${r.report.revision}, ${w.submitted} ${esc(formatDateTime(r.report.submittedAt, dates))}</small></p>
<h3>${w.diagnosis}</h3><pre class="text">${esc(r.report.diagnosis)}</pre><h3>${w.actions}</h3><pre class="text">${esc(r.report.actions)}</pre><h3>${w.result}</h3><pre class="text">${esc(r.report.result)}</pre>`
    : `<h2>${w.report}</h2><p>${w.noReport}</p>`;
  return `<!doctype html>
<html lang="${language}"><head><meta charset="utf-8"><title>${esc(r.candidate.name)} – ${esc(exam.title)}</title>
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:2em;color:#111}h1{font-size:20px}h2{font-size:16px;margin-top:1.6em;border-bottom:1px solid #999}
table{border-collapse:collapse;width:100%}td,th{border:1px solid #bbb;padding:4px 6px;vertical-align:top;text-align:left}td.n{text-align:right;white-space:nowrap}
tr.fail td:nth-child(3),tr.error td:nth-child(3),tr.unmarked td:nth-child(3){font-weight:bold}pre{white-space:pre-wrap;margin:0}pre.text{border:1px solid #ddd;padding:6px}
.total{font-size:16px}.pending{color:#a00}.anchor{margin-top:2em;color:#444;font-size:11px}@media print{details{display:none}body{margin:1cm}}
</style></head><body>
<h1>${esc(exam.title)}</h1>
<p>${w.candidate}: <b>${esc(r.candidate.name)}</b> (${esc(r.candidate.id)}${r.candidate.email ? `, ${esc(r.candidate.email)}` : ''})<br>
${w.scenario}: ${esc(scenario.title)} (${esc(scenario.ccp)}) – ${w.session} ${esc(exam.id)}${r.gradedAt ? ` – ${w.gradedAt} ${esc(formatDateTime(r.gradedAt, dates))}` : ''}</p>
<p class="total">${w.total}: <b>${pts(r.total)}</b> (${num(r.total.percent)} %, ${w.passMark} ${num(r.total.passMark)} %): <b>${r.total.passed ? w.passed : w.notPassed}</b><br>
${w.of} ${pts(r.auto)} ${w.jury} ${pts(r.manual)}</p>
${drawn.length ? `<p>${w.variant}: ${drawn.join('; ')}</p>` : ''}
${pending.length ? `<p class="pending">${w.provisional}: ${pending.map(esc).join('; ')}</p>` : ''}
<h2>${w.competencies}</h2><table><tr><th>${w.code}</th><th>${w.competency}</th><th>${w.auto}</th><th>${w.juryCol}</th><th>${w.totalCol}</th></tr>${competencyRows}</table>
<h2>${w.checks}</h2><table><tr><th>id</th><th>${w.check}</th><th>${w.statusCol}</th><th>${w.points}</th><th>${w.expectedActual}</th></tr>${checkRows}</table>
<h2>${w.manual}</h2>${manualRows ? `<table><tr><th>id</th><th>${w.criterion}</th><th>${w.level}</th><th>${w.points}</th><th>${w.comment}</th></tr>${manualRows}</table>` : `<p>${w.noManual}</p>`}
${report}
<p class="anchor">${esc(anchorLine(language, anchor))}</p>
</body></html>
`;
}
