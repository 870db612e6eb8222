import { jest } from '@jest/globals';
import { ENGINE_RETRY_MS } from '../../../src/exams/index.js';
import type { LabRecord } from '../../../src/labs/index.js';
import { EngineUnavailableError, EnvironmentError } from '../../../src/util/errors.js';
import { ExamHarness } from '../../fakes/exam-harness.js';
import type { FakeMachine } from '../../fakes/fake-provider.js';
import { DURATION_MS, flagScenario } from '../../fakes/flag-scenarios.js';

/** The background work on a candidate's lab: build, verify, offer; freeze, grade, pause. */
describe('the lab pipeline', () => {
  let h: ExamHarness;
  afterEach(() => h.close());

  const candidate = (examId: string, id = 'alice') => h.exams.candidate(examId, id);
  const labOf = (examId: string, id = 'alice') => h.labStore.labOf(candidate(examId, id)) as LabRecord;
  const pcOf = (examId: string) => h.docker.machine(labOf(examId).id, 'pc') as FakeMachine;

  describe('preparing a lab', () => {
    test('a transient failure is retried, each time later; the clock starts only when the lab is offered', async () => {
      h = ExamHarness.create({ attempts: 3, retryDelayMs: 1000 });
      h.docker.failNext('createMachine', { times: 2, machine: 'pc' });
      const started = h.clock.now();
      const { exam } = await h.runningExam(flagScenario(), ['alice']);

      expect(candidate(exam.id)).toMatchObject({ phase: 'active', attempts: 3, deadline: new Date(started + 3000 + DURATION_MS).toISOString() });
      expect(h.clock.sleeps).toEqual([1000, 2000]);
      expect(h.callsOf(labOf(exam.id).id, (c) => c.op === 'createMachine' && c.machine === 'pc')).toHaveLength(3);
      expect(h.labStore.events(labOf(exam.id).id).map((e) => e.to)).toEqual(['requested', 'provisioning', 'failed', 'provisioning', 'failed', 'provisioning', 'ready', 'running']);
      expect(h.metrics.errors).toEqual(['provisioning', 'provisioning']);
    });

    test('after `attempts` transient failures the candidate is failed with the reason, and nothing is left on the engines', async () => {
      h = ExamHarness.create({ attempts: 3, retryDelayMs: 500 });
      h.docker.failNext('createMachine', { times: 5, machine: 'pc' });
      const { exam } = await h.runningExam(flagScenario(), ['alice']);

      const c = candidate(exam.id);
      expect(c).toMatchObject({ phase: 'failed', attempts: 3, detail: 'docker: createMachine failed (scripted)' });
      expect(c.deadline).toBeUndefined();
      expect(h.clock.sleeps).toEqual([500, 1000]);
      expect(labOf(exam.id).state).toBe('failed');
      expect(h.docker.machines.size + h.docker.networks.size).toBe(0);
      expect(h.audit({ examId: exam.id, candidateId: 'alice' }).at(-1)).toMatchObject({ actor: 'system', action: 'lab.fail', labId: c.labId, detail: { reason: c.detail } });
      expect(h.exams.exam(exam.id).status).toBe('running');
    });

    test('a failure the next attempt cannot fix (a bad scenario) is not retried', async () => {
      h = ExamHarness.create({ attempts: 3 });
      const { exam } = await h.runningExam(flagScenario({ image: 'retired' }), ['alice']);
      expect(candidate(exam.id)).toMatchObject({ phase: 'failed', attempts: 1, detail: 'unknown image "retired"; known: base, vm' });
      expect(h.clock.sleeps).toEqual([]);
      expect(h.images.ensured.filter((name) => name === 'retired')).toHaveLength(1);
    });

    test('a broken state that is not as the scenario says is refused (baseline): retried, then the lab is removed', async () => {
      h = ExamHarness.create({ attempts: 2 });
      const { exam } = await h.runningExam(flagScenario({ fault: 'flag-off nothing' }), ['alice']);

      const c = candidate(exam.id);
      expect(c.phase).toBe('failed');
      expect(c.detail).toBe('the broken state is not as the scenario says (1 check(s)): check service: expected fail, got pass: the faults do not break what this check tests: observed exit code 0');
      const lab = labOf(exam.id);
      expect(lab.state).toBe('destroyed');
      expect(h.docker.machinesOf(lab.id)).toEqual([]);
      expect(h.labStore.runs(lab.id).map((r) => r.purpose)).toEqual(['baseline', 'baseline']);
      expect(h.actions({ examId: exam.id, candidateId: 'alice' })).toEqual(['lab.create', 'lab.fail']);
    });

    test('a baseline that has not settled (a machine not answering yet) passes at the next attempt, on a rebuilt lab', async () => {
      h = ExamHarness.create({ attempts: 3 });
      h.access.failNext('probe', { machine: 'srv' });
      const { exam } = await h.runningExam(flagScenario(), ['alice']);
      expect(candidate(exam.id)).toMatchObject({ phase: 'active', attempts: 2 });
      const runs = h.labStore.runs(labOf(exam.id).id);
      expect(runs.map((r) => r.results.find((x) => x.checkId === 'sshd')?.status)).toEqual(['error', 'pass']);
      expect(h.callsOf(labOf(exam.id).id, (c) => c.op === 'createMachine')).toHaveLength(4);
    });

    test('a candidate whose exam ended during the build gets no lab and no result', async () => {
      h = ExamHarness.create({ attempts: 3 });
      const { exam } = await h.createExam(flagScenario(), ['alice']);
      // The operator ends the exam while the engine is failing the first machine.
      h.docker.failNext('createMachine', {
        machine: 'pc',
        error: () => {
          h.service.end(exam.id, 'operator');
          return new EnvironmentError('engine busy');
        },
      });
      h.service.start(exam.id, 'operator');
      await h.settle();

      expect(candidate(exam.id)).toMatchObject({ phase: 'ended', detail: 'no result: the lab was never offered (failed)' });
      expect(labOf(exam.id).state).toBe('destroyed');
      expect(h.callsOf(labOf(exam.id).id, (c) => c.op === 'createMachine' && c.machine === 'pc')).toHaveLength(1);
      expect(h.clock.sleeps).toEqual([]);
      expect(h.exams.exam(exam.id).status).toBe('ended');
      expect(h.actions({ examId: exam.id, candidateId: 'alice' })).toEqual(['lab.create', 'candidate.ended']);
    });
  });

  describe('completing a candidate', () => {
    test('a running lab is locked, frozen, resumed only to be graded, paused again; the final run is recorded', async () => {
      h = ExamHarness.create();
      const { exam } = await h.runningExam(flagScenario(), ['alice']);
      const lab = labOf(exam.id);
      const from = h.calls.length;

      h.service.endCandidate(exam.id, 'alice', 'operator', 'handed in');
      await h.settle();

      // Each step on every machine before the next one starts.
      const steps = h.calls.slice(from).filter((c) => c.labId === lab.id).map((c) => c.op);
      expect(steps.filter((op, i) => op !== steps[i - 1])).toEqual(['open', 'exec', 'resumeMachine', 'probe', 'pauseMachine']);
      expect(h.access.scripts(lab.id, 'pc').at(-1)).toContain('usermod -L -e 1 technicien');

      const final = h.labStore.runs(lab.id).at(-1);
      expect(final).toMatchObject({ purpose: 'final', status: 'done', score: { points: 1, maxPoints: 3, complete: true } });
      expect(candidate(exam.id)).toMatchObject({ phase: 'ended', finalRunId: final?.id });
      expect(h.labStore.events(lab.id).map((e) => e.to).slice(-2)).toEqual(['frozen', 'graded']);
      expect(h.docker.machinesOf(lab.id).map((m) => m.state)).toEqual(['paused', 'paused']);
      expect(h.audit({ examId: exam.id, candidateId: 'alice' }).at(-1)).toMatchObject({ action: 'lab.grade', detail: { run: final?.id, points: 1, maxPoints: 3, complete: true } });
      expect(h.metrics.graded).toBe(1);
      // The only candidate is done: so is the exam.
      expect(h.exams.exam(exam.id).status).toBe('ended');
    });

    test('a grading that fails is retried after a delay; the lab is paused after each try', async () => {
      h = ExamHarness.create({ attempts: 3, retryDelayMs: 700 });
      const { exam } = await h.runningExam(flagScenario(), ['alice']);
      const lab = labOf(exam.id);
      h.docker.failNext('resumeMachine', { machine: 'srv' });

      h.service.endCandidate(exam.id, 'alice', 'operator', 'handed in');
      await h.settle();

      expect(h.clock.sleeps).toEqual([700]);
      expect(h.callsOf(lab.id, (c) => c.op === 'pauseMachine' && c.machine === 'pc')).toHaveLength(2);
      expect(h.labStore.runs(lab.id).filter((r) => r.purpose === 'final')).toHaveLength(1);
      expect(candidate(exam.id)).toMatchObject({ phase: 'ended' });
      expect(h.metrics.errors).toEqual(['grading']);
    });

    test('a grading that fails every try leaves the candidate ending, the lab frozen and paused, until a regrade', async () => {
      h = ExamHarness.create({ attempts: 2 });
      const { exam } = await h.runningExam(flagScenario(), ['alice']);
      const lab = labOf(exam.id);
      h.docker.failNext('resumeMachine', { machine: 'pc', times: 2, error: () => new EnvironmentError('cannot unpause') });

      h.service.endCandidate(exam.id, 'alice', 'operator', 'handed in');
      await h.settle();

      expect(candidate(exam.id)).toMatchObject({ phase: 'ending', detail: 'grading failed (cannot unpause); regrade once the lab answers' });
      expect(labOf(exam.id).state).toBe('frozen');
      expect(h.docker.machinesOf(lab.id).map((m) => m.state)).toEqual(['paused', 'paused']);
      expect(h.labStore.runs(lab.id).filter((r) => r.purpose === 'final')).toEqual([]);
      expect(h.exams.exam(exam.id).status).toBe('running');

      const run = await h.service.regrade(exam.id, 'alice', 'operator');
      expect(candidate(exam.id)).toMatchObject({ phase: 'ended', finalRunId: run.id });
      expect(labOf(exam.id).state).toBe('graded');
      expect(h.exams.exam(exam.id).status).toBe('ended');
    });

    test('a candidate account that cannot be locked (machine down) does not stop the grading', async () => {
      h = ExamHarness.create();
      const { exam } = await h.runningExam(flagScenario(), ['alice']);
      pcOf(exam.id).state = 'stopped';
      h.service.endCandidate(exam.id, 'alice', 'operator', 'handed in');
      await h.settle();
      expect(candidate(exam.id).phase).toBe('ended');
      expect(h.labStore.runs(labOf(exam.id).id).at(-1)?.score).toMatchObject({ points: 1, complete: true });
    });

    test('keepLabs false: the lab is destroyed once its grade is complete, kept while it is not', async () => {
      h = ExamHarness.create();
      const { exam } = await h.runningExam(flagScenario(), ['alice', 'bruno'], { keepLabs: false });
      const alice = labOf(exam.id, 'alice');
      const bruno = labOf(exam.id, 'bruno');

      h.access.failNext('probe', { machine: 'pc' }); // alice's final grading cannot decide one check
      h.service.endCandidate(exam.id, 'alice', 'operator', 'handed in');
      await h.settle();
      expect(h.labStore.runs(alice.id).at(-1)?.score?.complete).toBe(false);
      expect(h.labStore.get(alice.id).state).toBe('graded');
      expect(h.docker.machinesOf(alice.id)).toHaveLength(2);

      h.service.end(exam.id, 'operator');
      await h.settle();
      expect(h.labStore.runs(bruno.id).at(-1)?.score?.complete).toBe(true);
      expect(h.labStore.get(bruno.id).state).toBe('destroyed');
      expect(h.docker.machinesOf(bruno.id)).toEqual([]);
      expect(h.docker.networks.has(bruno.id)).toBe(false);
      expect(h.audit({ examId: exam.id, candidateId: 'bruno' }).at(-1)).toMatchObject({ action: 'lab.destroy', labId: bruno.id, detail: { policy: 'destroy once graded' } });
      expect(h.actions({ examId: exam.id, candidateId: 'alice' })).not.toContain('lab.destroy');
      expect(h.exams.exam(exam.id).status).toBe('ended');
    });

    test('a candidate whose lab was never offered ends without a result', async () => {
      h = ExamHarness.create({ attempts: 1 });
      const { exam } = await h.runningExam(flagScenario({ image: 'retired' }), ['alice']);
      h.service.end(exam.id, 'operator');
      await h.settle();
      expect(candidate(exam.id)).toMatchObject({ phase: 'ended', detail: 'no result: the lab was never offered (failed)' });
      expect(candidate(exam.id).finalRunId).toBeUndefined();
      expect(labOf(exam.id).state).toBe('destroyed');
    });
  });

  describe('an engine that stops answering (libvirtd restarted)', () => {
    /** The candidate's detail at each ping of the libvirt engine: what the room view showed while the pipeline waited. */
    const detailsAtPings = (examId: string): (string | undefined)[] => {
      const seen: (string | undefined)[] = [];
      const ping = h.libvirt.ping.bind(h.libvirt);
      jest.spyOn(h.libvirt, 'ping').mockImplementation(() => {
        seen.push(candidate(examId).detail);
        return ping();
      });
      return seen;
    };

    test('the grading at the end waits for it, saying so, without spending an attempt; the lab is graded once it answers', async () => {
      h = ExamHarness.create({ attempts: 1 });
      const { exam } = await h.runningExam(flagScenario({ srvProvider: 'libvirt' }), ['alice']);
      const lab = labOf(exam.id);
      const seen = detailsAtPings(exam.id);
      h.libvirt.outage(3);
      const since = h.clock.iso();

      h.service.endCandidate(exam.id, 'alice', 'operator', 'handed in');
      await h.settle();

      expect(seen).toEqual(Array(3).fill(`grading waits for the libvirt engine (asked again every 5 s since ${since}): the libvirt engine does not answer`));
      expect(h.clock.sleeps).toEqual([ENGINE_RETRY_MS, ENGINE_RETRY_MS, ENGINE_RETRY_MS]);
      const final = h.labStore.runs(lab.id).filter((r) => r.purpose === 'final');
      expect(final).toHaveLength(1);
      expect(final[0]?.score).toMatchObject({ points: 1, maxPoints: 3, complete: true });
      expect(candidate(exam.id)).toMatchObject({ phase: 'ended', finalRunId: final[0]?.id });
      expect(candidate(exam.id).detail).toBeUndefined();
      expect(h.libvirt.machinesOf(lab.id).map((m) => m.state)).toEqual(['paused']);
      expect(h.metrics.errors).toEqual([]);
      expect(h.exams.exam(exam.id).status).toBe('ended');
    });

    test('a lab rebuilt (reset) while it is away waits for it; the candidate, whose clock runs, gets the wait back', async () => {
      h = ExamHarness.create({ attempts: 1 });
      const { exam } = await h.runningExam(flagScenario({ srvProvider: 'libvirt' }), ['alice']);
      const before = candidate(exam.id);
      const seen = detailsAtPings(exam.id);
      h.libvirt.outage(4);

      h.service.reset(exam.id, 'alice', 'operator');
      await h.settle();

      expect(seen[0]).toMatch(/^building the lab waits for the libvirt engine \(asked again every 5 s since .*\): the libvirt engine does not answer$/);
      const after = candidate(exam.id);
      expect(after).toMatchObject({ phase: 'active', attempts: 1 });
      expect(Date.parse(after.deadline as string) - Date.parse(before.deadline as string)).toBe(4 * ENGINE_RETRY_MS);
      expect(after.extensionMs - before.extensionMs).toBe(4 * ENGINE_RETRY_MS);
      expect(h.audit({ examId: exam.id, candidateId: 'alice' }).filter((r) => r.action === 'engine.outage')).toMatchObject([{ labId: labOf(exam.id).id, detail: { engine: 'libvirt', seconds: 20, deadline: after.deadline } }]);
      expect(h.libvirt.machinesOf(labOf(exam.id).id).map((m) => m.state)).toEqual(['running']);
      expect(h.metrics.errors).toEqual([]);
    });

    test('a regrade asked for while it is away fails at once naming it (someone waits for that answer); asked again once it answers, it is done', async () => {
      h = ExamHarness.create({ attempts: 3 });
      const { exam } = await h.runningExam(flagScenario({ srvProvider: 'libvirt' }), ['alice']);
      h.service.endCandidate(exam.id, 'alice', 'operator', 'handed in');
      await h.settle();
      const graded = candidate(exam.id).finalRunId;
      h.libvirt.down = true;

      const refused = await h.service.regrade(exam.id, 'alice', 'operator').catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(EngineUnavailableError);
      expect((refused as Error).message).toBe('the libvirt engine does not answer');
      expect(h.clock.sleeps).toEqual([]);
      expect(candidate(exam.id)).toMatchObject({ phase: 'ended', finalRunId: graded, detail: 'grading failed (the libvirt engine does not answer); regrade once the lab answers' });

      h.libvirt.down = false;
      const run = await h.service.regrade(exam.id, 'alice', 'operator');
      expect(run.score).toMatchObject({ complete: true });
      expect(candidate(exam.id)).toMatchObject({ phase: 'ended', finalRunId: run.id });
    });

    test('removing a graded lab (keepLabs false) waits for it too, and only then is the exam over', async () => {
      h = ExamHarness.create();
      const { exam } = await h.runningExam(flagScenario({ srvProvider: 'libvirt' }), ['alice'], { keepLabs: false });
      const lab = labOf(exam.id);
      h.libvirt.failNext('destroyMachines', { error: () => new EngineUnavailableError('libvirt', 'libvirtd does not answer') });

      h.service.endCandidate(exam.id, 'alice', 'operator', 'handed in');
      await h.settle();

      expect(h.clock.sleeps).toEqual([ENGINE_RETRY_MS]);
      expect(h.labStore.get(lab.id).state).toBe('destroyed');
      expect(h.libvirt.machinesOf(lab.id)).toEqual([]);
      expect(candidate(exam.id)).toMatchObject({ phase: 'ended' });
      expect(candidate(exam.id).detail).toBeUndefined();
      expect(h.exams.exam(exam.id).status).toBe('ended');
    });
  });
});
