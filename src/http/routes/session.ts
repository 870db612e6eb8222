import { z } from 'zod';
import { readCredential, sessionCookie, UnauthenticatedError, type Principal } from '../../access/index.js';
import type { ServerDeps } from '../deps.js';
import { route, type Route } from '../route.js';

const sessionBody = z.strictObject({ token: z.string().trim().min(1, 'type the token on your card').max(200) });

/**
 * Sessions for the pages: the token typed once is kept in an HttpOnly
 * cookie (never in a URL, never readable by a script); the Authenticator
 * accepts it as it does a Bearer token.
 */
export function sessionRoutes(deps: ServerDeps): Route[] {
  const who = (principal: Principal) => {
    if (principal.kind === 'staff') return { role: principal.role, name: principal.name };
    const { candidate } = deps.reader.candidateHome(principal.examId, principal.candidateId);
    return { role: 'candidate' as const, name: candidate.name, examId: principal.examId, candidateId: principal.candidateId };
  };
  return [
    route({
      method: 'post',
      path: '/api/session',
      tag: 'session',
      summary: 'Sign in on a page: the token (candidate, operator or jury) is kept in the HttpOnly cookie examlab_session',
      description: 'Rate-limited per client address. Then every request from the page is authenticated by the cookie; those that change something must carry "X-Examlab-Request: 1".',
      access: 'public',
      body: sessionBody,
      success: { status: 200, description: 'Who the token is: role, name, and for a candidate their exam and id' },
      errors: [401, 403, 429],
      handle({ body, req, res }) {
        const principal = deps.auth.authenticate(body.token);
        const answer = who(principal);
        res.setHeader('Set-Cookie', sessionCookie(body.token, req.secure));
        return answer;
      },
    }),
    route({
      method: 'get',
      path: '/api/session',
      tag: 'session',
      summary: "Who the page's session cookie is",
      access: 'public',
      success: { status: 200, description: 'role, name, and for a candidate examId and candidateId' },
      errors: [401, 403],
      handle({ req }) {
        const credential = readCredential({ cookie: req.headers.cookie });
        if (!credential) throw new UnauthenticatedError('no session: sign in with the token on your card');
        return who(deps.auth.authenticate(credential.token));
      },
    }),
    route({
      method: 'delete',
      path: '/api/session',
      tag: 'session',
      summary: 'Sign out: clears the session cookie',
      access: 'public',
      success: { status: 200, description: 'Signed out' },
      handle({ req, res }) {
        res.setHeader('Set-Cookie', sessionCookie(undefined, req.secure));
        return { signedOut: true };
      },
    }),
  ];
}
