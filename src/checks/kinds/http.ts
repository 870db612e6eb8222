import { z } from 'zod';
import { pattern } from '../fields.js';
import { defineKind, ProbeError, type Assertion, type ProbeRecord } from '../check-kind.js';
import { answered, assertMatch, clip, obs, parsePlain } from '../assertions.js';
import { matcherSchema } from '../matchers.js';

/** How much of a body a matcher sees. */
const BODY_BYTES = 65536;

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
      if (check.from === 'grader') {
        return { observe: () => fetchFromGrader(check.url, check.timeout / 2) };
      }
      // The probe resolves the name as the machine's resolver would (/etc/hosts, then its DNS servers) and speaks HTTP itself.
      const url = new URL(check.url);
      if (url.protocol !== 'http:') throw new ProbeError('an https:// request is made from the grader only (from: grader); from a machine, use http://');
      const host = url.hostname.replace(/^\[|\]$/g, '');
      const port = Number(url.port || 80);
      const probe = { http: obs('http', host, port, url.host, `${url.pathname}${url.search}`, Math.max(500, Math.floor(check.timeout / 2)), BODY_BYTES) };
      return { machine: check.from ?? check.machine, probe };
    },
    evaluate(check, facts) {
      let http: HttpFacts;
      if (check.from === 'grader') {
        http = facts.observed as HttpFacts;
        if (!http) throw new ProbeError('the grader made no request');
      } else {
        http = parseResponse(answered(facts, 'http', `request ${check.url}`));
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

/**
 * The grader's own request: redirects are not followed (a lab's server could
 * send the grader anywhere; the 3xx is what it answered) and at most
 * BODY_BYTES of the body are read, so no lab can flood the daemon.
 */
async function fetchFromGrader(url: string, timeoutMs: number): Promise<HttpFacts> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  try {
    const response = await fetch(url, { signal: abort.signal, redirect: 'manual' });
    const chunks: Buffer[] = [];
    let length = 0;
    const reader = response.body?.getReader();
    while (reader && length < BODY_BYTES) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(Buffer.from(value));
      length += value.length;
    }
    abort.abort(new Error('body read'));
    return { status: response.status, body: Buffer.concat(chunks).subarray(0, BODY_BYTES).toString('utf8') };
  } catch (err) {
    const cause = err instanceof Error ? ((err.cause as Error | undefined)?.message ?? err.message) : String(err);
    return { body: '', failure: cause };
  } finally {
    clearTimeout(timer);
  }
}

/** A raw HTTP response from the probe: status line, headers, body (or why there is none). */
export function parseResponse(record: ProbeRecord): HttpFacts {
  const text = record.data.toString('utf8');
  if (record.status === 'neg') return { body: '', failure: parsePlain(text).get('reason') ?? (text.trim() || 'no response') };
  const end = text.indexOf('\r\n\r\n');
  const head = end < 0 ? text : text.slice(0, end);
  const status = /^HTTP\/\d(?:\.\d)? (\d{3})/.exec(head)?.[1];
  if (!status) return { body: '', failure: `not an HTTP response: ${clip(head, 80)}` };
  return { status: Number(status), body: end < 0 ? '' : text.slice(end + 4) };
}
