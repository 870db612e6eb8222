import { EngineWatch } from '../../../src/exams/index.js';
import type { LabRecord } from '../../../src/labs/index.js';
import { ExamHarness } from '../../fakes/exam-harness.js';
import { flagScenario } from '../../fakes/flag-scenarios.js';

/**
 * The engine watch while the daemon runs: an engine that stops answering
 * is said once, and when it answers again every live lab on it is picked
 * up according to what the engine kept of it.
 */
describe('watching the engines during an exam', () => {
  let h: ExamHarness;
  let watch: EngineWatch;
  beforeEach(() => {
    h = ExamHarness.create();
    watch = new EngineWatch({ exams: h.exams, labStore: h.labStore, labs: h.labs, audit: h.stores.audit, pipeline: h.pipeline, providers: h.providers, clock: h.clock, log: h.log, hostLostAfterMs: 60_000 }, 1000);
  });
  afterEach(() => h.close());

  const candidate = (examId: string, id = 'alice') => h.exams.candidate(examId, id);
  const labOf = (examId: string, id = 'alice') => h.labStore.labOf(candidate(examId, id)) as LabRecord;

  /** The engine stops answering for `ms`, meanwhile `during` happens; returns what the watch did once it answers. */
  async function outage(ms: number, during: () => Promise<void> | void = () => undefined) {
    h.docker.down = true;
    expect(await watch.tick()).toEqual([]);
    await during();
    h.clock.advance(ms);
    expect(await watch.tick()).toEqual([]);
    h.docker.down = false;
    const [recovery] = await watch.tick();
    await h.settle();
    return recovery;
  }

  test('an engine that stops answering is said once, with since when; nothing else is done until it answers', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice']);
    h.docker.down = true;
    await watch.tick();
    h.clock.advance(5000);
    await watch.tick();
    expect(watch.outages()).toEqual([{ provider: 'docker', since: new Date(h.clock.now() - 5000).toISOString(), error: 'the docker engine does not answer' }]);
    expect(h.actions().filter((a) => a.startsWith('engine.'))).toEqual(['engine.down']);
    expect(candidate(exam.id).phase).toBe('active');
  });

  test('labs that ran through the outage are kept as they are, and nobody is owed time', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice', 'bruno']);
    const before = h.exams.candidates(exam.id).map((c) => c.deadline);
    const recovery = await outage(120_000);
    expect(recovery).toMatchObject({ provider: 'docker', seconds: 120, kept: 2, restarted: 0, rebuilt: 0, compensated: 0 });
    expect(h.exams.candidates(exam.id).map((c) => c.deadline)).toEqual(before);
    expect(watch.outages()).toEqual([]);
    expect(h.audit().find((r) => r.action === 'engine.up')?.detail).toMatchObject({ kept: 2, seconds: 120 });
  });

  test('an engine on another host: labs that ran through are kept, but active candidates get the time back (their sessions go through that engine)', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice']);
    h.docker.reachedThroughEngine = true;
    const deadline = candidate(exam.id).deadline as string;
    const recovery = await outage(45_000);
    expect(recovery).toMatchObject({ kept: 1, restarted: 0, compensated: 1 });
    expect(candidate(exam.id).deadline).toBe(new Date(Date.parse(deadline) + 45_000).toISOString());
  });

  test('machines stopped with the engine are started again, with their files, and the candidate gets the time back', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice']);
    const machine = h.docker.machine(labOf(exam.id).id, 'pc');
    machine?.flags.add('service'); // the candidate's work
    const deadline = candidate(exam.id).deadline as string;
    const recovery = await outage(90_000, () => {
      if (machine) machine.state = 'stopped';
    });
    expect(recovery).toMatchObject({ restarted: 1, compensated: 1 });
    expect(machine?.state).toBe('running');
    expect(machine?.flags.has('service')).toBe(true);
    expect(candidate(exam.id)).toMatchObject({ phase: 'active', deadline: new Date(Date.parse(deadline) + 90_000).toISOString(), extensionMs: 90_000 });
    expect(h.audit({ candidateId: 'alice' }).find((r) => r.action === 'candidate.compensated')?.detail).toEqual({ seconds: 90, reason: 'engine outage' });
  });

  test('an engine that stopped its machines before it stopped answering: the candidate gets back the time from the last look that saw them running', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice']);
    const machine = h.docker.machine(labOf(exam.id).id, 'pc');
    const deadline = candidate(exam.id).deadline as string;
    await watch.tick();
    // Between two looks the engine stops the machine, then stops answering a second later.
    if (machine) machine.state = 'stopped';
    h.clock.advance(1000);
    h.docker.down = true;
    await watch.tick();
    h.clock.advance(3000);
    h.docker.down = false;
    const [recovery] = await watch.tick();
    await h.settle();
    expect(recovery).toMatchObject({ seconds: 3, restarted: 1, compensated: 1 });
    expect(candidate(exam.id).deadline).toBe(new Date(Date.parse(deadline) + 4000).toISOString());
  });

  test('when the engine records when its machines stopped (a stopping engine may list them as running), that time is given back, believed at most a minute before the watch\'s own bound', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice', 'bruno']);
    const alice = h.docker.machine(labOf(exam.id, 'alice').id, 'pc');
    const bruno = h.docker.machine(labOf(exam.id, 'bruno').id, 'pc');
    const deadlines = h.exams.candidates(exam.id).map((c) => Date.parse(c.deadline as string));
    const t0 = h.clock.now();
    await watch.tick();
    h.clock.advance(2000);
    for (const [machine, stoppedAt] of [[alice, t0 + 500], [bruno, t0 - 10 * 60_000]] as const) {
      if (!machine) continue;
      machine.state = 'stopped';
      machine.stoppedAt = new Date(stoppedAt).toISOString();
    }
    h.docker.down = true;
    await watch.tick();
    h.clock.advance(3000);
    h.docker.down = false;
    await watch.tick();
    await h.settle();
    // Alice's machine stopped at t0 + 0.5 s: 4.5 s given. Bruno's lab host says ten minutes ago: a clock not believed past a minute before the last look.
    expect(h.exams.candidates(exam.id).map((c, i) => Date.parse(c.deadline as string) - (deadlines[i] as number))).toEqual([4500, 65_000]);
  });

  test('a lab whose machines are gone is rebuilt and offered again, the candidate given the time', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice']);
    const lab = labOf(exam.id);
    const recovery = await outage(60_000, async () => {
      // Gone with the engine (as a container removed while it was down).
      h.docker.down = false;
      await h.docker.destroyMachines({ labId: lab.id } as never);
      h.docker.down = true;
    });
    expect(recovery).toMatchObject({ rebuilt: 1, compensated: 1 });
    expect(candidate(exam.id).phase).toBe('active');
    expect(h.docker.machine(labOf(exam.id).id, 'pc')?.state).toBe('running');
    expect(h.actions({ candidateId: 'alice' })).toContain('lab.lost');
  });

  test('a grading that failed during the outage (an engine whose errors do not say it is away) is launched again and the candidate\'s exam ends with a result', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice']);
    h.docker.saysUnavailable = false;
    const recovery = await outage(30_000, async () => {
      h.service.endCandidate(exam.id, 'alice', 'operator', 'done');
      await h.settle();
      expect(candidate(exam.id).phase).toBe('ending');
      expect(candidate(exam.id).detail).toMatch(/grading failed/);
    });
    expect(recovery).toMatchObject({ relaunched: 1 });
    expect(candidate(exam.id)).toMatchObject({ phase: 'ended' });
    expect(candidate(exam.id).finalRunId).toBeDefined();
  });

  test('a lab preparation that failed during the outage (an engine whose errors do not say it is away) is launched again; one that failed before is left to the operator', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice', 'bruno']);
    h.docker.saysUnavailable = false;
    // bruno's lab failed before the outage, for a reason of its own.
    h.exams.moveCandidate(exam.id, 'bruno', 'provisioning', { attempts: 0 });
    h.exams.moveCandidate(exam.id, 'bruno', 'failed', { detail: 'a reason of its own' });
    h.clock.advance(1000);
    const recovery = await outage(30_000, async () => {
      // alice's lab is rebuilt (a reset) while the engine is down: every attempt fails.
      h.exams.moveCandidate(exam.id, 'alice', 'provisioning', { attempts: 0 });
      h.pipeline.launchPrepare(exam.id, 'alice');
      await h.settle();
      expect(candidate(exam.id).phase).toBe('failed');
    });
    expect(recovery).toMatchObject({ relaunched: 1 });
    expect(candidate(exam.id).phase).toBe('active');
    expect(candidate(exam.id, 'bruno')).toMatchObject({ phase: 'failed', detail: 'a reason of its own' });
  });

  test('a machine found stopped while its engine answers (powered off, a container rebooted, an engine restarted between two looks) is started again with its files, and the candidate gets back the time since the last look', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice', 'bruno']);
    const machine = h.docker.machine(labOf(exam.id).id, 'pc');
    machine?.flags.add('service');
    await watch.tick();
    const deadline = candidate(exam.id).deadline as string;
    h.clock.advance(2000);
    if (machine) machine.state = 'stopped';
    // The start goes wrong once (the engine refuses it): tried again at the next look, the time still counted from the last look that saw it running.
    h.docker.failNext('resumeMachine');
    await watch.tick();
    await h.settle();
    expect(machine?.state).toBe('stopped');
    h.clock.advance(2000);
    await watch.tick();
    await h.settle();
    expect(machine?.state).toBe('running');
    expect(machine?.flags.has('service')).toBe(true);
    expect(candidate(exam.id)).toMatchObject({ phase: 'active', deadline: new Date(Date.parse(deadline) + 4000).toISOString(), extensionMs: 4000 });
    expect(h.audit({ candidateId: 'alice' }).find((r) => r.action === 'lab.restart')?.detail).toEqual({ machines: ['pc'], seconds: 4, compensated: true });
    expect(h.audit({ candidateId: 'alice' }).find((r) => r.action === 'candidate.compensated')?.detail).toEqual({ seconds: 4, reason: 'machine stopped' });
    // Bruno's lab ran all along: untouched, nobody else owed time.
    expect(h.actions({ candidateId: 'bruno' })).not.toContain('lab.restart');
    expect(candidate(exam.id, 'bruno').extensionMs).toBe(0);
    // Started once: the next look finds nothing to do.
    await watch.tick();
    await h.settle();
    expect(h.actions({ candidateId: 'alice' }).filter((a) => a === 'lab.restart')).toHaveLength(1);
  });

  test('a stopped machine of a candidate whose exam is over is left as it is (the end freezes the lab; the grading starts what it needs)', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice']);
    h.service.endCandidate(exam.id, 'alice', 'operator', 'done');
    await h.settle();
    expect(candidate(exam.id).phase).toBe('ended');
    const machine = h.docker.machine(labOf(exam.id).id, 'pc');
    if (machine) machine.state = 'stopped';
    await watch.tick();
    await h.settle();
    expect(machine?.state).toBe('stopped');
    expect(h.actions({ candidateId: 'alice' })).not.toContain('lab.restart');
  });

  test('an engine that answers a ping but not the listing of stopped machines is looked at again at the next check, without failing the watch', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice']);
    const machine = h.docker.machine(labOf(exam.id).id, 'pc');
    if (machine) machine.state = 'stopped';
    h.docker.failNext('stoppedMachines');
    await watch.tick();
    await h.settle();
    expect(machine?.state).toBe('stopped');
    await watch.tick();
    await h.settle();
    expect(machine?.state).toBe('running');
  });
});
