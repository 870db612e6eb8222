import express, { type Express } from 'express';
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
import { resultRoutes } from './routes/results.js';

export const BODY_LIMIT = '1mb';

/** Every endpoint of the daemon, the OpenAPI document included. */
export function allRoutes(deps: ServerDeps): Route[] {
  const routes = [...examRoutes(deps), ...candidateRoutes(deps), ...resultRoutes(deps), ...meRoutes(deps), ...adminRoutes(deps), ...eventRoutes(deps)];
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
