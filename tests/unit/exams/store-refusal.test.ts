import { hashCandidateToken } from '../../../src/access/index.js';
import { HEARTBEAT_KEY } from '../../../src/exams/index.js';
import type { LabRecord } from '../../../src/labs/index.js';
import { StorageFullError } from '../../../src/util/errors.js';
import { ExamHarness } from '../../fakes/exam-harness.js';
import { flagScenario } from '../../fakes/flag-scenarios.js';

const ROOM = 100 * 2 ** 30;

/**
 * The store refusing writes (its disk under the floor, as when it is full)
 * while an exam runs, on the real stores, pipeline and scheduler with fake
 * engines and a manual clock: nothing is dropped, nobody gets time, and it
 * all goes on once the store takes writes again.
 */
describe('an exam while the store refuses writes', () => {
  let h: ExamHarness;
  afterEach(() => h.close());

  const candidate = (examId: string, id: string) => h.exams.candidate(examId, id);
  const labOf = (examId: string, id: string) => h.labStore.labOf(candidate(examId, id)) as LabRecord;

  test('a deadline passing cuts the candidate off at once; the end is written, and graded, once the store takes writes: with the deadline and when access was cut, no time given', async () => {
    h = ExamHarness.create();
    const { exam, tokens } = await h.runningExam(flagScenario(), ['alice', 'bruno']);
    const scheduler = h.scheduler();
    const cuts: string[] = [];
    h.sessions.register(exam.id, 'alice', (reason) => cuts.push(reason));
    const deadline = candidate(exam.id, 'alice').deadline as string;

    h.disk.freeBytes = 0;
    expect(() => h.service.extend(exam.id, 'alice', 60_000, 'operator')).toThrow(StorageFullError);
    h.clock.advance(Date.parse(deadline) - h.clock.now() + 500);
    const cutAt = h.clock.iso();
    scheduler.tick();
    expect(cuts).toEqual(['time-up']);
    expect(candidate(exam.id, 'alice').phase).toBe('active');
    const alice = hashCandidateToken(tokens.find((t) => t.id === 'alice')?.token as string);
    expect(() => h.service.admit(alice)).toThrow('time is up: your exam is over');
    // The heartbeat goes on: a restart would not take this for the daemon being away.
    expect(h.exams.getState(HEARTBEAT_KEY)).toBe(cutAt);
    h.clock.advance(30_000);
    scheduler.tick();
    expect(cuts).toEqual(['time-up']);

    h.disk.freeBytes = ROOM;
    h.clock.advance(1000);
    const backAt = h.clock.iso();
    scheduler.tick();
    await h.settle();
    for (const id of ['alice', 'bruno']) {
      expect(candidate(exam.id, id)).toMatchObject({ phase: 'ended', deadline, extensionMs: 0, finalRunId: expect.any(String) });
      const end = h.audit({ examId: exam.id, candidateId: id }).find((r) => r.action === 'candidate.end');
      expect(end?.detail).toEqual({ reason: 'deadline reached', deadline, accessCutAt: cutAt });
    }
    expect(h.exams.exam(exam.id).status).toBe('ended');
    const period = h.audit().filter((r) => r.action === 'daemon.store.refused');
    expect(period.map((r) => r.detail)).toEqual([{ from: cutAt, to: backAt, seconds: 31, problem: expect.stringMatching(/^the data directory's filesystem is full/), sessionsRefused: [] }]);
    expect(h.actions().filter((a) => a === 'candidate.extend' || a === 'daemon.outage')).toEqual([]);
  });

  test('a build the store refuses uses up no attempt and fails no one: it is done again once the store takes writes', async () => {
    h = ExamHarness.create({ attempts: 1 });
    const { exam } = await h.createExam(flagScenario(), ['alice']);
    const scheduler = h.scheduler();
    h.service.start(exam.id, 'operator');
    h.disk.freeBytes = 0;
    await h.settle();
    expect(candidate(exam.id, 'alice')).toMatchObject({ phase: 'provisioning', attempts: 0 });
    scheduler.tick();
    await h.settle();
    expect(candidate(exam.id, 'alice').phase).toBe('provisioning');

    h.disk.freeBytes = ROOM;
    h.clock.advance(h.settings.retryDelayMs);
    scheduler.tick();
    await h.settle();
    expect(candidate(exam.id, 'alice')).toMatchObject({ phase: 'active', attempts: 1 });
    expect(h.actions({ examId: exam.id, candidateId: 'alice' })).toEqual(['lab.create', 'lab.offer']);
  });

  test('a grading whose result the store refuses is graded again once it takes writes; the run left running says why', async () => {
    h = ExamHarness.create();
    const { exam } = await h.runningExam(flagScenario(), ['alice']);
    const scheduler = h.scheduler();
    const lab = labOf(exam.id, 'alice');
    const finishRun = h.labStore.finishRun.bind(h.labStore);
    // The disk fills just as the result is stored.
    h.labStore.finishRun = (...args) => {
      h.labStore.finishRun = finishRun;
      h.disk.freeBytes = 0;
      return finishRun(...args);
    };
    h.service.endCandidate(exam.id, 'alice', 'operator', 'handed in');
    await h.settle();
    expect(candidate(exam.id, 'alice').phase).toBe('ending');
    const left = h.labStore.runs(lab.id).filter((r) => r.purpose === 'final');
    expect(left.map((r) => r.status)).toEqual(['running']);

    h.disk.freeBytes = ROOM;
    h.clock.advance(h.settings.retryDelayMs);
    scheduler.tick();
    await h.settle();
    const runs = h.labStore.runs(lab.id).filter((r) => r.purpose === 'final');
    expect(runs.map((r) => [r.status, r.error])).toEqual([
      ['failed', 'interrupted: its result could not be stored; graded again'],
      ['done', undefined],
    ]);
    expect(candidate(exam.id, 'alice')).toMatchObject({ phase: 'ended', finalRunId: runs[1]?.id });
    expect(h.exams.exam(exam.id).status).toBe('ended');
  });

  test('a record of what already happened (a session closed) waits for the store, with when it happened', () => {
    h = ExamHarness.create();
    const scheduler = h.scheduler();
    h.disk.freeBytes = 0;
    scheduler.tick();
    expect(() => h.stores.audit.appendLater({ actor: 'candidate:alice', action: 'lab.session.close', detail: { seconds: 12 } })).not.toThrow();
    expect(h.actions()).toEqual([]);
    h.disk.freeBytes = ROOM;
    scheduler.tick();
    expect(h.audit().map((r) => [r.action, r.detail.seconds, typeof r.detail.happenedAt])).toEqual([
      ['daemon.store.refused', 0, 'undefined'],
      ['lab.session.close', 12, 'string'],
    ]);
  });
});
