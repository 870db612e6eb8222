import fc from 'fast-check';
import pino from 'pino';
import request from 'supertest';
import type { Express } from 'express';
import { Authenticator, StaffTokens } from '../../../src/access/index.js';
import { allRoutes, createHttpApp, createMetrics } from '../../../src/http/index.js';
import type { Route } from '../../../src/http/route.js';
import type { ServerDeps } from '../../../src/http/deps.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Recordings } from '../../../src/terminal/index.js';
import { ExamHarness } from '../../fakes/exam-harness.js';
import { flagScenario } from '../../fakes/flag-scenarios.js';
import { mutate, mutation, nastyValue, type Json } from '../../fakes/json-mutations.js';

/**
 * Every endpoint of the daemon's HTTP app (as `examlab serve` builds it,
 * over fake engines) under fuzzed requests: bodies from arbitrary JSON, from
 * mutations of valid bodies and from text that is not JSON; odd path
 * parameters, queries and content types. The answer is never a 500, and an
 * error has `{ error, message }`.
 */
const CSV = 'Identifiant;Nom;Prénom\nz1;N\'Diaye;Zoé\n';

/** A valid body for each endpoint that takes one: the starting point of the mutations. */
function validBodies(scenarioYaml: string): Record<string, Json[]> {
  return {
    'post /api/exams': [
      { title: 'Examen', scenarioYaml, candidates: [{ id: 'z1', name: "Zoé N'Diaye", email: 'z@example.org' }], start: 'manual', duration: '45m', timeZone: 'Europe/Paris' },
      { scenarioYaml, rosterCsv: CSV, start: { at: '2030-01-01T08:00:00+01:00' }, prepare: true, spares: 1, end: { autoFreeze: false, keepLabs: false }, mode: 'practice' },
      { scenario: 'broken-workstation', rosterFile: Buffer.from(CSV).toString('base64') },
    ],
    'put /api/exams/:examId/candidates': [[{ id: 'z1', name: 'Zoé' }, { id: 'z2', name: '=HYPERLINK("x")' }]],
    'post /api/exams/:examId/candidates/:candidateId/extend': [{ duration: '15m' }],
    'post /api/exams/:examId/candidates/:candidateId/revoke': [{ reason: 'fraude' }],
    'put /api/exams/:examId/candidates/:candidateId/marks/:criterionId': [{ level: 'bon', comment: 'clair' }],
    'put /api/me/report': [{ diagnosis: 'DNS', actions: 'corrigé', result: 'ok' }],
    'post /api/tokens': [{ name: 'jury 2', role: 'jury' }],
  };
}

interface World {
  app: Express;
  routes: Route[];
  operator: string;
  jury: string;
  candidate: string;
  examIds: string[];
  candidateIds: string[];
  harness: ExamHarness;
}

async function world(): Promise<World> {
  const harness = ExamHarness.create();
  const { tokens, audit } = harness.stores;
  const operator = tokens.issue('fuzz operator', 'operator', 'test').token;
  const jury = tokens.issue('fuzz jury', 'jury', 'test').token;
  const idle = await harness.createExam(flagScenario(), ['alice', 'bob']);
  const running = await harness.runningExam(flagScenario({ id: 'running' }), ['carol', 'dan']);
  const deps: ServerDeps = {
    service: harness.service,
    reader: harness.reader,
    staffTokens: new StaffTokens(tokens, audit),
    audit,
    auth: new Authenticator(tokens, harness.service),
    recordings: new Recordings(join(mkdtempSync(join(tmpdir(), 'examlab-fuzz-')), 'recordings')),
    access: { sshCommand: (id) => `ssh ${id}@exam.example` },
    metrics: createMetrics({ labsByState: () => harness.labStore.countByState(), candidatesByPhase: () => harness.exams.countCandidatesByPhase(), gatewaySessions: () => 0 }),
    clock: harness.clock,
    log: pino({ level: 'silent' }),
    version: 'fuzz',
    readiness: async () => ({ ready: true, checks: {} }),
  };
  return {
    app: createHttpApp(deps),
    routes: allRoutes(deps),
    operator,
    jury,
    candidate: (running.tokens.find((t) => t.id === 'carol') as { token: string }).token,
    examIds: [idle.exam.id, running.exam.id],
    candidateIds: ['alice', 'bob', 'carol', 'dan'],
    harness,
  };
}

interface Sent {
  method: Route['method'];
  path: string;
  token?: string;
  query?: Record<string, string>;
  body?: { type: string; data: string | Buffer } | { json: Json };
}

/**
 * Reads an answer as JSON when it is, without waiting for the end of an
 * event stream (which stays open): its status and headers are the answer.
 */
function readAnswer(res: NodeJS.ReadableStream & { headers: Record<string, string | string[] | undefined>; destroy(): void }, done: (err: Error | null, body: unknown) => void): void {
  if (String(res.headers['content-type'] ?? '').startsWith('text/event-stream')) {
    res.destroy();
    done(null, {});
    return;
  }
  const chunks: Buffer[] = [];
  res.on('data', (c: Buffer) => chunks.push(c));
  res.on('end', () => {
    const text = Buffer.concat(chunks).toString('utf8');
    try {
      done(null, JSON.parse(text));
    } catch {
      done(null, { text });
    }
  });
}

async function send(app: Express, r: Sent): Promise<request.Response> {
  const agent = request(app);
  let req = (r.method === 'get' ? agent.get(r.path) : r.method === 'post' ? agent.post(r.path) : r.method === 'put' ? agent.put(r.path) : agent.delete(r.path)).parse(readAnswer as never);
  if (r.token !== undefined) req = req.set('Authorization', `Bearer ${r.token}`);
  if (r.query) req = req.query(r.query);
  if (r.body && 'json' in r.body) return req.set('Content-Type', 'application/json').send(JSON.stringify(r.body.json));
  if (r.body) return req.set('Content-Type', r.body.type).send(r.body.data);
  return req;
}

function expectAnswered(r: Sent, res: request.Response): void {
  const what = `${r.method.toUpperCase()} ${r.path} ${JSON.stringify(r.body ?? null)?.slice(0, 300)} → ${res.status} ${JSON.stringify(res.body)?.slice(0, 300)}`;
  if (res.status >= 500) throw new Error(`server error: ${what}`);
  if (res.status >= 400 && (typeof res.body?.error !== 'string' || typeof res.body?.message !== 'string')) throw new Error(`error without {error, message}: ${what}`);
}

describe('every API body, fuzzed', () => {
  let w: World;
  beforeAll(async () => {
    w = await world();
  });
  afterAll(() => w?.harness.db.close());

  /** A request to one of the routes, its parts drawn from `body`. */
  const requestTo = (body: (route: Route) => fc.Arbitrary<Sent['body']>): fc.Arbitrary<Sent> =>
    fc.nat().chain((n) => {
      const route = w.routes[n % w.routes.length] as Route;
      const segment = (real: string[]) => fc.oneof({ weight: 4, arbitrary: fc.constantFrom(...real) }, { weight: 1, arbitrary: fc.string({ minLength: 1, maxLength: 20 }).map(encodeURIComponent) });
      const path = fc
        .tuple(segment(w.examIds), segment(w.candidateIds), segment(['report', 'bon', 'x']), segment(['nope']))
        .map(([exam, candidate, criterion, token]) =>
          route.path.replace(':examId', exam).replace(':candidateId', candidate).replace(':criterionId', criterion).replace(':tokenId', token),
        );
      const token =
        route.access === 'public'
          ? fc.constant(undefined)
          : route.access.includes('candidate')
            ? fc.oneof({ weight: 5, arbitrary: fc.constant(w.candidate) }, { weight: 1, arbitrary: fc.constantFrom(undefined, 'garbage', w.operator) })
            : fc.oneof({ weight: 5, arbitrary: fc.constant(w.operator) }, { weight: 1, arbitrary: fc.constantFrom(undefined, 'garbage', w.jury) });
      const query = route.query ? fc.option(fc.dictionary(fc.constantFrom('dialect', 'exam', 'candidate', 'after', 'limit', 'x'), fc.oneof(fc.string({ maxLength: 10 }), fc.constantFrom('-1', '0', '1e9', 'excel-fr', 'NaN'))), { nil: undefined }) : fc.constant(undefined);
      return fc.record({ method: fc.constant(route.method), path, token, query, body: body(route) }) as fc.Arbitrary<Sent>;
    });

  // Bounded for `make test`; EXAMLAB_FUZZ_RUNS=5000 digs deeper by hand.
  const deep = Number(process.env.EXAMLAB_FUZZ_RUNS) || 0;
  const runs = (n: number) => (deep ? { numRuns: deep } : { numRuns: n, interruptAfterTimeLimit: 40_000 });

  test('arbitrary JSON bodies', async () => {
    await fc.assert(
      fc.asyncProperty(requestTo(() => fc.oneof(fc.jsonValue({ maxDepth: 4 }), nastyValue).map((json) => ({ json: json as Json }))), async (r) => expectAnswered(r, await send(w.app, r))),
      runs(500),
    );
  }, deep ? 3_600_000 : 60_000);

  test('mutations of valid bodies', async () => {
    const bodies = validBodies(flagScenario({ id: 'fuzzed' }));
    await fc.assert(
      fc.asyncProperty(
        requestTo((route) => {
          const valid = bodies[`${route.method} ${route.path}`] ?? [{}];
          return fc.tuple(fc.constantFrom(...valid), fc.array(mutation, { maxLength: 4 })).map(([base, ms]) => ({ json: mutate(base, ms) }));
        }),
        async (r) => expectAnswered(r, await send(w.app, r)),
      ),
      runs(600),
    );
  }, deep ? 3_600_000 : 60_000);

  test('exams from scenario texts cut, spliced and garbled', async () => {
    const text = flagScenario({ id: 'garbled' });
    const garbled = fc
      .array(fc.tuple(fc.nat(text.length), fc.nat(40), fc.oneof(fc.string({ maxLength: 12 }), fc.constantFrom('\n', ': ', '- ', '{{ x }}', '*a', '&a ', '!!binary ', '<<: *a\n', '"', "'"))), { minLength: 1, maxLength: 4 })
      .map((edits) => edits.reduce((t, [at, cut, put]) => t.slice(0, at) + put + t.slice(at + cut), text));
    await fc.assert(
      fc.asyncProperty(garbled, async (scenarioYaml) => {
        const r: Sent = { method: 'post', path: '/api/exams', token: w.operator, body: { json: { scenarioYaml, candidates: [{ id: 'z1', name: 'Zoé' }] } } };
        const res = await send(w.app, r);
        expectAnswered(r, res);
        if (res.status === 422) expect(res.body.details.every((d: { where?: string }) => /:\d+:\d+/.test(d.where ?? ''))).toBe(true);
      }),
      runs(200),
    );
  }, deep ? 3_600_000 : 60_000);

  test('bodies that are not JSON, or not what they say they are', async () => {
    const types = fc.constantFrom('application/json', 'application/json; charset=utf-16', 'application/json; charset=x-unknown', 'text/csv', 'text/plain', 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet', 'application/octet-stream', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', '');
    const data = fc.oneof(
      fc.string({ maxLength: 200 }),
      fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)),
      fc.constantFrom('{', '[1,', '{"a":1}x', 'null', '"str"', '\uFEFF{}', 'PK\u0003\u0004garbage', CSV, 'id,name\n,\n'),
    );
    await fc.assert(fc.asyncProperty(requestTo(() => fc.record({ type: types, data })), async (r) => expectAnswered(r, await send(w.app, r))), runs(500));
  }, deep ? 3_600_000 : 60_000);
});
