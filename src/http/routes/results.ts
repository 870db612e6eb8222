import { AUDIT_ANCHOR_HEADER, candidateReportHtml, resultsCsv, resultsXlsx, XLSX_CONTENT_TYPE } from '../../exams/index.js';
import type { ServerDeps } from '../deps.js';
import { RawReply, route, type Route } from '../route.js';
import { candidateParams, examParams, resultsCsvQuery } from '../schemas.js';

/** Results for the jury: JSON, CSV, an XLSX workbook, and a printable page per candidate; each carries the audit chain's anchored head. */
export function resultRoutes(deps: ServerDeps): Route[] {
  const { service, reader, audit } = deps;
  const scenarioOf = (examId: string) => service.scenarioOf(reader.exam(examId)).scenario;
  return [
    route({
      method: 'get',
      path: '/api/exams/:examId/results',
      tag: 'results',
      summary: 'Results: per candidate, competency and check (expected, actual, evidence), automatic and manual points apart',
      access: ['operator', 'jury'],
      params: examParams,
      success: { status: 200, description: 'The results (the JSON export)' },
      errors: [404],
      handle({ params }) {
        const exam = reader.exam(params.examId);
        const scenario = scenarioOf(exam.id);
        return {
          exam: { id: exam.id, title: exam.title, status: exam.status, mode: exam.mode, startedAt: exam.startedAt, endedAt: exam.endedAt },
          scenario: {
            id: scenario.id,
            title: scenario.title,
            ccp: scenario.ccp,
            passMark: scenario.passMark,
            competencies: scenario.competencies,
            manualCriteria: scenario.manualCriteria,
            // Each candidate's `faults` names an option of these (no steps: how a fault is made stays with the scenario).
            faultPools: scenario.faultPools.map((p) => ({ id: p.id, title: p.title, options: p.options.map((o) => ({ id: o.id, title: o.title })) })),
          },
          candidates: service.results(exam.id),
          audit: { anchor: audit.head() ?? null },
        };
      },
    }),
    route({
      method: 'get',
      path: '/api/exams/:examId/results.csv',
      tag: 'results',
      summary: 'Results as CSV: one row per candidate, one column per check, manual criterion and competency',
      description: `dialect=excel-fr gives the same table as Excel on French Windows opens it: ";" separators, decimal commas, a UTF-8 BOM. The audit chain's anchored head (record:digest) is in the ${AUDIT_ANCHOR_HEADER} response header ("none" when the log is not anchored).`,
      access: ['operator', 'jury'],
      params: examParams,
      query: resultsCsvQuery,
      success: { status: 200, description: 'CSV', contentType: 'text/csv' },
      errors: [404],
      handle({ params, query }) {
        const scenario = scenarioOf(params.examId);
        const csv = resultsCsv(scenario, service.results(params.examId), query.dialect);
        return new RawReply('text/csv; charset=utf-8', csv, `results-${params.examId}.csv`, { [AUDIT_ANCHOR_HEADER]: audit.head()?.text ?? 'none' });
      },
    }),
    route({
      method: 'get',
      path: '/api/exams/:examId/results.xlsx',
      tag: 'results',
      summary: "Results as an Excel workbook in the exam's language: candidates (points, percent, verdict, per competency), checks with expected and actual, the jury's marks and comments",
      access: ['operator', 'jury'],
      params: examParams,
      success: { status: 200, description: 'XLSX', contentType: XLSX_CONTENT_TYPE },
      errors: [404],
      async handle({ params }) {
        const exam = reader.exam(params.examId);
        const xlsx = await resultsXlsx(exam, scenarioOf(exam.id), service.results(exam.id), audit.head());
        return new RawReply(XLSX_CONTENT_TYPE, xlsx, `results-${exam.id}.xlsx`);
      },
    }),
    route({
      method: 'get',
      path: '/api/exams/:examId/candidates/:candidateId/result',
      tag: 'results',
      summary: "One candidate's result",
      access: ['operator', 'jury'],
      params: candidateParams,
      success: { status: 200, description: 'The result' },
      errors: [404],
      handle: ({ params }) => service.result(params.examId, params.candidateId),
    }),
    route({
      method: 'get',
      path: '/api/exams/:examId/candidates/:candidateId/report.html',
      tag: 'results',
      summary: "A printable report of one candidate's result for the jury, with their intervention report",
      access: ['operator', 'jury'],
      params: candidateParams,
      success: { status: 200, description: 'HTML', contentType: 'text/html' },
      errors: [404],
      handle({ params }) {
        const exam = reader.exam(params.examId);
        const html = candidateReportHtml(exam, scenarioOf(exam.id), service.result(params.examId, params.candidateId), audit.head());
        return new RawReply('text/html; charset=utf-8', html);
      },
    }),
  ];
}
