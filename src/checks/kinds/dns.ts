import { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';
import { z } from 'zod';
import { pattern } from '../fields.js';
import { defineKind, ProbeError, type Assertion } from '../check-kind.js';
import { answered, assertFlag, assertMatch, obs } from '../assertions.js';
import { matcherSchema } from '../matchers.js';

const RECORD_TYPES = ['A', 'AAAA', 'CNAME', 'MX', 'TXT', 'NS', 'PTR', 'SRV'] as const;

interface DnsFacts {
  server?: string;
  rcode?: string;
  answers: { type: string; value: string }[];
  failure?: string;
}

/**
 * A DNS query made the way the machine's resolver would (its /etc/resolv.conf,
 * or a given server) by the grader's own probe, or from the grader itself.
 * A server that does not answer is a failing check, not an error.
 */
export const dnsKind = defineKind(
  'dns',
  {
    name: pattern(/^[A-Za-z0-9_.-]+$/, 'not a valid DNS name').describe('The name asked; for PTR an IPv4 address may be given (10.0.0.5 asks 5.0.0.10.in-addr.arpa)'),
    type: z.enum(RECORD_TYPES).default('A'),
    server: z.string().optional().describe('Machine name or address of the server to ask; the machine\'s resolv.conf otherwise'),
    from: z.string().optional().describe('Machine asking, or "grader"; defaults to the check\'s machine'),
    resolves: z.boolean().default(true),
    addresses: matcherSchema.optional().describe('Values of the answers of the asked type, e.g. { contains: "10.0.0.5" }; SRV answers read "priority weight port target"'),
  },
  {
    machinesReferenced: (check) => [check.from, check.server].filter((m): m is string => Boolean(m && m !== 'grader' && !isIP(m))),
    validate: (check) => (check.from === 'grader' && !check.server ? ['a DNS check from the grader needs a `server`'] : []),
    plan(check, ctx) {
      const from = check.from ?? check.machine;
      const server = check.server === undefined ? undefined : isIP(check.server) ? check.server : ctx.addressOf(check.server, from);
      if (check.server !== undefined && server === undefined) throw new ProbeError(`no address for DNS server ${check.server}`);
      const budget = Math.max(500, Math.floor(check.timeout / 2));
      const name = queriedName(check.type, check.name);
      if (from === 'grader') {
        if (!server) throw new ProbeError('a DNS check from the grader needs a server');
        return { observe: () => resolveFromGrader(name, check.type, server, budget) };
      }
      return { machine: from, probe: { dns: server ? obs('dns', check.type, name, budget, server) : obs('dns', check.type, name, budget) } };
    },
    evaluate(check, facts) {
      let dns: DnsFacts;
      if (facts.observed !== undefined) {
        dns = facts.observed as DnsFacts;
      } else {
        dns = parseProbeDns(answered(facts, 'dns', 'query DNS').data.toString('utf8'));
      }
      const values = dns.answers.filter((a) => a.type === check.type).map((a) => a.value);
      const resolved = dns.rcode === 'NOERROR' && values.length > 0;
      const outcome = dns.failure ?? (dns.rcode === 'NOERROR' && !values.length ? `no ${check.type} record` : (dns.rcode ?? 'no answer'));
      const evidence = `${queriedName(check.type, check.name)} ${check.type} via ${dns.server ?? 'resolv.conf'}: ${resolved ? values.join(', ') : outcome}`;
      const assertions: Assertion[] = [assertFlag('resolves', check.resolves, resolved, resolved ? `resolves to ${values.join(', ')}` : outcome)];
      if (check.addresses !== undefined && resolved) assertions.push(assertMatch('answers', check.addresses, values));
      return { assertions, evidence };
    },
  },
);

/**
 * The name a query asks: a PTR check may name the IPv4 address itself, whose
 * reverse name a template cannot spell (10.231.4.30 asks
 * 30.4.231.10.in-addr.arpa).
 */
export function queriedName(type: string, name: string): string {
  if (type !== 'PTR' || isIP(name) !== 4) return name;
  return `${name.split('.').reverse().join('.')}.in-addr.arpa`;
}

/** Parses the probe's answer: server=, rcode=, answer=TYPE VALUE lines, or reason= when no server answered. */
export function parseProbeDns(stdout: string): DnsFacts {
  const facts: DnsFacts = { answers: [] };
  for (const line of stdout.split('\n')) {
    const eq = line.indexOf('=');
    if (eq <= 0) continue;
    const key = line.slice(0, eq);
    const value = line.slice(eq + 1);
    if (key === 'server') facts.server = value;
    else if (key === 'rcode') facts.rcode = value;
    else if (key === 'reason') facts.failure = value;
    else if (key === 'answer') {
      const space = value.indexOf(' ');
      facts.answers.push({ type: value.slice(0, space), value: value.slice(space + 1) });
    }
  }
  if (facts.rcode) facts.failure = undefined;
  return facts;
}

async function resolveFromGrader(name: string, type: (typeof RECORD_TYPES)[number], server: string, timeoutMs: number): Promise<DnsFacts> {
  const resolver = new Resolver({ timeout: timeoutMs, tries: 1 });
  resolver.setServers([server]);
  try {
    const records = (await resolver.resolve(name, type)) as unknown as unknown[];
    const answers = records.map((r) => ({ type, value: formatRecord(r) }));
    return { server, rcode: 'NOERROR', answers };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code ?? '';
    const rcodes: Record<string, string> = { ENOTFOUND: 'NXDOMAIN', ENODATA: 'NOERROR', ESERVFAIL: 'SERVFAIL', EREFUSED: 'REFUSED' };
    if (rcodes[code]) return { server, rcode: rcodes[code], answers: [] };
    return { server, answers: [], failure: `${code || 'error'}: ${(err as Error).message}` };
  }
}

function formatRecord(record: unknown): string {
  if (typeof record === 'string') return record;
  if (Array.isArray(record)) return record.join('');
  const mx = record as { priority?: number; exchange?: string };
  if (mx.exchange !== undefined) return `${mx.priority} ${mx.exchange}`;
  // SRV: "priority weight port target", as the probe writes it.
  const srv = record as { priority?: number; weight?: number; port?: number; name?: string };
  if (srv.name !== undefined && srv.port !== undefined) return `${srv.priority} ${srv.weight} ${srv.port} ${srv.name}`;
  return JSON.stringify(record);
}
