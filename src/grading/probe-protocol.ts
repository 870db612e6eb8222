import type { Observation, ProbeRecord } from '../checks/index.js';

/**
 * The grader's side of `examlab-probe serve` (images/toolbox/examlab-probe.c):
 * the work goes in on stdin, one request a line; one framed record per
 * request comes back on stdout. The reading is strict: a record that is
 * malformed, unknown, doubled or missing is a problem for the checks that
 * needed it, never an answer.
 */

export const PROBE_PROTOCOL = 1;

/** The largest answer the grader reads from one machine; more is a flood, and the run stops. */
export const MAX_PROBE_OUTPUT = 32 << 20;

/** Whether a value can travel as a request argument (one line, tab-separated). */
export function encodable(value: string | number): boolean {
  return !/[\t\n\r\0]/.test(String(value));
}

/** The probe's stdin: a header with the run's deadline, then `id<TAB>verb<TAB>args…` lines. */
export function encodeWork(requests: ReadonlyMap<number, Observation>, deadlineMs: number): string {
  const lines = [`examlab-probe ${PROBE_PROTOCOL} ${Math.max(1, Math.round(deadlineMs))}`];
  for (const [id, o] of requests) {
    if (!o.args.every(encodable)) throw new Error(`request ${id} (${o.verb}) has an argument with a tab or a line break`);
    lines.push([id, o.verb, ...o.args.map(String)].join('\t'));
  }
  return `${lines.join('\n')}\n`;
}

export interface DecodedAnswers {
  records: Map<number, ProbeRecord>;
  /** Why some or all records are missing (framing lost, a record doubled, the run cut short). */
  problem?: string;
}

const STATUSES = new Set(['ok', 'part', 'neg', 'err']);

/** Reads the probe's records for the requests `ids`; anything else in the output is a problem. */
export function decodeAnswers(output: Buffer, ids: ReadonlySet<number>): DecodedAnswers {
  const records = new Map<number, ProbeRecord>();
  let at = 0;
  const fail = (problem: string): DecodedAnswers => ({ records, problem });
  for (;;) {
    const eol = output.indexOf(0x0a, at);
    if (eol < 0) return fail(at >= output.length ? 'the probe stopped before it had answered everything' : 'the probe\'s output ends in the middle of a record');
    const head = output.subarray(at, eol).toString('latin1');
    const [first = '', status = '', length = '', ...extra] = head.split('\t');
    if (first === 'end' && extra.length === 0 && length === '' && /^\d+$/.test(status)) {
      if (eol + 1 !== output.length) return fail('the probe wrote something after its last record');
      if (Number(status) !== records.size) return fail(`the probe says it answered ${status} requests, ${records.size} records came`);
      const missing = [...ids].filter((id) => !records.has(id));
      return missing.length ? fail(`the probe did not answer ${missing.length} request(s)`) : { records };
    }
    if (!/^\d+$/.test(first) || !STATUSES.has(status) || !/^\d+$/.test(length) || extra.length) {
      return fail(`malformed record header "${head.slice(0, 80)}"`);
    }
    const id = Number(first);
    const size = Number(length);
    const start = eol + 1;
    if (id === 0) return fail(`the probe refused its work: ${readPayload(output, eol, length)}`);
    if (start + size + 1 > output.length || output[start + size] !== 0x0a) return fail(`record ${id} is cut short or misframed`);
    if (!ids.has(id)) return fail(`record ${id} answers nothing that was asked`);
    if (records.has(id)) return fail(`record ${id} came twice`);
    records.set(id, { status: status as ProbeRecord['status'], data: Buffer.from(output.subarray(start, start + size)) });
    at = start + size + 1;
  }
}

function readPayload(output: Buffer, eol: number, length: string): string {
  const size = Number(length) || 0;
  return output.subarray(eol + 1, eol + 1 + Math.min(size, 500)).toString('utf8').trim();
}
