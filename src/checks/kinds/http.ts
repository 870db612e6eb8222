import { isIP } from 'node:net';
import { z } from 'zod';
import { pattern } from '../fields.js';
import { defineKind, ProbeError, type Assertion } from '../check-kind.js';
import { assertMatch, clip, requireFragment } from '../assertions.js';
import { shq } from '../../util/shell.js';
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
      // busybox is static: its own name lookups would need the machine's NSS libraries. The
      // name is resolved as the machine's resolver would (/etc/hosts, then DNS by the probe); wget gets the address.
      const url = new URL(check.url);
      const host = url.hostname.replace(/^\[|\]$/g, '');
      const literal = isIP(host) !== 0;
      const rest = `${url.port ? `:${url.port}` : ''}${url.pathname}${url.search}`;
      const fragment = [
        literal
          ? `addr=${shq(isIP(host) === 6 ? `[${host}]` : host)}`
          : [
              `addr=$($B awk -v h=${shq(host)} '!/^[[:space:]]*#/ { for (i = 2; i <= NF; i++) if ($i == h) { print $1; exit } }' /etc/hosts)`,
              `[ -n "$addr" ] || addr=$($P dns A ${shq(host)} ${Math.max(500, Math.floor(check.timeout / 4))} | $B sed -n 's/^answer=A //p' | $B head -n 1)`,
            ].join('\n'),
        `if [ -z "$addr" ]; then emitv log ${shq(`cannot resolve ${host}`)}; exit 0; fi`,
        // busybox 1.35's own `wget -T` crashes when statically linked: the timeout applet bounds it instead.
        `$B timeout ${seconds} $B wget -S --header ${shq(`Host: ${url.host}`)} -O - ${shq(`${url.protocol}//`)}"$addr"${shq(rest)} >"$D/http.body" 2>"$D/http.log"`,
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
        const f = requireFragment(facts.fragment).facts;
        const log = f.get('log') ?? '';
        const statuses = [...log.matchAll(/HTTP\/[\d.]+ (\d{3})/g)].map((m) => Number(m[1]));
        const status = statuses.at(-1);
        const failure = f.get('rc') === '143' ? `no answer within ${Math.max(1, Math.floor(check.timeout / 2000))} s` : log.trim().split('\n').at(-1) || 'no response';
        http = { status, body: f.get('body') ?? '', failure: status === undefined ? failure : undefined };
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
