import { actorOf, type Principal } from '../../access/index.js';
import { ConflictError } from '../../util/errors.js';
import type { CandidatePhase } from '../../exams/index.js';
import { candidateRunView, remainingSeconds } from '../../exams/index.js';
import type { ServerDeps } from '../deps.js';
import { route, type Route } from '../route.js';
import { reportBody } from '../schemas.js';

type CandidatePrincipal = Extract<Principal, { kind: 'candidate' }>;

const STATUS_FOR_CANDIDATE: Record<CandidatePhase, string> = {
  waiting: 'the exam has not started',
  provisioning: 'your lab is being prepared',
  ready: 'your lab is ready; access opens at the start',
  active: 'your lab is ready',
  failed: 'your lab could not be prepared; the exam supervisor has been told',
  ending: 'your exam is over',
  ended: 'your exam is over',
};

/**
 * A candidate's own view, and nothing else: their lab, their time, their
 * instructions and report. Never the checks' definitions, never another
 * candidate: everything is looked up from the token, no id is taken from
 * the request.
 */
export function meRoutes(deps: ServerDeps): Route[] {
  const { service, reader } = deps;
  const me = (principal: Principal) => principal as CandidatePrincipal;
  return [
    route({
      method: 'get',
      path: '/api/me',
      tag: 'candidate',
      summary: 'The candidate: their exam, time left, lab state, how to connect, instructions',
      access: ['candidate'],
      success: { status: 200, description: 'The candidate view' },
      handle({ principal }) {
        const { examId, candidateId } = me(principal);
        const { exam, candidate: c, lab, active, report } = reader.candidateHome(examId, candidateId);
        return {
          exam: { id: exam.id, title: exam.title, mode: exam.mode, language: service.scenarioOf(exam).scenario.language, timeZone: exam.timeZone },
          candidate: { id: c.id, name: c.name },
          phase: c.phase,
          // Not the operator's detail: it may quote setup output or check ids.
          status: STATUS_FOR_CANDIDATE[c.phase],
          deadline: c.deadline,
          remainingSeconds: remainingSeconds(c.deadline, reader.now()),
          /** The daemon's clock: the page counts down from it, not from the PC's own. */
          serverTime: new Date(reader.now()).toISOString(),
          lab: lab ? { state: lab.state } : undefined,
          access: active
            ? {
                machines: active.logins.map((m, i) => ({ ...m, ssh: deps.access.sshCommand(c.id, i === 0 ? undefined : m.name) })),
                sudoPassword: active.sudoPassword,
              }
            : undefined,
          instructions: active?.instructions ?? null,
          /** The instructions in each language the scenario has (the candidate may pick). */
          instructionsByLanguage: active?.instructionsByLanguage ?? {},
          /** Each terminal session is recorded (output and keystrokes) for the jury. */
          recorded: true,
          report,
        };
      },
    }),
    route({
      method: 'get',
      path: '/api/me/report',
      tag: 'candidate',
      summary: "The candidate's intervention report as last submitted",
      access: ['candidate'],
      success: { status: 200, description: 'The report, or null' },
      handle: ({ principal }) => ({ report: reader.report(me(principal).examId, me(principal).candidateId) ?? null }),
    }),
    route({
      method: 'put',
      path: '/api/me/report',
      tag: 'candidate',
      summary: 'Submit (or replace) the written intervention report: diagnosis, actions, result',
      access: ['candidate'],
      body: reportBody,
      success: { status: 200, description: 'The stored report, with its revision' },
      errors: [409, 413],
      handle: ({ principal, body }) => service.submitReport(me(principal).examId, me(principal).candidateId, body, actorOf(principal)),
    }),
    route({
      method: 'post',
      path: '/api/me/grade',
      tag: 'candidate',
      summary: 'Practice exams only: grade my lab now and show my score (check titles and statuses, not their definitions)',
      access: ['candidate'],
      success: { status: 200, description: 'Score and per-check status' },
      errors: [409],
      async handle({ principal }) {
        const { examId, candidateId } = me(principal);
        if (reader.exam(examId).mode !== 'practice') throw new ConflictError('grading on demand is for practice exams only');
        return candidateRunView(await service.gradeNow(examId, candidateId, actorOf(principal)));
      },
    }),
  ];
}
