import { z } from 'zod';
import type { Route } from './route.js';

const STATUS_TEXT: Record<number, string> = {
  400: 'Malformed request: not JSON, or not the documented shape (details name each field)',
  401: 'Missing, unknown or expired token',
  403: 'The token may not do this',
  404: 'No such exam, candidate or resource',
  409: 'Not possible in the current state',
  413: 'Request body too large',
  422: 'Well formed but invalid content (roster, scenario, level...)',
  429: 'Too many attempts from this address: wait Retry-After seconds (unknown tokens: none is checked meanwhile)',
  500: 'Internal error (logged)',
  503: 'An engine is not reachable',
  507: 'The data directory is full: nothing was saved (the message says how much is free, and where)',
};

const toSchema = (schema: z.ZodType) => {
  const { $schema: _ignored, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
  return rest;
};

function parameters(schema: z.ZodType | undefined, where: 'path' | 'query') {
  if (!schema || !(schema instanceof z.ZodObject)) return [];
  return Object.entries(schema.shape as Record<string, z.ZodType>).map(([name, field]) => ({
    name,
    in: where,
    required: where === 'path' || !field.safeParse(undefined).success,
    description: field.description,
    schema: toSchema(field),
  }));
}

/** The OpenAPI 3.1 document, built from the same route declarations the router serves. */
export function openApiDocument(routes: readonly Route[], info: { version: string }): object {
  const paths: Record<string, Record<string, object>> = {};
  for (const r of routes) {
    const path = r.path.replace(/:([A-Za-z]+)/g, '{$1}');
    const content: Record<string, object> = {};
    if (r.body) content['application/json'] = { schema: toSchema(r.body) };
    for (const type of r.rawBody?.contentTypes ?? []) content[type] = { schema: { type: 'string', format: 'binary', description: r.rawBody?.description } };
    const errors = [...new Set([...(r.access === 'public' ? [] : [401, 403, 429]), ...(r.params || r.query || r.body ? [400] : []), ...(r.errors ?? []), ...(r.method === 'get' ? [] : [507]), 500])].sort();
    (paths[path] ??= {})[r.method] = {
      operationId: `${r.method}${r.path.replace(/[^A-Za-z0-9]+(.)?/g, (_m, c: string | undefined) => (c ? c.toUpperCase() : ''))}`,
      tags: [r.tag],
      summary: r.summary,
      ...(r.description ? { description: r.description } : {}),
      security: r.access === 'public' ? [] : [{ bearer: [] }],
      'x-examlab-access': r.access,
      parameters: [...parameters(r.params, 'path'), ...parameters(r.query, 'query')],
      ...(Object.keys(content).length ? { requestBody: { required: !r.bodyOptional, content } } : {}),
      responses: {
        [r.success.status]: { description: r.success.description, content: { [r.success.contentType ?? 'application/json']: {} } },
        ...Object.fromEntries(errors.map((s) => [s, { description: STATUS_TEXT[s] ?? String(s), content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }])),
      },
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'examlab daemon',
      version: info.version,
      description: 'Exams for a room of candidates: labs provisioned, timed, frozen and graded on the server. Staff use bearer tokens (operator, jury); each candidate has an access token valid while their exam runs.',
    },
    components: {
      securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } },
      schemas: {
        Error: {
          type: 'object',
          required: ['error', 'message', 'details'],
          properties: {
            error: { type: 'string', description: 'bad_request, unauthenticated, forbidden, not_found, conflict, payload_too_large, unprocessable, unavailable, internal' },
            message: { type: 'string' },
            details: { type: 'array', items: { type: 'object', properties: { where: { type: 'string' }, message: { type: 'string' } }, required: ['message'] } },
          },
        },
      },
    },
    paths,
  };
}
