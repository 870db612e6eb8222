import { isIP, Socket } from 'node:net';
import { z } from 'zod';
import { defineKind, ProbeError, type Assertion } from '../check-kind.js';
import { answered, assertFlag, obs, parsePlain } from '../assertions.js';

interface ReachFacts {
  reached: boolean;
  detail: string;
}

/** Machine A reaches B on a TCP port or by ping: observed, from A or from the grader. */
export const reachableKind = defineKind(
  'reachable',
  {
    to: z.string().min(1).describe('Machine name or address'),
    from: z.string().optional().describe('Machine that tries, or "grader"; defaults to the check\'s machine'),
    port: z.number().int().min(1).max(65535).optional(),
    ping: z.boolean().optional(),
    reachable: z.boolean().default(true),
  },
  {
    machinesReferenced: (check) => [check.from, check.to].filter((m): m is string => Boolean(m && m !== 'grader' && !isIP(m))),
    validate(check) {
      const problems: string[] = [];
      if ((check.port !== undefined) === Boolean(check.ping)) problems.push('give exactly one of `port` or `ping: true`');
      if (check.from === 'grader' && check.ping) problems.push('ping from the grader is not supported; give a port');
      return problems;
    },
    plan(check, ctx) {
      const from = check.from ?? check.machine;
      const address = isIP(check.to) ? check.to : ctx.addressOf(check.to, from);
      if (!address) throw new ProbeError(`no address for ${check.to} as seen from ${from}`);
      const budget = Math.max(500, Math.floor(check.timeout / 2));
      if (from === 'grader') {
        const port = check.port as number;
        return { observe: () => connectFromGrader(address, port, budget) };
      }
      const probe = { reach: check.port !== undefined ? obs('connect', address, check.port, budget) : obs('ping', address, budget) };
      return { machine: from, probe };
    },
    evaluate(check, facts, ctx) {
      let reach: ReachFacts;
      const from = check.from ?? check.machine;
      const target = `${describeEnd(check.to, isIP(check.to) ? undefined : ctx?.addressOf(check.to, from))}${check.port ? `:${check.port}` : ' (ping)'}`;
      // From where the flow was tried: the machine (or the grader), and its
      // address on the way to a target named as a machine.
      const source = from === 'grader' || isIP(check.to) ? from : describeEnd(from, ctx?.addressOf(from, check.to));
      if (facts.observed !== undefined) {
        reach = facts.observed as ReachFacts;
      } else {
        const record = answered(facts, 'reach', check.port !== undefined ? 'try the connection' : 'ping');
        const f = parsePlain(record.data.toString('utf8'));
        reach = record.status === 'neg' ? { reached: false, detail: f.get('reason') ?? 'no answer' } : { reached: true, detail: check.port !== undefined ? `connected in ${f.get('ms')} ms` : `replied in ${f.get('ms')} ms` };
      }
      const assertions: Assertion[] = [
        assertFlag('reachable', check.reachable, reach.reached, reach.reached ? `from ${from}, reached ${target}` : `from ${from}, ${target}: ${reach.detail}`),
      ];
      return { assertions, evidence: `tried from ${source} to ${target}: ${reach.reached ? 'reached' : 'not reached'} (${reach.detail})` };
    },
  },
);

/** "srv (10.0.0.5)" when the address is known and differs from the name. */
function describeEnd(name: string, address: string | undefined): string {
  return address && address !== name ? `${name} (${address})` : name;
}

function connectFromGrader(address: string, port: number, timeoutMs: number): Promise<ReachFacts> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (facts: ReachFacts) => {
      socket.destroy();
      resolve(facts);
    };
    socket.setTimeout(timeoutMs, () => done({ reached: false, detail: `no answer within ${timeoutMs} ms` }));
    socket.once('connect', () => done({ reached: true, detail: 'connected' }));
    socket.once('error', (err) => done({ reached: false, detail: err.message }));
    socket.connect(port, address);
  });
}
