import { actorOf } from '../../access/index.js';
import { runView } from '../../exams/index.js';
import type { ServerDeps } from '../deps.js';
import type { z } from 'zod';
import { route, type Route, type RouteContext } from '../route.js';
import { candidateParams, extendBody, markBody, markParams, revokeBody } from '../schemas.js';

/** What the operator does to one candidate, and what the jury records about them. */
export function candidateRoutes(deps: ServerDeps): Route[] {
  const { service, reader } = deps;
  const view = (examId: string, candidateId: string) => ({ ...reader.candidateDetail(examId, candidateId), ssh: deps.access.sshCommand(candidateId) });
  const action = (name: string, summary: string, description: string, status: number, run: (examId: string, candidateId: string, actor: string, body: unknown) => unknown, extra: Partial<Route> = {}) =>
    route({
      method: 'post',
      path: `/api/exams/:examId/candidates/:candidateId/${name}`,
      tag: 'candidates',
      summary,
      description,
      access: ['operator'],
      params: candidateParams,
      success: { status, description: 'The candidate after the action' },
      errors: [404, 409],
      async handle({ params, principal, body }: RouteContext<typeof candidateParams, undefined, z.ZodType>) {
        const result = await run(params.examId, params.candidateId, actorOf(principal), body);
        return result ?? view(params.examId, params.candidateId);
      },
      ...extra,
    } as Route);

  return [
    route({
      method: 'get',
      path: '/api/exams/:examId/candidates/:candidateId',
      tag: 'candidates',
      summary: 'A candidate: phase, deadline, lab state and events, grading runs, marks, report',
      access: ['operator', 'jury'],
      params: candidateParams,
      success: { status: 200, description: 'The candidate' },
      errors: [404],
      handle: ({ params }) => view(params.examId, params.candidateId),
    }),
    action('extend', 'Give a candidate more time', 'Adds to their deadline (or, before their lab is offered, to their duration).', 200, (e, c, actor, body) => void service.extend(e, c, (body as { duration: number }).duration, actor), {
      body: extendBody,
      errors: [404, 409, 422],
    }),
    action('reset', "Give a candidate a lab in its initial broken state", 'With a spare lab ready (the exam\'s `spares`), it is swapped in at once (its own values; the old lab is removed behind). Otherwise the lab is rebuilt in the background, same values as before. What the candidate did is lost; their deadline is kept (extend it if fair).', 202, (e, c, actor) => void service.reset(e, c, actor)),
    action('grade', "Grade a candidate's lab now", 'Practice or a check by the operator: the exam goes on. Returns the run with every check.', 200, async (e, c, actor) => runView(await service.gradeNow(e, c, actor))),
    action('revoke', "Revoke a candidate's access", 'Their token and open sessions stop working and their lab account is locked; the lab keeps running and is graded at their deadline.', 200, (e, c, actor, body) => service.revoke(e, c, actor, (body as { reason?: string } | undefined)?.reason).then(() => undefined), {
      body: revokeBody,
      bodyOptional: true,
    }),
    action('restore', "Lift a revocation", 'The candidate may use their token again.', 200, (e, c, actor) => service.restore(e, c, actor).then(() => undefined)),
    action('end', "End one candidate's exam now", 'Access cut at once; the lab is frozen and graded in the background.', 202, (e, c, actor) => void service.endCandidate(e, c, actor, `ended by ${actor}`)),
    action('regrade', "Grade a finished candidate's frozen lab again", 'The machines run only for the grading; the candidate stays locked out. Returns the new run.', 200, async (e, c, actor) => runView(await service.regrade(e, c, actor))),
    action('token', 'Issue a new access token for a candidate', 'The old token stops working at once. The new one is shown once.', 200, (e, c, actor) => {
      const issued = service.reissueToken(e, c, actor);
      return { ...issued, ssh: deps.access.sshCommand(issued.id) };
    }),
    route({
      method: 'put',
      path: '/api/exams/:examId/candidates/:candidateId/marks/:criterionId',
      tag: 'marking',
      summary: 'Mark a manual criterion (a level of its rubric)',
      access: ['operator', 'jury'],
      params: markParams,
      body: markBody,
      success: { status: 200, description: 'The mark' },
      errors: [404, 422],
      handle: ({ params, body, principal }) => service.mark(params.examId, params.candidateId, params.criterionId, body.level, body.comment, actorOf(principal)),
    }),
  ];
}
