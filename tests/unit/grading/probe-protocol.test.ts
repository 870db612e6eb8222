import { decodeAnswers, encodeWork } from '../../../src/grading/probe-protocol.js';
import { runMachine, type MachineRunner } from '../../../src/grading/machine-run.js';
import type { Observation } from '../../../src/checks/registry.js';

const rec = (id: number | string, status: string, payload: string) => `${id}\t${status}\t${Buffer.byteLength(payload)}\n${payload}\n`;
const out = (...records: string[]) => Buffer.from(`${records.join('')}end\t${records.length}\n`);

describe('the grader reads the probe strictly', () => {
  test('the work: a header with the deadline, one tab-separated line a request', () => {
    const work = new Map<number, Observation>([
      [1, { verb: 'lstat', args: ['/etc/passwd'] }],
      [2, { verb: 'connect', args: ['10.0.0.1', 22, 500] }],
    ]);
    expect(encodeWork(work, 12_000)).toBe('examlab-probe 1 12000\n1\tlstat\t/etc/passwd\n2\tconnect\t10.0.0.1\t22\t500\n');
    expect(() => encodeWork(new Map([[1, { verb: 'read', args: ['/a\nb', 10] }]]), 1000)).toThrow(/tab or a line break/);
  });

  test('well-framed records for every request are the answers', () => {
    const decoded = decodeAnswers(out(rec(1, 'ok', 'type=file\n'), rec(2, 'neg', 'missing')), new Set([1, 2]));
    expect(decoded.problem).toBeUndefined();
    expect(decoded.records.get(1)).toEqual({ status: 'ok', data: Buffer.from('type=file\n') });
    expect(decoded.records.get(2)?.status).toBe('neg');
  });

  test('binary payloads keep their bytes', () => {
    const bytes = Buffer.from([0, 10, 9, 255, 10, 10]);
    const raw = Buffer.concat([Buffer.from(`1\tok\t${bytes.length}\n`), bytes, Buffer.from('\nend\t1\n')]);
    expect(decodeAnswers(raw, new Set([1])).records.get(1)?.data).toEqual(bytes);
  });

  test.each([
    ['a record twice', out(rec(1, 'ok', 'a'), rec(1, 'ok', 'b')), /record 1 came twice/],
    ['a record for nothing asked', out(rec(1, 'ok', 'a'), rec(7, 'ok', 'b')), /record 7 answers nothing that was asked/],
    ['a status that does not exist', out(rec(1, 'yes', 'a')), /malformed record header/],
    ['a length that lies', Buffer.from('1\tok\t99\nshort\nend\t1\n'), /cut short or misframed/],
    ['no end line', Buffer.from(rec(1, 'ok', 'a')), /stopped before it had answered everything/],
    ['an end line that miscounts', Buffer.from(`${rec(1, 'ok', 'a')}end\t2\n`), /says it answered 2 requests, 1 records came/],
    ['bytes after the end', Buffer.from(`${rec(1, 'ok', 'a')}end\t1\nmore`), /after its last record/],
    ['a request left unanswered', out(rec(1, 'ok', 'a')), /did not answer 1 request/],
    ['the probe refusing its work', Buffer.from(rec(0, 'err', 'line 3: no verb')), /refused its work: line 3: no verb/],
  ])('%s is a problem, not an answer', (_what, raw, problem) => {
    const ids = new Set(_what === 'a request left unanswered' ? [1, 2] : [1]);
    expect(decodeAnswers(raw, ids).problem).toMatch(problem);
  });

  test('a machine run: shared observations asked once; a check whose record is missing is an error, the others keep theirs', async () => {
    let sent = '';
    const runner: MachineRunner = {
      probe: async (work) => {
        sent = work;
        // The probe stops after the first record: the second check gets nothing.
        return Buffer.from(rec(1, 'ok', 'root:x:0:0::/root:/bin/sh\n'));
      },
      runScripts: async () => [],
    };
    const passwd: Observation = { verb: 'read', args: ['/etc/passwd', 1 << 20] };
    const answers = await runMachine(
      [
        { probe: { passwd }, timeoutMs: 3000 },
        { probe: { passwd, stat: { verb: 'lstat', args: ['/srv'] } }, timeoutMs: 3000 },
        { probe: { bad: { verb: 'lstat', args: ['/a\tb'] } }, timeoutMs: 3000 },
      ],
      runner,
    );
    expect(sent).toBe('examlab-probe 1 9000\n1\tread\t/etc/passwd\t1048576\n2\tlstat\t/srv\n');
    expect(answers[0]?.probe?.get('passwd')?.status).toBe('ok');
    expect(answers[1]?.problem).toMatch(/stopped before it had answered everything/);
    expect(answers[2]?.problem).toMatch(/tab or a line break/);
  });

  test('a machine that cannot be reached gives every check the reason', async () => {
    const runner: MachineRunner = {
      probe: async () => {
        throw new Error('/.examlab-grader/examlab-probe did not finish within 8000 ms');
      },
      runScripts: async () => [],
    };
    const answers = await runMachine([{ probe: { a: { verb: 'procs', args: [] } }, timeoutMs: 3000 }], runner);
    expect(answers[0]?.problem).toMatch(/did not finish within 8000 ms/);
  });
});
