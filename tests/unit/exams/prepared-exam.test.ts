import { hashCandidateToken, UnauthenticatedError } from '../../../src/access/index.js';
import type { IssuedToken } from '../../../src/exams/index.js';
import type { LabRecord } from '../../../src/labs/index.js';
import { ConflictError } from '../../../src/util/errors.js';
import { ExamHarness } from '../../fakes/exam-harness.js';
import { DURATION_MS, flagScenario } from '../../fakes/flag-scenarios.js';

/** An exam prepared before its start: labs built and verified with access shut; the start opens them all at once. */
describe('a prepared exam', () => {
  let h: ExamHarness;
  beforeEach(() => (h = ExamHarness.create()));
  afterEach(() => h.close());

  const candidate = (examId: string, id: string) => h.exams.candidate(examId, id);
  const labOf = (examId: string, id: string) => h.labStore.labOf(candidate(examId, id)) as LabRecord;
  const tokenOf = (tokens: IssuedToken[], id: string) => hashCandidateToken(tokens.find((t) => t.id === id)?.token ?? '');

  test('every lab is built, verified and waits ready, no clock running and no one let in; the start offers them all at the same instant', async () => {
    const { exam, tokens } = await h.createExam(flagScenario(), ['alice', 'bruno', 'carol'], { prepare: true });
    expect(h.exams.exam(exam.id).status).toBe('preparing');
    await h.settle();
    for (const id of ['alice', 'bruno', 'carol']) {
      expect(candidate(exam.id, id)).toMatchObject({ phase: 'ready', offeredAt: undefined, deadline: undefined });
      expect(labOf(exam.id, id).state).toBe('ready');
      expect(h.labStore.runs(labOf(exam.id, id).id).map((r) => [r.purpose, r.status])).toEqual([['baseline', 'done']]);
    }
    expect(() => h.service.admit(tokenOf(tokens, 'alice'))).toThrow(UnauthenticatedError);
    expect(() => h.service.setRoster(exam.id, [{ id: 'dan', name: 'Dan' }], 'operator')).toThrow(ConflictError);

    h.clock.advance(30 * 60_000);
    const engineCalls = h.calls.length;
    const startedAt = new Date(h.clock.now()).toISOString();
    expect(h.service.start(exam.id, 'operator').status).toBe('running');
    // No engine work at the start: the labs were ready.
    expect(h.calls.length).toBe(engineCalls);
    for (const id of ['alice', 'bruno', 'carol']) {
      expect(candidate(exam.id, id)).toMatchObject({ phase: 'active', offeredAt: startedAt, deadline: new Date(Date.parse(startedAt) + DURATION_MS).toISOString() });
      expect(labOf(exam.id, id).state).toBe('running');
    }
    expect(h.service.admit(tokenOf(tokens, 'alice'))).toEqual({ examId: exam.id, candidateId: 'alice' });
    expect(h.actions({ examId: exam.id })).toEqual(['exam.create', 'exam.prepare', 'lab.create', 'lab.create', 'lab.create', 'lab.ready', 'lab.ready', 'lab.ready', 'exam.start']);
  });

  test('a lab still being built at the start is offered when it is ready, its clock starting then', async () => {
    const { exam } = await h.createExam(flagScenario(), ['alice', 'bruno']);
    h.docker.hangNext('createMachine', 'pc');
    h.service.prepare(exam.id, 'operator');
    await h.until(() => candidate(exam.id, 'bruno').phase === 'ready');
    h.service.start(exam.id, 'operator');
    expect(candidate(exam.id, 'bruno').phase).toBe('active');
    expect(candidate(exam.id, 'alice').phase).toBe('provisioning');
  });

  test('an extension given before the start counts from the start', async () => {
    const { exam } = await h.createExam(flagScenario(), ['alice'], { prepare: true });
    await h.settle();
    h.service.extend(exam.id, 'alice', 10 * 60_000, 'operator');
    const at = h.clock.now();
    h.service.start(exam.id, 'operator');
    expect(candidate(exam.id, 'alice').deadline).toBe(new Date(at + DURATION_MS + 10 * 60_000).toISOString());
  });

  test('a ready lab can be reset: built again, and ready again', async () => {
    const { exam } = await h.createExam(flagScenario(), ['alice'], { prepare: true });
    await h.settle();
    const lab = labOf(exam.id, 'alice').id;
    const creates = () => h.callsOf(lab).filter((c) => c.startsWith('createMachine')).length;
    const once = creates();
    h.service.reset(exam.id, 'alice', 'operator');
    await h.settle();
    expect(candidate(exam.id, 'alice').phase).toBe('ready');
    expect(creates()).toBe(2 * once);
  });

  test('ended before its start: the ready labs are removed and no one has a result', async () => {
    const { exam } = await h.createExam(flagScenario(), ['alice', 'bruno'], { prepare: true });
    await h.settle();
    h.service.end(exam.id, 'operator');
    await h.settle();
    expect(h.exams.exam(exam.id).status).toBe('ended');
    for (const id of ['alice', 'bruno']) {
      expect(candidate(exam.id, id)).toMatchObject({ phase: 'ended', finalRunId: undefined });
      expect(labOf(exam.id, id).state).toBe('destroyed');
    }
    expect(h.docker.machines.size).toBe(0);
  });

  test('only a scheduled exam is prepared', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice']);
    expect(() => h.service.prepare(exam.id, 'operator')).toThrow(/is running; only a scheduled exam can be prepared/);
  });

  test('a daemon restarted while the exam waits keeps the ready labs, and rebuilds a lost one to ready', async () => {
    const { exam } = await h.createExam(flagScenario(), ['alice', 'bruno'], { prepare: true });
    await h.settle();
    for (const m of h.docker.machinesOf(labOf(exam.id, 'bruno').id)) h.docker.machines.delete(`${m.labId}/${m.name}`);
    const daemon = h.restart();
    const report = await daemon.reconcile();
    await daemon.settle();
    expect(report).toMatchObject({ adopted: 1, rebuilt: 1 });
    expect(h.exams.candidates(exam.id).map((c) => c.phase)).toEqual(['ready', 'ready']);
    expect(h.exams.exam(exam.id).status).toBe('preparing');
  });
});
