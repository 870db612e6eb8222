import { hashCandidateToken, UnauthenticatedError } from '../../../src/access/index.js';
import type { IssuedToken } from '../../../src/exams/index.js';
import type { LabRecord } from '../../../src/labs/index.js';
import { ConflictError, InputError, NotAllowedError } from '../../../src/util/errors.js';
import { ExamHarness } from '../../fakes/exam-harness.js';
import type { FakeMachine } from '../../fakes/fake-provider.js';
import { DURATION_MS, flagScenario } from '../../fakes/flag-scenarios.js';

/** The exam lifecycle through ExamService, labs built by the real pipeline on fake engines. */
describe('an exam', () => {
  let h: ExamHarness;
  beforeEach(() => (h = ExamHarness.create()));
  afterEach(() => h.close());

  const candidate = (examId: string, id: string) => h.exams.candidate(examId, id);
  const labOf = (examId: string, id: string) => h.labStore.labOf(candidate(examId, id)) as LabRecord;
  const pcOf = (examId: string, id: string) => h.docker.machine(labOf(examId, id).id, 'pc') as FakeMachine;
  const tokenOf = (tokens: IssuedToken[], id: string) => hashCandidateToken(tokens.find((t) => t.id === id)?.token ?? '');

  test('is created with its roster; each token is handed out once and stored only as a hash', async () => {
    const { exam, tokens } = await h.createExam(flagScenario(), ['alice', 'bruno']);
    expect(exam).toMatchObject({ status: 'scheduled', scenarioId: 'flags', durationMs: DURATION_MS, createdBy: 'operator' });
    const candidates = h.exams.candidates(exam.id);
    expect(candidates.map((c) => [c.id, c.name, c.phase])).toEqual([
      ['alice', 'Candidate alice', 'waiting'],
      ['bruno', 'Candidate bruno', 'waiting'],
    ]);
    expect(new Set(candidates.map((c) => c.seed)).size).toBe(2);

    expect(tokens.map((t) => t.id)).toEqual(['alice', 'bruno']);
    expect(tokens[0]?.token).not.toBe(tokens[1]?.token);
    const stored = h.db.prepare('SELECT * FROM candidates WHERE exam_id = ? ORDER BY position').all(exam.id) as { token_hash: string }[];
    expect(stored.map((r) => r.token_hash)).toEqual(tokens.map((t) => hashCandidateToken(t.token)));
    for (const t of tokens) expect(JSON.stringify(stored)).not.toContain(t.token);

    expect(h.actions({ examId: exam.id })).toEqual(['exam.create']);
    expect(h.labStore.list()).toEqual([]);
    expect(h.docker.machines.size).toBe(0);
  });

  test('a new token replaces the old one at once', async () => {
    const { exam, tokens } = await h.runningExam(flagScenario(), ['alice']);
    const fresh = h.service.reissueToken(exam.id, 'alice', 'operator');
    expect(() => h.service.admit(tokenOf(tokens, 'alice'))).toThrow(UnauthenticatedError);
    expect(h.service.admit(hashCandidateToken(fresh.token))).toEqual({ examId: exam.id, candidateId: 'alice' });
  });

  test('starts: one lab per candidate, built, verified, offered; each clock starts when the lab is offered', async () => {
    const { exam } = await h.createExam(flagScenario(), ['alice', 'bruno']);
    h.clock.advance(60_000);
    const offeredAt = h.clock.now();
    expect(h.service.start(exam.id, 'operator').status).toBe('running');
    expect(h.exams.candidates(exam.id).map((c) => c.phase)).toEqual(['provisioning', 'provisioning']);
    await h.settle();

    for (const id of ['alice', 'bruno']) {
      const c = candidate(exam.id, id);
      expect(c).toMatchObject({ phase: 'active', attempts: 1, offeredAt: new Date(offeredAt).toISOString(), deadline: new Date(offeredAt + DURATION_MS).toISOString() });
      expect(c.detail).toBeUndefined();
      const lab = labOf(exam.id, id);
      expect(lab).toMatchObject({ state: 'running', examId: exam.id, candidateId: id, seed: c.seed });
      expect(h.labStore.runs(lab.id).map((r) => [r.purpose, r.status])).toEqual([['baseline', 'done']]);
      expect(h.docker.machinesOf(lab.id).map((m) => m.name)).toEqual(['pc', 'srv']);
      expect(h.actions({ examId: exam.id, candidateId: id })).toEqual(['lab.create', 'lab.offer']);
    }
    expect(labOf(exam.id, 'alice').id).not.toBe(labOf(exam.id, 'bruno').id);
    expect(h.metrics.provisioned).toBe(2);
    expect(() => h.service.start(exam.id, 'operator')).toThrow(ConflictError);
  });

  test('with start: now, starts as it is created', async () => {
    const { exam } = await h.createExam(flagScenario(), ['alice'], { start: { policy: 'now' } });
    expect(exam.status).toBe('running');
    await h.settle();
    expect(candidate(exam.id, 'alice').phase).toBe('active');
  });

  test('extend: more time before or during the exam, never after', async () => {
    const { exam } = await h.createExam(flagScenario(), ['alice', 'bruno']);
    // Before the start there is no deadline yet: the extension is added when the lab is offered.
    expect(h.service.extend(exam.id, 'alice', 5 * 60_000, 'operator')).toMatchObject({ extensionMs: 5 * 60_000, deadline: undefined });
    h.service.start(exam.id, 'operator');
    await h.settle();
    const offered = h.clock.now();
    expect(candidate(exam.id, 'alice').deadline).toBe(new Date(offered + DURATION_MS + 5 * 60_000).toISOString());
    expect(candidate(exam.id, 'bruno').deadline).toBe(new Date(offered + DURATION_MS).toISOString());

    const extended = h.service.extend(exam.id, 'bruno', 10 * 60_000, 'operator');
    expect(extended).toMatchObject({ extensionMs: 10 * 60_000, deadline: new Date(offered + DURATION_MS + 10 * 60_000).toISOString() });
    expect(h.audit({ examId: exam.id, candidateId: 'bruno' }).at(-1)).toMatchObject({ actor: 'operator', action: 'candidate.extend', detail: { ms: 10 * 60_000, deadline: extended.deadline } });

    expect(() => h.service.extend(exam.id, 'bruno', 0, 'operator')).toThrow(InputError);
    expect(() => h.service.extend(exam.id, 'bruno', 25 * 3_600_000, 'operator')).toThrow(InputError);
    h.service.endCandidate(exam.id, 'bruno', 'operator', 'done early');
    expect(() => h.service.extend(exam.id, 'bruno', 60_000, 'operator')).toThrow(ConflictError);
  });

  test('ends: access cut, every lab locked, frozen, graded and paused; each candidate ended with a final run; the exam ended', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice', 'bruno']);
    pcOf(exam.id, 'alice').flags.add('service'); // alice repaired the service
    let cut = 0;
    h.sessions.register(exam.id, 'alice', () => cut++);

    expect(h.service.end(exam.id, 'operator').status).toBe('ending');
    expect(h.exams.candidates(exam.id).map((c) => c.phase)).toEqual(['ending', 'ending']);
    expect(cut).toBe(1);
    await h.settle();

    expect(h.exams.exam(exam.id)).toMatchObject({ status: 'ended', endedAt: h.clock.iso() });
    const points: Record<string, number | undefined> = {};
    for (const id of ['alice', 'bruno']) {
      const c = candidate(exam.id, id);
      const lab = labOf(exam.id, id);
      const final = h.labStore.runs(lab.id).find((r) => r.purpose === 'final');
      expect(c).toMatchObject({ phase: 'ended', finalRunId: final?.id });
      expect(lab.state).toBe('graded');
      expect(h.labStore.events(lab.id).map((e) => e.to).slice(-3)).toEqual(['running', 'frozen', 'graded']);
      expect(h.docker.machinesOf(lab.id).map((m) => m.state)).toEqual(['paused', 'paused']);
      expect(pcOf(exam.id, id).lockedUsers.has('technicien')).toBe(true);
      expect(h.actions({ examId: exam.id, candidateId: id }).slice(-2)).toEqual(['lab.freeze', 'lab.grade']);
      points[id] = final?.score?.points;
    }
    expect(points).toEqual({ alice: 3, bruno: 1 });
    expect(h.service.results(exam.id).map((r) => [r.candidate.id, r.auto.points])).toEqual([
      ['alice', 3],
      ['bruno', 1],
    ]);
    expect(h.actions({ examId: exam.id }).filter((a) => a.startsWith('exam.'))).toEqual(['exam.create', 'exam.start', 'exam.end', 'exam.ended']);
    expect(() => h.service.end(exam.id, 'operator')).toThrow(ConflictError);
  });

  test('ended before it started: every candidate ended, no lab made', async () => {
    const { exam } = await h.createExam(flagScenario(), ['alice']);
    expect(h.service.end(exam.id, 'operator').status).toBe('ended');
    expect(candidate(exam.id, 'alice')).toMatchObject({ phase: 'ended', detail: 'the exam ended before it started' });
    await h.settle();
    expect(h.labStore.list({ includeDestroyed: true })).toEqual([]);
  });

  test('a candidate whose deadline has passed is ended by the tick, the others go on', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice', 'bruno']);
    h.service.extend(exam.id, 'bruno', 10 * 60_000, 'operator');
    const reasons: string[] = [];
    h.sessions.register(exam.id, 'alice', (reason) => reasons.push(reason));
    h.sessions.register(exam.id, 'bruno', (reason) => reasons.push(`bruno:${reason}`));
    h.clock.advance(DURATION_MS);
    h.service.tick(h.clock.now());
    // Their terminals are told why: time is up (the page says so in its language).
    expect(reasons).toEqual(['time-up']);
    await h.settle();
    expect(candidate(exam.id, 'alice')).toMatchObject({ phase: 'ended' });
    expect(h.audit({ examId: exam.id, candidateId: 'alice' }).find((r) => r.action === 'candidate.end')).toMatchObject({ actor: 'system', detail: { reason: 'deadline reached' } });
    expect(candidate(exam.id, 'bruno').phase).toBe('active');
    expect(h.exams.exam(exam.id).status).toBe('running');
  });

  test('reset: the lab is rebuilt in its broken state; the deadline and the offer time are kept', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice']);
    const before = candidate(exam.id, 'alice');
    const lab = labOf(exam.id, 'alice');
    const oldPc = pcOf(exam.id, 'alice');
    oldPc.flags.add('service');
    h.clock.advance(10 * 60_000);

    expect(h.service.reset(exam.id, 'alice', 'operator').phase).toBe('provisioning');
    await h.settle();

    const after = candidate(exam.id, 'alice');
    expect(after).toMatchObject({ phase: 'active', deadline: before.deadline, offeredAt: before.offeredAt, attempts: 1, labId: lab.id });
    expect(pcOf(exam.id, 'alice')).not.toBe(oldPc);
    expect(pcOf(exam.id, 'alice').flags.has('service')).toBe(false);
    expect(labOf(exam.id, 'alice').state).toBe('running');
    expect(h.actions({ examId: exam.id, candidateId: 'alice' })).toEqual(['lab.create', 'lab.offer', 'candidate.reset', 'lab.offer']);
  });

  test('an exam larger than the host can hold is refused when it is created, with the number and the limit', async () => {
    h.docker.capacity = async () => ({ provider: 'docker', memoryBytes: 24 * 1024 ** 3, cpus: 2, freeSubnets: 2, inotifyInstancesFree: 8000 });
    await expect(h.createExam(flagScenario(), ['alice', 'bruno', 'chloe'])).rejects.toThrow(/this host can take 2 more labs of flags and the exam has 3 candidates \(limited by lab networks: 1 a lab, 2 free \/24 in the pool\)/);
    expect(h.exams.exams()).toEqual([]);
    const { exam } = await h.createExam(flagScenario(), ['alice', 'bruno'], { start: { policy: 'manual' } });
    h.docker.capacity = async () => ({ provider: 'docker', memoryBytes: 24 * 1024 ** 3, cpus: 2, freeSubnets: 1, inotifyInstancesFree: 8000 });
    await expect(h.service.checkRoom(exam.id)).rejects.toThrow(/can take 1 more labs/);
  });

  test('reset is refused once the candidate is done', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice', 'bruno']);
    h.service.endCandidate(exam.id, 'alice', 'operator', 'left');
    expect(() => h.service.reset(exam.id, 'alice', 'operator')).toThrow(ConflictError);
    await h.settle();
  });

  test('revoke locks the candidate out of their lab and refuses their token; restore lets them back', async () => {
    const { exam, tokens } = await h.runningExam(flagScenario(), ['alice']);
    let cut = 0;
    h.sessions.register(exam.id, 'alice', () => cut++);

    let reason = '';
    h.sessions.register(exam.id, 'alice', (r) => (reason = r));
    const revoked = await h.service.revoke(exam.id, 'alice', 'operator', 'phone in use');
    expect(revoked).toMatchObject({ revoked: true, phase: 'active' });
    expect(cut).toBe(1);
    expect(reason).toBe('revoked');
    expect(pcOf(exam.id, 'alice').lockedUsers).toEqual(new Set(['technicien']));
    expect(labOf(exam.id, 'alice').state).toBe('running');
    expect(() => h.service.admit(tokenOf(tokens, 'alice'))).toThrow(NotAllowedError);
    expect(h.audit({ examId: exam.id, candidateId: 'alice' }).at(-1)).toMatchObject({ actor: 'operator', action: 'candidate.revoke', detail: { reason: 'phone in use' } });

    const restored = await h.service.restore(exam.id, 'alice', 'operator');
    expect(restored.revoked).toBe(false);
    expect(pcOf(exam.id, 'alice').lockedUsers).toEqual(new Set());
    expect(h.service.admit(tokenOf(tokens, 'alice'))).toEqual({ examId: exam.id, candidateId: 'alice' });
    await expect(h.service.restore(exam.id, 'alice', 'operator')).rejects.toThrow(ConflictError);
  });

  test('a revoked candidate stays locked out of a rebuilt lab', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice']);
    await h.service.revoke(exam.id, 'alice', 'operator', undefined);
    h.service.reset(exam.id, 'alice', 'operator');
    await h.settle();
    expect(candidate(exam.id, 'alice')).toMatchObject({ phase: 'active', revoked: true });
    expect(pcOf(exam.id, 'alice').lockedUsers).toEqual(new Set(['technicien']));
  });

  test('a lock that fails is audited; the revocation stands', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice']);
    pcOf(exam.id, 'alice').state = 'stopped';
    expect((await h.service.revoke(exam.id, 'alice', 'operator', undefined)).revoked).toBe(true);
    expect(h.audit({ examId: exam.id, candidateId: 'alice' }).at(-1)).toMatchObject({ actor: 'system', action: 'lab.lock.failed' });
  });

  test('an unlock that fails on restore is audited; the restore stands and the account stays locked', async () => {
    const { exam, tokens } = await h.runningExam(flagScenario(), ['alice']);
    await h.service.revoke(exam.id, 'alice', 'operator', undefined);
    pcOf(exam.id, 'alice').state = 'stopped';
    expect((await h.service.restore(exam.id, 'alice', 'operator')).revoked).toBe(false);
    expect(h.service.admit(tokenOf(tokens, 'alice'))).toEqual({ examId: exam.id, candidateId: 'alice' });
    expect(pcOf(exam.id, 'alice').lockedUsers).toEqual(new Set(['technicien']));
    expect(h.audit({ examId: exam.id, candidateId: 'alice' }).at(-1)).toMatchObject({ actor: 'system', action: 'lab.unlock.failed' });
  });

  test('grade now: a run of the lab in use, nothing ended', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice']);
    const run = await h.service.gradeNow(exam.id, 'alice', 'operator');
    expect(run).toMatchObject({ purpose: 'grade', score: { points: 1, maxPoints: 3 } });
    expect(candidate(exam.id, 'alice').phase).toBe('active');
    expect(labOf(exam.id, 'alice').state).toBe('running');
    expect(h.actions({ examId: exam.id, candidateId: 'alice' }).at(-1)).toBe('candidate.grade');
  });

  test('regrade: a kept lab graded again gives a new final run, which becomes the result', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice']);
    pcOf(exam.id, 'alice').flags.add('service');
    h.access.failNext('probe', { machine: 'pc' }); // pc does not answer during the final grading
    h.service.end(exam.id, 'operator');
    await h.settle();
    const first = candidate(exam.id, 'alice').finalRunId;
    const lab = labOf(exam.id, 'alice');
    expect(h.labStore.runs(lab.id).find((r) => r.id === first)?.score).toMatchObject({ points: 1, complete: false, errors: ['service'] });
    expect(lab.state).toBe('graded');

    const again = await h.service.regrade(exam.id, 'alice', 'jury');
    expect(again.id).not.toBe(first);
    expect(again).toMatchObject({ purpose: 'final', status: 'done', score: { points: 3, complete: true } });
    expect(candidate(exam.id, 'alice')).toMatchObject({ phase: 'ended', finalRunId: again.id });
    expect(labOf(exam.id, 'alice').state).toBe('graded');
    expect(h.docker.machinesOf(lab.id).map((m) => m.state)).toEqual(['paused', 'paused']);
    expect(h.service.result(exam.id, 'alice').auto.points).toBe(3);
    expect(h.actions({ examId: exam.id, candidateId: 'alice' }).slice(-2)).toEqual(['candidate.regrade', 'lab.grade']);
  });

  test('regrade is refused while the candidate works, and once their lab is gone', async () => {
    const { exam } = await h.runningExam(flagScenario(), ['alice'], { keepLabs: false });
    await expect(h.service.regrade(exam.id, 'alice', 'jury')).rejects.toThrow(ConflictError);
    h.service.end(exam.id, 'operator');
    await h.settle();
    expect(labOf(exam.id, 'alice').state).toBe('destroyed');
    await expect(h.service.regrade(exam.id, 'alice', 'jury')).rejects.toThrow(/lab is destroyed/);
  });

  test('a candidate token is admitted only while their exam runs for them', async () => {
    const { exam, tokens } = await h.createExam(flagScenario(), ['alice', 'bruno']);
    expect(() => h.service.admit(tokenOf(tokens, 'alice'))).toThrow(/has not started yet/);
    expect(() => h.service.admit(hashCandidateToken('NOT-A-TOKEN'))).toThrow(UnauthenticatedError);

    h.service.start(exam.id, 'operator');
    await h.settle();
    expect(h.service.admit(tokenOf(tokens, 'alice'))).toEqual({ examId: exam.id, candidateId: 'alice' });

    h.service.endCandidate(exam.id, 'alice', 'operator', 'done');
    expect(() => h.service.admit(tokenOf(tokens, 'alice'))).toThrow(/your exam is over/);
    expect(h.service.admit(tokenOf(tokens, 'bruno'))).toEqual({ examId: exam.id, candidateId: 'bruno' });

    h.service.end(exam.id, 'operator');
    await h.settle();
    expect(() => h.service.admit(tokenOf(tokens, 'bruno'))).toThrow(UnauthenticatedError);
  });
});
