import { z } from 'zod';
import { pattern } from './fields.js';
import { defineKind, ProbeError, type Assertion } from './types.js';
import { assertMatch, clip, parseEmitted, requireFragment, shq } from './shell.js';
import { matcherSchema } from '../matchers.js';

interface HttpFacts {
  status?: number;
  body: string;
  failure?: string;
}

/**
 * An HTTP request, made from a lab machine (the grader's busybox wget) or from
 * the grader itself (`from: grader`), so a page is judged by what it serves.
 */
export const httpKind = defineKind(
  'http',
  {
    url: pattern(/^https?:\/\/[^\s]+$/, 'must be an http:// or https:// URL'),
    from: z.string().optional().describe('Machine making the request, or "grader"; defaults to the check\'s machine'),
    status: matcherSchema.default(200),
    body: matcherSchema.optional().describe('Matched against the first 64 KiB of the body'),
  },
  {
    machinesReferenced: (check) => (check.from && check.from !== 'grader' ? [check.from] : []),
    plan(check) {
      const seconds = Math.max(1, Math.floor(check.timeout / 2000));
      if (check.from === 'grader') {
        return { observe: () => fetchFromGrader(check.url, check.timeout / 2) };
      }
      const fragment = [
        `$B wget -S -T ${seconds} -O "$D/http.body" ${shq(check.url)} 2>"$D/http.log"`,
        `emitv rc $?`,
        `emit log $B cat "$D/http.log"`,
        `[ -f "$D/http.body" ] && emit body $B head -c 65536 "$D/http.body"`,
        `$B rm -f "$D/http.body" "$D/http.log"; true`,
      ].join('\n');
      return { machine: check.from ?? check.machine, fragment };
    },
    evaluate(check, facts) {
      let http: HttpFacts;
      if (check.from === 'grader') {
        http = facts.observed as HttpFacts;
        if (!http) throw new ProbeError('the grader made no request');
      } else {
        const f = parseEmitted(requireFragment(facts.fragment));
        const log = f.get('log') ?? '';
        const statuses = [...log.matchAll(/HTTP\/[\d.]+ (\d{3})/g)].map((m) => Number(m[1]));
        const status = statuses.at(-1);
        http = { status, body: f.get('body') ?? '', failure: status === undefined ? log.trim().split('\n').at(-1) || 'no response' : undefined };
      }
      const evidence = http.status === undefined ? `${check.url}: ${http.failure}` : `${check.url}: HTTP ${http.status}\n${clip(http.body, 500)}`;
      const assertions: Assertion[] = [
        http.status === undefined
          ? { name: 'status', pass: false, expected: assertMatch('status', check.status, 0).expected, actual: `no response (${http.failure})` }
          : assertMatch('status', check.status, http.status),
      ];
      if (check.body !== undefined) {
        const a = assertMatch('body', check.body, http.body);
        assertions.push({ ...a, actual: `body of ${http.body.length} bytes${a.pass ? '' : ' does not match'}` });
      }
      return { assertions, evidence };
    },
  },
);

async function fetchFromGrader(url: string, timeoutMs: number): Promise<HttpFacts> {
  try {
    const response = await fetch(url, { signal: AbortSignal.timeout(timeoutMs), redirect: 'follow' });
    const body = (await response.text()).slice(0, 65536);
    return { status: response.status, body };
  } catch (err) {
    const cause = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    return { body: '', failure: cause };
  }
}
