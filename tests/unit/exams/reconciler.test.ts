import { HEARTBEAT_KEY } from '../../../src/exams/index.js';
import type { LabRecord } from '../../../src/labs/index.js';
import { EnvironmentError } from '../../../src/util/errors.js';
import { ExamHarness } from '../../fakes/exam-harness.js';
import { flagScenario } from '../../fakes/flag-scenarios.js';

/**
 * What a restarted daemon does before it serves: the state is made by a
 * first daemon (stopped, or stuck on a call that never returns, as if
 * killed), then a second one over the same store and engines reconciles.
 */
describe('reconciling at start', () => {
  let h: ExamHarness;
  beforeEach(() => (h = ExamHarness.create()));
  afterEach(() => h.close());

  const candidate = (examId: string, id = 'alice') => h.exams.candidate(examId, id);
  const labOf = (examId: string, id = 'alice') => h.labStore.labOf(candidate(examId, id)) as LabRecord;

  describe('time lost while the daemon was away', () => {
    test('active candidates and those whose lab was being rebuilt get it back; the others do not', async () => {
      const { exam } = await h.runningExam(flagScenario(), ['alice', 'bruno', 'carol']);
      h.service.endCandidate(exam.id, 'carol', 'operator', 'done');
      await h.settle();
      // bruno's lab was being reset when the daemon stopped.
      h.exams.moveCandidate(exam.id, 'bruno', 'provisioning', { attempts: 0 });
      const before = h.exams.candidates(exam.id);
      h.exams.setState(HEARTBEAT_KEY, h.clock.iso());
      h.clock.advance(10 * 60_000);

      const daemon = h.restart();
      const report = await daemon.reconcile(60_000);
      await daemon.settle();

      expect(report).toMatchObject({ outageSeconds: 600, compensated: 2, adopted: 1, provisioningResumed: 1 });
      for (const [i, id] of ['alice', 'bruno'].entries()) {
        const c = candidate(exam.id, id);
        expect(c.deadline).toBe(new Date(Date.parse(before[i]?.deadline ?? '') + 600_000).toISOString());
        expect(c.extensionMs).toBe(600_000);
        expect(c.phase).toBe('active');
      }
      expect(candidate(exam.id, 'carol')).toMatchObject({ phase: 'ended', deadline: before[2]?.deadline, extensionMs: 0 });
      const outage = h.audit().find((r) => r.action === 'daemon.outage');
      expect(outage).toMatchObject({ actor: 'system', detail: { since: new Date(h.clock.now() - 600_000).toISOString(), seconds: 600, candidates: 2 } });
      expect(h.exams.getState(HEARTBEAT_KEY)).toBe(h.clock.iso());
    });

    test('the time spent picking the labs up is given back too: candidates cannot reach them until the daemon serves', async () => {
      const { exam } = await h.runningExam(flagScenario(), ['alice']);
      const deadline = candidate(exam.id).deadline as string;
      h.exams.setState(HEARTBEAT_KEY, h.clock.iso());
      h.clock.advance(2 * 60_000);
      // An engine that takes 3 minutes to list its labs.
      const list = h.docker.listLabIds.bind(h.docker);
      h.docker.listLabIds = async () => {
        h.clock.advance(3 * 60_000);
        return list();
      };
      const report = await h.restart().reconcile(60_000);
      expect(report).toMatchObject({ outageSeconds: 300, compensated: 1 });
      expect(candidate(exam.id).deadline).toBe(new Date(Date.parse(deadline) + 300_000).toISOString());
    });

    test('a gap within the grace is no outage', async () => {
      const { exam } = await h.runningExam(flagScenario(), ['alice']);
      const deadline = candidate(exam.id).deadline;
      h.exams.setState(HEARTBEAT_KEY, h.clock.iso());
      h.clock.advance(30_000);
      const report = await h.restart().reconcile(60_000);
      expect(report.outageSeconds).toBe(0);
      expect(candidate(exam.id).deadline).toBe(deadline);
      expect(h.actions()).not.toContain('daemon.outage');
      expect(h.exams.getState(HEARTBEAT_KEY)).toBe(h.clock.iso());
    });
  });

  describe('running labs', () => {
    test('a lab whose machines are all there is adopted as it is; paused machines are resumed', async () => {
      const { exam } = await h.runningExam(flagScenario(), ['alice', 'bruno']);
      h.docker.machine(labOf(exam.id, 'alice').id, 'pc')?.flags.add('service'); // alice's work, to be kept
      for (const m of h.docker.machinesOf(labOf(exam.id, 'bruno').id)) m.state = 'paused';
      const created = h.calls.filter((c) => c.op === 'createMachine').length;

      const daemon = h.restart();
      const report = await daemon.reconcile();
      await daemon.settle();

      expect(report).toMatchObject({ adopted: 2, rebuilt: 0, cleaned: 0 });
      expect(h.calls.filter((c) => c.op === 'createMachine')).toHaveLength(created);
      expect(h.docker.machine(labOf(exam.id, 'alice').id, 'pc')?.flags.has('service')).toBe(true);
      expect(h.docker.machinesOf(labOf(exam.id, 'bruno').id).map((m) => m.state)).toEqual(['running', 'running']);
      expect(h.callsOf(labOf(exam.id, 'alice').id, (c) => c.op === 'resumeMachine')).toEqual([]);
      expect(h.exams.candidates(exam.id).map((c) => c.phase)).toEqual(['active', 'active']);
    });

    test('a lab with a machine missing is rebuilt; the candidate keeps their deadline', async () => {
      const { exam } = await h.runningExam(flagScenario(), ['alice']);
      const lab = labOf(exam.id);
      const before = candidate(exam.id);
      h.docker.machines.delete(`${lab.id}/srv`);

      const daemon = h.restart();
      const report = await daemon.reconcile();
      expect(report).toMatchObject({ adopted: 0, rebuilt: 1 });
      expect(candidate(exam.id).phase).toBe('provisioning');
      await daemon.settle();

      expect(candidate(exam.id)).toMatchObject({ phase: 'active', deadline: before.deadline, offeredAt: before.offeredAt, labId: lab.id, attempts: 1 });
      expect(h.docker.machinesOf(lab.id).map((m) => m.name).sort()).toEqual(['pc', 'srv']);
      expect(h.actions({ examId: exam.id, candidateId: 'alice' }).slice(-2)).toEqual(['lab.lost', 'lab.offer']);
    });
  });

  describe('work a killed daemon left half-done', () => {
    test('a lab half-built is built again from scratch', async () => {
      const { exam } = await h.createExam(flagScenario(), ['alice']);
      h.docker.hangNext('createMachine', 'srv');
      h.service.start(exam.id, 'operator');
      await h.until(() => h.docker.machines.size === 1);
      const lab = labOf(exam.id);
      expect(lab.state).toBe('provisioning');

      const daemon = h.restart();
      const from = h.calls.length;
      const report = await daemon.reconcile();
      await daemon.settle();

      expect(report.provisioningResumed).toBe(1);
      expect(candidate(exam.id)).toMatchObject({ phase: 'active', labId: lab.id });
      const redo = h.calls.slice(from).filter((c) => c.labId === lab.id && c.by === 'docker').map((c) => c.op);
      expect(redo.indexOf('destroyMachines')).toBeLessThan(redo.indexOf('createMachine'));
      expect(h.labStore.events(lab.id).map((e) => e.to)).toEqual(['requested', 'provisioning', 'provisioning', 'ready', 'running']);
    });

    test('a grading cut short is recorded as interrupted and done again', async () => {
      const { exam } = await h.runningExam(flagScenario(), ['alice']);
      const lab = labOf(exam.id);
      h.access.hangNext('probe', 'pc');
      h.service.endCandidate(exam.id, 'alice', 'operator', 'handed in');
      await h.until(() => h.labStore.runs(lab.id).some((r) => r.purpose === 'final' && r.status === 'running'));

      const daemon = h.restart();
      const report = await daemon.reconcile();
      await daemon.settle();

      expect(report).toMatchObject({ interruptedRuns: 1, gradingResumed: 1 });
      const finals = h.labStore.runs(lab.id).filter((r) => r.purpose === 'final');
      expect(finals.map((r) => [r.status, r.error])).toEqual([
        ['failed', 'interrupted: the daemon stopped during this run'],
        ['done', undefined],
      ]);
      expect(candidate(exam.id)).toMatchObject({ phase: 'ended', finalRunId: finals[1]?.id });
      expect(labOf(exam.id).state).toBe('graded');
      expect(h.exams.exam(exam.id).status).toBe('ended');
    });

    test('a regrade cut short is done again', async () => {
      const { exam } = await h.runningExam(flagScenario(), ['alice']);
      h.service.end(exam.id, 'operator');
      await h.settle();
      const first = candidate(exam.id).finalRunId;
      h.access.hangNext('probe', 'pc');
      void h.service.regrade(exam.id, 'alice', 'jury');
      await h.until(() => h.labStore.runs(labOf(exam.id).id).some((r) => r.status === 'running'));

      const daemon = h.restart();
      expect(await daemon.reconcile()).toMatchObject({ interruptedRuns: 1, gradingResumed: 1 });
      await daemon.settle();

      const finalRunId = candidate(exam.id).finalRunId;
      expect(finalRunId).not.toBe(first);
      expect(h.labStore.runs(labOf(exam.id).id).find((r) => r.id === finalRunId)?.status).toBe('done');
      expect(labOf(exam.id).state).toBe('graded');
    });

    test('a graded lab the policy had not yet removed is removed, and the exam closed', async () => {
      const { exam } = await h.runningExam(flagScenario(), ['alice'], { keepLabs: false });
      const lab = labOf(exam.id);
      h.docker.hangNext('destroyMachines');
      h.service.end(exam.id, 'operator');
      await h.until(() => candidate(exam.id).phase === 'ended' && h.callsOf(lab.id).at(-1) === 'destroyMachines');
      expect(h.exams.exam(exam.id).status).toBe('ending');

      const daemon = h.restart();
      expect(await daemon.reconcile()).toMatchObject({ cleaned: 1 });
      expect(labOf(exam.id).state).toBe('destroyed');
      expect(h.docker.machinesOf(lab.id)).toEqual([]);
      expect(h.audit({ examId: exam.id, candidateId: 'alice' }).at(-1)).toMatchObject({ action: 'lab.destroy', detail: { policy: 'destroy once graded' } });
      expect(h.exams.exam(exam.id).status).toBe('ended');
    });
  });

  describe('what is on the engines', () => {
    test('destroyed and failed labs still there are removed; labs of no exam of this store are left alone', async () => {
      h = h.restart({ attempts: 1 });
      const { exam } = await h.runningExam(flagScenario({ image: 'retired' }), ['alice']);
      const failed = labOf(exam.id);
      expect(failed.state).toBe('failed');
      const { exam: other } = await h.runningExam(flagScenario({ id: 'other' }), ['bruno'], { keepLabs: false });
      h.service.end(other.id, 'operator');
      await h.settle();
      const destroyed = labOf(other.id, 'bruno');
      expect(destroyed.state).toBe('destroyed');
      // What a cleanup that failed left behind, a lab made by `examlab lab up`, and another store's lab.
      h.docker.plant(failed.id, 'pc');
      h.docker.plant(destroyed.id, 'srv');
      const cliLab = await h.labs.up(h.scenario(flagScenario()));
      h.docker.plant('lab-of-another-store', 'pc');

      const report = await h.restart().reconcile();

      expect(report).toMatchObject({ cleaned: 2, foreign: 2 });
      expect(h.docker.machinesOf(failed.id)).toEqual([]);
      expect(h.docker.machinesOf(destroyed.id)).toEqual([]);
      expect(labOf(exam.id).state).toBe('destroyed');
      expect(h.audit().filter((r) => r.action === 'lab.cleanup').map((r) => [r.labId, r.detail.state])).toEqual([
        [failed.id, 'failed'],
        [destroyed.id, 'destroyed'],
      ]);
      expect(h.docker.machinesOf(cliLab.id)).toHaveLength(2);
      expect(h.labStore.get(cliLab.id).state).toBe('ready');
      expect(h.docker.machinesOf('lab-of-another-store')).toHaveLength(1);
      expect(h.callsOf('lab-of-another-store')).toEqual([]);
      expect(candidate(exam.id).phase).toBe('failed');
    });

    test('an engine that does not answer is fatal only when a live lab of ours uses it', async () => {
      h.libvirt.down = true;
      const { exam } = await h.runningExam(flagScenario(), ['alice']);
      expect(candidate(exam.id).phase).toBe('active');
      // No lab uses libvirt: its engine being down is no reason not to start.
      expect(await h.restart().reconcile()).toMatchObject({ adopted: 1 });

      h.libvirt.down = false;
      const { exam: vms } = await h.runningExam(flagScenario({ id: 'vms', srvProvider: 'libvirt' }), ['bruno']);
      expect(h.libvirt.machinesOf(labOf(vms.id, 'bruno').id).map((m) => m.name)).toEqual(['srv']);
      h.libvirt.down = true;
      const refused = await h.restart().reconcile().catch((err: unknown) => err);
      expect(refused).toBeInstanceOf(EnvironmentError);
      expect((refused as Error).message).toBe('cannot reconcile with the libvirt engine: the libvirt engine does not answer');

      // Once that lab is gone, libvirt is not needed any more to start; the lab rebuilt for bruno waits for it (answering at the first ping).
      h.libvirt.down = false;
      await h.labs.destroy(labOf(vms.id, 'bruno').id);
      h.libvirt.outage(1);
      const restarted = h.restart();
      await expect(restarted.reconcile()).resolves.toMatchObject({ foreign: 0, rebuilt: 1 });
      await restarted.settle();
      expect(candidate(vms.id, 'bruno').phase).toBe('active');
      expect(h.libvirt.machinesOf(labOf(vms.id, 'bruno').id).map((m) => m.name)).toEqual(['srv']);
    });

    test('the engine that makes the networks is needed even with no lab at all', async () => {
      h.docker.down = true;
      await expect(h.restart().reconcile()).rejects.toThrow('cannot reconcile with the docker engine');
    });
  });
});
