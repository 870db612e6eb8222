import express, { type Express, type RequestHandler } from 'express';
import { rateLimit } from 'express-rate-limit';
import helmet from 'helmet';
import { NotFoundError } from '../util/errors.js';
import type { ServerDeps } from './deps.js';
import { errorHandler } from './errors.js';
import { openApiDocument } from './openapi.js';
import { route, type Route } from './route.js';
import { mountRoutes } from './router.js';
import { adminRoutes } from './routes/admin.js';
import { candidateRoutes } from './routes/candidates.js';
import { eventRoutes } from './routes/events.js';
import { examRoutes } from './routes/exams.js';
import { meRoutes } from './routes/me.js';
import { recordingRoutes } from './routes/recordings.js';
import { resultRoutes } from './routes/results.js';
import { sessionRoutes } from './routes/session.js';

export const BODY_LIMIT = '1mb';

/** Every endpoint of the daemon, the OpenAPI document included. */
export function allRoutes(deps: ServerDeps): Route[] {
  const routes = [...examRoutes(deps), ...candidateRoutes(deps), ...resultRoutes(deps), ...meRoutes(deps), ...sessionRoutes(deps), ...recordingRoutes(deps), ...adminRoutes(deps), ...eventRoutes(deps)];
  const openapi = route({
    method: 'get',
    path: '/api/openapi.json',
    tag: 'health',
    summary: 'This document',
    access: 'public',
    success: { status: 200, description: 'OpenAPI 3.1' },
    handle: () => document,
  });
  const document = openApiDocument([...routes, openapi], { version: deps.version });
  return [...routes, openapi];
}

/**
 * The pages' Content Security Policy: their own scripts only (no inline
 * script), styles of their own plus the inline styles xterm.js and
 * asciinema-player set on their elements, no framing. 'wasm-unsafe-eval'
 * lets asciinema-player run its terminal emulator, which is WebAssembly
 * (it allows compiling WebAssembly, not eval of JavaScript).
 */
export const CONTENT_SECURITY_POLICY = {
  'default-src': ["'self'"],
  'script-src': ["'self'", "'wasm-unsafe-eval'"],
  'style-src': ["'self'", "'unsafe-inline'"],
  'connect-src': ["'self'"],
  'img-src': ["'self'", 'data:'],
  'frame-ancestors': ["'none'"],
};

/** Token entry: per client address, this many sign-ins a minute. */
export const SIGN_IN_LIMIT = 10;

function tooMany(what: string): RequestHandler {
  return (_req, res) =>
    void res.status(429).json({ error: 'too_many_requests', message: `too many ${what} from this address; wait a minute and try again`, details: [] });
}

const IDS = /^\/api\/exams\/([0-9a-f]{12})(?:\/candidates\/([^/]+))?/;

/** The HTTP API and the static pages. */
export function createHttpApp(deps: ServerDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('query parser', 'simple');
  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const ids = IDS.exec(req.path);
      deps.metrics.httpRequest(req.method, res.statusCode);
      deps.log[res.statusCode >= 500 ? 'error' : 'info'](
        { method: req.method, path: req.path, status: res.statusCode, ms: Number((process.hrtime.bigint() - started) / 1_000_000n), exam: ids?.[1], candidate: ids?.[2] },
        'http',
      );
    });
    next();
  });
  // No upgrade-insecure-requests: an exam room's daemon is often plain HTTP on the LAN.
  app.use(helmet({ contentSecurityPolicy: { useDefaults: false, directives: CONTENT_SECURITY_POLICY } }));
  const signIns = rateLimit({ windowMs: 60_000, limit: SIGN_IN_LIMIT, standardHeaders: 'draft-8', legacyHeaders: false, handler: tooMany('sign-in attempts') });
  app.use('/api/session', (req, res, next) => (req.method === 'POST' ? signIns(req, res, next) : next()));
  // Refused tokens are counted per address by the Authenticator (FailedTokens), for the API and the gateway alike.
  const routes = allRoutes(deps);
  app.use(express.json({ limit: BODY_LIMIT }));
  // Files (rosters) stay bytes: their encoding is found from their content, not assumed.
  app.use(express.raw({ type: [...new Set(routes.flatMap((r) => r.rawBody?.contentTypes ?? []))], limit: BODY_LIMIT }));
  mountRoutes(app, routes, deps.auth);
  // The pages, then the scripts the build bundled for them.
  for (const dir of deps.publicDirs ?? []) app.use(express.static(dir, { index: 'index.html' }));
  app.use((req, _res, next) => next(new NotFoundError(`no endpoint ${req.method} ${req.path}; see /api/openapi.json`)));
  app.use(errorHandler(deps.log, deps.metrics));
  return app;
}
