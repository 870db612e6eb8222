import type { Request, Response } from 'express';
import { z } from 'zod';
import type { Principal } from '../access/index.js';
import type { StaffRole } from '../access/index.js';
import { ExamlabError, type ErrorDetail } from '../util/errors.js';

/** The request does not have the shape the endpoint documents (HTTP 400). */
export class RequestError extends ExamlabError {}

export type Caller = StaffRole | 'candidate';

/** A non-JSON answer (CSV, HTML, a workbook). */
export class RawReply {
  constructor(
    readonly contentType: string,
    readonly body: string | Buffer,
    readonly filename?: string,
    readonly headers: Readonly<Record<string, string>> = {},
  ) {}
}

type Schema = z.ZodType;
type Out<S> = S extends z.ZodType ? z.output<S> : undefined;

export interface RouteContext<P, Q, B> {
  params: Out<P>;
  query: Out<Q>;
  body: Out<B>;
  /** The body as sent, for endpoints that also take files (a CSV or XLSX roster). */
  raw?: { contentType: string; bytes: Buffer };
  principal: Principal;
  req: Request;
  res: Response;
}

/**
 * One endpoint, declared once: the router registers it (authentication,
 * validation with zod, the reply) and the OpenAPI document describes it
 * from the same declaration, so the two cannot drift apart.
 */
export interface Route<P extends Schema | undefined = Schema | undefined, Q extends Schema | undefined = Schema | undefined, B extends Schema | undefined = Schema | undefined> {
  method: 'get' | 'post' | 'put' | 'delete';
  path: string;
  tag: string;
  summary: string;
  description?: string;
  /** Who may call it; `public` needs no token. */
  access: 'public' | readonly Caller[];
  params?: P;
  query?: Q;
  body?: B;
  /** Whether the body may be left out (its schema then sees undefined). */
  bodyOptional?: boolean;
  /** Other content types the body may come as (files), passed to the handler as bytes. */
  rawBody?: { contentTypes: readonly string[]; description: string };
  success: { status: number; description: string; contentType?: string };
  /** Error statuses worth documenting besides 400/401/403/500. */
  errors?: number[];
  handle(ctx: RouteContext<P, Q, B>): unknown;
}

/** Declares a route with its types inferred from its schemas. */
export function route<P extends Schema | undefined = undefined, Q extends Schema | undefined = undefined, B extends Schema | undefined = undefined>(
  def: Route<P, Q, B>,
): Route {
  return def as unknown as Route;
}

/** Parses one part of a request; a mismatch is a 400 naming every field at fault. */
export function parsePart<S extends Schema>(schema: S, value: unknown, part: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const details: ErrorDetail[] = parsed.error.issues.map((issue) => ({ where: formatWhere(part, issue.path), message: issue.message }));
  throw new RequestError(`invalid ${part}: ${details.map((d) => `${d.where}: ${d.message}`).join('; ')}`, details);
}

function formatWhere(part: string, path: readonly PropertyKey[]): string {
  return path.reduce<string>((acc, key) => (typeof key === 'number' ? `${acc}[${key}]` : `${acc}.${String(key)}`), part);
}
