import { actorOf } from '../../access/index.js';
import type { ServerDeps } from '../deps.js';
import { RawReply, route, type Route } from '../route.js';
import { auditQuery, tokenBody, tokenParams } from '../schemas.js';

/** The audit log, staff tokens, and the daemon's health. */
export function adminRoutes(deps: ServerDeps): Route[] {
  const { audit, staffTokens } = deps;
  const started = deps.clock.now();
  return [
    route({
      method: 'get',
      path: '/api/audit',
      tag: 'audit',
      summary: 'The audit log (who did what, when, to which exam, candidate and lab) and whether its hash chain is intact and agrees with its anchor',
      description:
        'chain.ok is false when a record was altered (chain.brokenAt names it), when the chain was rewritten and its hashes recomputed (the first record that differs from the anchor), when records are missing after chain.missingAfter (tail cut, or a database older than the anchor), or when the anchor itself was tampered with; chain.problem says it in words. chain.anchor is the head printed on exports; give one back as ?anchor= to check it.',
      access: ['operator', 'jury'],
      query: auditQuery,
      success: { status: 200, description: 'Records in order, and the chain check' },
      handle: ({ query }) => ({ records: audit.list({ examId: query.exam, candidateId: query.candidate, afterSeq: query.after, limit: query.limit }), chain: audit.verify(query.anchor) }),
    }),
    route({
      method: 'get',
      path: '/api/tokens',
      tag: 'tokens',
      summary: 'Staff tokens (names and roles, never the tokens)',
      access: ['operator'],
      success: { status: 200, description: 'Tokens' },
      handle: () => ({ tokens: staffTokens.list() }),
    }),
    route({
      method: 'post',
      path: '/api/tokens',
      tag: 'tokens',
      summary: 'Create an operator or jury token (shown once)',
      access: ['operator'],
      body: tokenBody,
      success: { status: 201, description: 'The token, in clear this once' },
      handle({ body, principal }) {
        return staffTokens.issue(body.name, body.role, actorOf(principal));
      },
    }),
    route({
      method: 'delete',
      path: '/api/tokens/:tokenId',
      tag: 'tokens',
      summary: 'Revoke a staff token',
      access: ['operator'],
      params: tokenParams,
      success: { status: 200, description: 'The revoked token' },
      errors: [404],
      handle({ params, principal }) {
        return staffTokens.revoke(params.tokenId, actorOf(principal));
      },
    }),
    route({
      method: 'get',
      path: '/healthz',
      tag: 'health',
      summary: 'Liveness: the daemon answers',
      access: 'public',
      success: { status: 200, description: 'Alive' },
      handle: () => ({ status: 'ok', version: deps.version, uptimeSeconds: Math.round((deps.clock.now() - started) / 1000) }),
    }),
    route({
      method: 'get',
      path: '/readyz',
      tag: 'health',
      summary: 'Readiness: the engine answers and the store is writable (503 otherwise)',
      access: 'public',
      success: { status: 200, description: 'Ready' },
      errors: [503],
      async handle({ res }) {
        const readiness = await deps.readiness();
        if (!readiness.ready) res.status(503).json(readiness);
        return readiness;
      },
    }),
    route({
      method: 'get',
      path: '/metrics',
      tag: 'health',
      summary: 'Prometheus metrics: labs by state, candidates by phase, provisioning and grading durations, errors',
      access: 'public',
      success: { status: 200, description: 'Prometheus text format', contentType: 'text/plain' },
      handle: async () => new RawReply(deps.metrics.registry.contentType, await deps.metrics.registry.metrics()),
    }),
  ];
}
