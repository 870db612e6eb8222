import { actorOf } from '../../access/index.js';
import { checkRosterJson, importReport, parseRosterText, readRosterFile } from '../../exams/index.js';
import type { StartPolicy } from '../../exams/index.js';
import type { ServerDeps } from '../deps.js';
import { RequestError, route, type Route } from '../route.js';
import { createExamBody, examParams, ROSTER_FILE_TYPES, rosterBody, rosterCheckQuery } from '../schemas.js';

/** Exams as a whole: create, list, read with progress, roster, start, end, release the kept labs. */
export function examRoutes(deps: ServerDeps): Route[] {
  const { service, reader } = deps;
  const summary = (examId: string) => reader.summary(examId);
  const withAccess = (tokens: { id: string; name: string; token: string }[]) =>
    tokens.map((t) => ({ ...t, ssh: deps.access.sshCommand(t.id) }));

  return [
    route({
      method: 'post',
      path: '/api/exams',
      tag: 'exams',
      summary: 'Create an exam from a scenario and a roster',
      description:
        'Returns the exam and, once only, each candidate\'s access token with the SSH command that opens their lab. With start "now" the labs are built at once.',
      access: ['operator'],
      body: createExamBody,
      success: { status: 201, description: 'The exam, and the candidates\' tokens (shown once)' },
      errors: [413, 422],
      async handle({ body, principal }) {
        const file =
          body.rosterFile !== undefined
            ? await readRosterFile(Buffer.from(body.rosterFile, 'base64'), 'rosterFile')
            : body.rosterCsv !== undefined
              ? parseRosterText(body.rosterCsv, 'rosterCsv')
              : undefined;
        const roster = file ? file.entries : checkRosterJson(body.candidates ?? []);
        const start: StartPolicy = typeof body.start === 'string' ? { policy: body.start } : { policy: 'at', at: body.start.at };
        const { exam, tokens } = await service.create(
          {
            title: body.title,
            scenario: body.scenario !== undefined ? { name: body.scenario } : { yaml: body.scenarioYaml as string },
            roster,
            durationMs: body.duration,
            start,
            prepare: body.prepare,
            spares: body.spares,
            autoFreeze: body.end.autoFreeze,
            keepLabs: body.end.keepLabs,
            mode: body.mode,
            timeZone: body.timeZone,
          },
          actorOf(principal),
        );
        return { exam: summary(exam.id), candidates: withAccess(tokens), ...(file ? { roster: importReport(file) } : {}) };
      },
    }),
    route({
      method: 'get',
      path: '/api/exams',
      tag: 'exams',
      summary: 'List exams with their progress',
      access: ['operator', 'jury'],
      success: { status: 200, description: 'Every exam' },
      handle: () => ({ exams: reader.summaries() }),
    }),
    route({
      method: 'get',
      path: '/api/exams/:examId',
      tag: 'exams',
      summary: 'An exam: status, progress (per lab and overall) and candidates',
      access: ['operator', 'jury'],
      params: examParams,
      success: { status: 200, description: 'The exam' },
      errors: [404],
      handle: ({ params }) => summary(params.examId),
    }),
    route({
      method: 'put',
      path: '/api/exams/:examId/candidates',
      tag: 'exams',
      summary: 'Replace the roster of an exam that has not started',
      description:
        "JSON (a list of {id, name, email?}), or the roster file as the centre's system exported it: CSV (UTF-8 or Windows-1252; \";\", \",\" or tab) or XLSX. A file's rows that cannot be used are left out and listed in `roster.rejected`. Every candidate gets a new token.",
      access: ['operator'],
      params: examParams,
      body: rosterBody,
      rawBody: {
        contentTypes: ROSTER_FILE_TYPES,
        description: 'A header row (identifier; last and first name, or full name; optionally email; in French or English; title rows above it are skipped), then one candidate per row',
      },
      success: { status: 200, description: "The candidates' tokens (shown once), and for a file what was read from it" },
      errors: [404, 409, 413, 422],
      async handle({ params, body, raw, principal }) {
        const file = raw ? await readRosterFile(raw.bytes, 'roster') : undefined;
        const roster = file ? file.entries : checkRosterJson(body ?? []);
        return { candidates: withAccess(service.setRoster(params.examId, roster, actorOf(principal))), ...(file ? { roster: importReport(file) } : {}) };
      },
    }),
    route({
      method: 'post',
      path: '/api/exams/:examId/prepare',
      tag: 'exams',
      summary: 'Prepare the exam before its start: every lab built, broken and verified while candidates are locked out',
      description: 'Each lab then waits ready (`byPhase.ready`), no clock running. The start (POST .../start, or the scheduled time) opens every ready lab at once and starts every clock then.',
      access: ['operator'],
      params: examParams,
      success: { status: 202, description: 'Being prepared; follow the progress with GET /api/exams/{examId}' },
      errors: [404, 409],
      async handle({ params, principal }) {
        await service.checkRoom(params.examId);
        service.prepare(params.examId, actorOf(principal));
        return summary(params.examId);
      },
    }),
    route({
      method: 'post',
      path: '/api/exams/:examId/start',
      tag: 'exams',
      summary: 'Start the exam: open every prepared lab now, build the others (in the background)',
      access: ['operator'],
      params: examParams,
      success: { status: 202, description: 'Started; follow the progress with GET /api/exams/{examId}' },
      errors: [404, 409],
      async handle({ params, principal }) {
        await service.checkRoom(params.examId);
        service.start(params.examId, actorOf(principal));
        return summary(params.examId);
      },
    }),
    route({
      method: 'post',
      path: '/api/exams/:examId/end',
      tag: 'exams',
      summary: "End the exam for everyone: access cut now; labs frozen and graded (in the background)",
      access: ['operator'],
      params: examParams,
      success: { status: 202, description: 'Ending; the exam is ended once every lab is graded' },
      errors: [404, 409],
      handle({ params, principal }) {
        service.end(params.examId, actorOf(principal));
        return summary(params.examId);
      },
    }),
    route({
      method: 'delete',
      path: '/api/exams/:examId/labs',
      tag: 'exams',
      summary: "Destroy the labs kept after an ended exam (results stay)",
      access: ['operator'],
      params: examParams,
      success: { status: 200, description: 'The labs destroyed' },
      errors: [404, 409],
      async handle({ params, principal }) {
        return { destroyed: await service.releaseLabs(params.examId, actorOf(principal)) };
      },
    }),
    route({
      method: 'post',
      path: '/api/roster/check',
      tag: 'exams',
      summary: 'Read a roster file as an exam would, changing nothing',
      description:
        "The file as the centre's system exported it (CSV or XLSX, as for PUT /api/exams/{id}/candidates): the candidates read, the rows left out with their line and why, and how the file was understood. The pages show it before an exam is created.",
      access: ['operator'],
      query: rosterCheckQuery,
      rawBody: {
        contentTypes: ROSTER_FILE_TYPES,
        description: 'A header row (identifier; last and first name, or full name; optionally email; in French or English; title rows above it are skipped), then one candidate per row',
      },
      success: { status: 200, description: 'The candidates read and the import report' },
      errors: [413, 422],
      async handle({ raw, query }) {
        if (!raw) throw new RequestError(`send the roster file as the body, with one of the types ${ROSTER_FILE_TYPES.join(', ')}`, [{ where: 'body', message: 'required' }]);
        const file = await readRosterFile(raw.bytes, query.name ?? 'roster');
        return { candidates: file.entries, ...importReport(file) };
      },
    }),
    route({
      method: 'get',
      path: '/api/scenarios',
      tag: 'exams',
      summary: 'Scenarios an exam can be made from',
      access: ['operator', 'jury'],
      success: { status: 200, description: 'Scenario names' },
      handle: () => ({ scenarios: service.scenarioNames() }),
    }),
  ];
}

