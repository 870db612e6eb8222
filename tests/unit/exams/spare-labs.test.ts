import type { LabRecord } from '../../../src/labs/index.js';
import { InputError } from '../../../src/util/errors.js';
import { ExamHarness } from '../../fakes/exam-harness.js';
import { DURATION_MS, flagScenario } from '../../fakes/flag-scenarios.js';

/** Spare labs: built and verified for no one, so that a reset is a swap rather than a rebuild. */
describe('spare labs', () => {
  let h: ExamHarness;
  beforeEach(() => (h = ExamHarness.create()));
  afterEach(() => h.close());

  const candidate = (examId: string, id: string) => h.exams.candidate(examId, id);
  const labOf = (examId: string, id: string) => h.labStore.labOf(candidate(examId, id)) as LabRecord;
  const creates = () => h.calls.filter((c) => c.op === 'createMachine').length;

  test('are built and verified beside the candidates\' labs, for no one', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice', 'bruno'], { spares: 2 });
    const spares = h.labStore.spares(exam.id);
    expect(spares.map((l) => [l.state, l.candidateId])).toEqual([
      ['ready', undefined],
      ['ready', undefined],
    ]);
    for (const s of spares) expect(h.labStore.runs(s.id).map((r) => [r.purpose, r.status])).toEqual([['baseline', 'done']]);
    expect(h.reader.summary(exam.id).progress.spares).toEqual({ wanted: 2, ready: 2, building: 0 });
  });

  test('a reset swaps one in at once: the candidate keeps their deadline, the old lab is removed behind, and a new spare is built', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice'], { spares: 1 });
    const before = candidate(exam.id, 'alice');
    const old = labOf(exam.id, 'alice');
    const spare = h.labStore.spares(exam.id)[0] as LabRecord;
    const built = creates();

    const after = h.service.reset(exam.id, 'alice', 'operator');
    // At once, before any engine work: the candidate is on the spare.
    expect(after).toMatchObject({ phase: 'active', labId: spare.id, seed: spare.seed, deadline: before.deadline, offeredAt: before.offeredAt });
    expect(h.labStore.get(spare.id)).toMatchObject({ state: 'running', candidateId: 'alice' });
    expect(h.labStore.get(spare.id).variables['candidate.id']).toBe('alice');
    expect(creates()).toBe(built);

    await h.settle();
    expect(h.labStore.get(old.id).state).toBe('destroyed');
    expect(h.labStore.spares(exam.id).map((l) => l.state)).toEqual(['ready']);
    expect(h.labStore.spares(exam.id)[0]?.id).not.toBe(spare.id);
    expect(h.audit({ examId: exam.id }).find((r) => r.action === 'candidate.reset')).toMatchObject({ labId: spare.id, detail: { spare: true, replaced: old.id } });
  });

  test('with no spare ready, a reset rebuilds the lab as before', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice', 'bruno'], { spares: 1 });
    h.service.reset(exam.id, 'alice', 'operator');
    expect(h.service.reset(exam.id, 'bruno', 'operator').phase).toBe('provisioning');
    await h.settle();
    expect(candidate(exam.id, 'bruno').phase).toBe('active');
  });

  test('a candidate whose lab failed gets a spare and their clock starts then', async () => {
    const { exam } = await h.createExam(flagScenario(), ['alice'], { spares: 1 });
    // Three attempts for alice's lab, one for the spare: every build fails.
    h.docker.failNext('createMachine', { times: 4, machine: 'pc' });
    h.service.start(exam.id, 'operator');
    await h.settle();
    expect(candidate(exam.id, 'alice').phase).toBe('failed');
    expect(h.labStore.spares(exam.id)).toEqual([]);
    h.pipeline.launchSpares(exam.id);
    await h.settle();
    const at = h.clock.now();
    const after = h.service.reset(exam.id, 'alice', 'operator');
    expect(after).toMatchObject({ phase: 'active', offeredAt: new Date(at).toISOString(), deadline: new Date(at + DURATION_MS).toISOString() });
  });

  test('in a prepared exam, a swapped spare waits ready like the others', async () => {
    const { exam } = await h.createExam(flagScenario(), ['alice'], { prepare: true, spares: 1 });
    await h.settle();
    const spare = h.labStore.spares(exam.id)[0] as LabRecord;
    expect(h.service.reset(exam.id, 'alice', 'operator')).toMatchObject({ phase: 'ready', labId: spare.id });
    expect(h.labStore.get(spare.id).state).toBe('ready');
  });

  test('are removed when the exam ends, and kept by a restarted daemon while it runs', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice'], { spares: 2 });
    const spares = h.labStore.spares(exam.id);
    for (const m of h.docker.machinesOf((spares[1] as LabRecord).id)) h.docker.machines.delete(`${m.labId}/${m.name}`);
    const daemon = h.restart();
    await daemon.reconcile();
    await daemon.settle();
    // The lost one was removed and replaced.
    expect(h.labStore.spares(exam.id).map((l) => l.state)).toEqual(['ready', 'ready']);
    expect(h.labStore.get((spares[1] as LabRecord).id).state).toBe('destroyed');

    daemon.service.end(exam.id, 'operator');
    await daemon.settle();
    expect(h.labStore.spares(exam.id)).toEqual([]);
  });

  test('are refused for a scenario that builds its labs with the candidate\'s name', async () => {
    const yaml = flagScenario().replace('run: flag-on sshd', "run: 'flag-on {{ candidate.id }}'");
    await expect(h.createExam(yaml, ['alice'], { spares: 1 })).rejects.toThrow(InputError);
    await expect(h.createExam(yaml, ['alice'])).resolves.toBeDefined();
  });
});
