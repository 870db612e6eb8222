import type { Express, Request } from 'express';
import { NotAllowedError } from '../util/errors.js';
import { checkCsrf, readCredential, type Authenticator, type Principal } from '../access/index.js';
import { parsePart, RawReply, RequestError, type Route } from './route.js';

/** Registers every route: authentication, then validation of path, query and body, then the handler. */
export function mountRoutes(app: Express, routes: readonly Route[], auth: Authenticator): void {
  for (const r of routes) {
    app[r.method](r.path, async (req, res) => {
      const principal = authorize(r, req, auth);
      const params = r.params ? parsePart(r.params, req.params, 'path') : undefined;
      const query = r.query ? parsePart(r.query, req.query, 'query') : undefined;
      let body: unknown;
      let raw: { contentType: string; bytes: Buffer } | undefined;
      const sent = Number(req.headers['content-length'] ?? 0) > 0 || req.headers['transfer-encoding'] !== undefined;
      const rawType = r.rawBody ? req.is([...r.rawBody.contentTypes]) : false;
      if (rawType) {
        raw = { contentType: rawType, bytes: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0) };
      } else if (r.body) {
        if (sent && !req.is('application/json')) {
          throw new RequestError(`send the body as application/json${r.rawBody ? ` or ${r.rawBody.contentTypes.join(', ')}` : ''} (got ${req.headers['content-type'] ?? 'no Content-Type'})`);
        }
        if (!sent && !r.bodyOptional) throw new RequestError('this request needs a JSON body', [{ where: 'body', message: 'required' }]);
        body = parsePart(r.body, sent ? req.body : undefined, 'body');
      }
      const result = await r.handle({ params, query, body, raw, principal: principal as Principal, req, res } as never);
      if (res.headersSent) return;
      if (result instanceof RawReply) {
        res.status(r.success.status).type(result.contentType);
        if (result.filename) res.attachment(result.filename);
        for (const [name, value] of Object.entries(result.headers)) res.setHeader(name, value);
        res.send(result.body);
      } else {
        res.status(r.success.status).json(result ?? {});
      }
    });
  }
}

function authorize(r: Route, req: Request, auth: Authenticator): Principal | undefined {
  if (r.access === 'public') return undefined;
  const credential = readCredential(req.headers);
  // The socket's own address: a client cannot choose it, unlike X-Forwarded-For.
  const principal = auth.authenticate(credential?.token, req.socket.remoteAddress);
  checkCsrf(credential, req.method, req.headers['x-examlab-request']);
  const allowed = principal.kind === 'candidate' ? r.access.includes('candidate') : r.access.includes(principal.role);
  if (!allowed) {
    throw new NotAllowedError(
      principal.kind === 'candidate' ? 'a candidate token only opens /api/me' : `this needs ${needs(r.access.filter((a) => a !== 'candidate'))}`,
    );
  }
  return principal;
}

const needs = (roles: readonly string[]) => `${roles[0] === 'operator' ? 'an' : 'a'} ${roles.join(' or ')} token`;
