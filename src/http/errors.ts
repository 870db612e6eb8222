import type { ErrorRequestHandler } from 'express';
import type { Logger } from 'pino';
import { TooManyAttemptsError, UnauthenticatedError } from '../access/index.js';
import { ConflictError, EnvironmentError, ExamlabError, InputError, NotAllowedError, NotFoundError, StorageError, StorageFullError, TimeoutError, type ErrorDetail } from '../util/errors.js';
import type { ExamMetrics } from '../exams/index.js';
import { RequestError } from './route.js';

export interface HttpError {
  status: number;
  body: { error: string; message: string; details: ErrorDetail[] };
}

/** Errors of the HTTP layer itself (body-parser). */
interface ParserError {
  type?: string;
  status?: number;
  message: string;
}

const DOMAIN: [new (...args: never[]) => ExamlabError, number, string][] = [
  [RequestError, 400, 'bad_request'],
  [UnauthenticatedError, 401, 'unauthenticated'],
  [NotAllowedError, 403, 'forbidden'],
  [NotFoundError, 404, 'not_found'],
  [ConflictError, 409, 'conflict'],
  [InputError, 422, 'unprocessable'],
  [TooManyAttemptsError, 429, 'too_many_requests'],
  [StorageFullError, 507, 'insufficient_storage'],
  [StorageError, 503, 'storage_unavailable'],
  [EnvironmentError, 503, 'unavailable'],
  [TimeoutError, 504, 'timeout'],
];

/**
 * The one mapping from errors to HTTP. 400: the request is malformed (not
 * JSON, not the documented shape); 422: well formed but its content is
 * invalid (a roster with duplicates, a broken scenario); 401/403/404/409 as
 * their names say; 413: too large; 429: too many refused tokens from the
 * address (Retry-After says when to try again); 507: the data directory is
 * full, nothing was saved (the message says how much is free, and where;
 * 503 for another error of its disk); anything unexpected is a 500, logged.
 */
export function toHttpError(err: unknown): HttpError {
  for (const [type, status, code] of DOMAIN) {
    if (err instanceof type) return { status, body: { error: code, message: err.message, details: err.details } };
  }
  const parser = err as ParserError;
  if (parser?.type === 'entity.too.large') return { status: 413, body: { error: 'payload_too_large', message: `request body too large (${parser.message})`, details: [] } };
  if (parser?.type === 'entity.parse.failed') return { status: 400, body: { error: 'bad_request', message: `the body is not valid JSON: ${parser.message}`, details: [{ where: 'body', message: parser.message }] } };
  if (parser?.type && parser.status && parser.status >= 400 && parser.status < 500) {
    return { status: parser.status, body: { error: 'bad_request', message: parser.message, details: [] } };
  }
  return { status: 500, body: { error: 'internal', message: 'internal error; the daemon log has the details', details: [] } };
}

export function errorHandler(log: Logger, metrics: ExamMetrics): ErrorRequestHandler {
  return (err, req, res, _next) => {
    const { status, body } = toHttpError(err);
    if (status >= 500) {
      metrics.error('http');
      log.error({ err, method: req.method, path: req.path }, 'request failed');
    }
    if (status === 401) res.setHeader('WWW-Authenticate', 'Bearer');
    if (err instanceof TooManyAttemptsError) res.setHeader('Retry-After', String(err.retryAfterSeconds));
    res.status(status).json(body);
  };
}
