import { api, examObjects, OPERATOR, startTestDaemon, waitFor, type TestDaemon } from './helpers.js';
import { SMALL_SCENARIO } from './scenarios.js';

/** Bob's setup fails everywhere; Carol's fault does nothing, so her lab is not in the broken state it should be. */
const UNEVEN = SMALL_SCENARIO.replace(
  '      echo ok > /etc/etat\n',
  '      if [ "{{ candidate.id }}" = bob ]; then echo "disque introuvable" >&2; exit 1; fi\n      echo ok > /etc/etat\n',
).replace('    run: echo casse > /etc/etat\n', '    run: if [ "{{ candidate.id }}" != carol ]; then echo casse > /etc/etat; fi\n');

/**
 * The clock on the server: an exam that starts at its time, labs that fail
 * (reported, retried, blocking no one, leaving nothing), and the freeze at
 * the deadline.
 */
describe('scheduled start, failed labs and the deadline', () => {
  let d: TestDaemon;
  let op: ReturnType<typeof api>;
  let examId: string;
  const exam = async () => (await op.get(`/api/exams/${examId}`)).body;
  beforeAll(async () => {
    d = await startTestDaemon();
    op = api(d.url, OPERATOR);
  }, 180_000);
  afterAll(async () => {
    await d?.close();
    if (examId) expect(await examObjects(examId)).toEqual({ containers: [], networks: [] });
  }, 180_000);

  test('an uploaded scenario may not copy files from the server', async () => {
    for (const path of ['/etc/shadow', '../../../etc/shadow']) {
      const res = await op.post('/api/exams').send({
        scenarioYaml: SMALL_SCENARIO.replace('faults:\n', `faults:\n  - machine: pc\n    upload: ${path}\n    to: /root/shadow\n`),
        candidates: [{ id: 'alice', name: 'Alice' }],
      });
      expect(res.status).toBe(422);
      expect(res.body.details).toEqual([{ where: expect.stringMatching(/faults\[0\]\.upload$/), message: "a path inside the scenario's folder (relative, no ..): a scenario copies its own files, never the server's" }]);
    }
  });

  test('the exam starts at its time; a failing lab is retried, then reported, and blocks no one', async () => {
    const at = new Date(Date.now() + 3000).toISOString();
    const created = await op.post('/api/exams').send({
      scenarioYaml: UNEVEN,
      candidates: ['alice', 'bob', 'carol'].map((id) => ({ id, name: id })),
      start: { at },
      duration: '40s',
      end: { autoFreeze: true, keepLabs: false },
    });
    expect(created.status).toBe(201);
    examId = created.body.exam.id;
    expect(created.body.exam).toMatchObject({ status: 'scheduled', start: { policy: 'at', at } });
    const alice = created.body.candidates.find((c: { id: string }) => c.id === 'alice').token as string;
    const early = await api(d.url, alice).get('/api/me');
    expect(early.status).toBe(401);
    expect(early.body.message).toMatch(/has not started yet/);

    const settled = await waitFor('every lab offered or failed', exam, (e) => e.progress.byPhase.active + e.progress.byPhase.failed === 3, 120_000);
    expect(Date.parse(settled.startedAt)).toBeGreaterThanOrEqual(Date.parse(at));
    expect(settled.progress).toMatchObject({ ready: 1, failed: 2 });
    const byId = Object.fromEntries(settled.candidates.map((c: { id: string }) => [c.id, c]));
    expect(byId.alice.phase).toBe('active');
    expect(byId.bob).toMatchObject({ phase: 'failed', attempts: 2, detail: expect.stringMatching(/disque introuvable/) });
    expect(byId.carol).toMatchObject({ phase: 'failed', attempts: 2, detail: expect.stringMatching(/broken state is not as the scenario says.*check etat: expected fail, got pass/) });
    // Nothing of the failed labs is left on the engine.
    const objects = await examObjects(examId);
    expect(new Set(objects.containers.map((c) => c.lab))).toEqual(new Set([byId.alice.lab.id]));
    expect(new Set(objects.networks.map((n) => n.lab))).toEqual(new Set([byId.alice.lab.id]));
    expect((await api(d.url, alice).get('/api/me')).body.phase).toBe('active');
    // The candidate is told, without the operator's detail (setup output, check ids).
    const carol = created.body.candidates.find((c: { id: string }) => c.id === 'carol').token as string;
    const carolMe = (await api(d.url, carol).get('/api/me')).body;
    expect(carolMe).toMatchObject({ phase: 'failed', status: 'your lab could not be prepared; the exam supervisor has been told' });
    expect(JSON.stringify(carolMe)).not.toMatch(/etat|check|baseline|expected/);
  }, 150_000);

  test("at the deadline the candidate's lab is frozen and graded without anyone asking", async () => {
    const before = (await exam()).candidates.find((c: { id: string }) => c.id === 'alice');
    const graded = await waitFor(
      'alice graded at her deadline and her lab released',
      exam,
      (e) => e.candidates.find((c: { id: string; phase: string; lab: { state: string } }) => c.id === 'alice' && c.phase === 'ended' && c.lab.state === 'destroyed'),
      90_000,
    );
    const alice = graded.candidates.find((c: { id: string }) => c.id === 'alice');
    // keepLabs: false, and the grade is complete: the lab is gone, its result stays.
    expect(alice.lab.state).toBe('destroyed');
    expect((await examObjects(examId)).containers).toEqual([]);
    const events = d.daemon.audit.list({ examId, candidateId: 'alice' }).map((r) => [r.actor, r.action]);
    expect(events).toEqual(expect.arrayContaining([['system', 'candidate.end'], ['system', 'lab.freeze'], ['system', 'lab.grade'], ['system', 'lab.destroy']]));
    const end = d.daemon.audit.list({ examId, candidateId: 'alice' }).find((r) => r.action === 'candidate.end');
    expect(Date.parse(end?.at as string)).toBeGreaterThanOrEqual(Date.parse(before.deadline));
    expect(Date.parse(end?.at as string) - Date.parse(before.deadline)).toBeLessThan(2000);
    // The exam goes on for the failed candidates until the operator ends it.
    expect(graded.status).toBe('running');
    expect((await op.post(`/api/exams/${examId}/end`)).status).toBe(202);
    const ended = await waitFor('the exam ended', exam, (e) => e.status === 'ended', 30_000);
    expect(ended.candidates.map((c: { id: string; phase: string }) => [c.id, c.phase])).toEqual([
      ['alice', 'ended'],
      ['bob', 'ended'],
      ['carol', 'ended'],
    ]);
    const results = (await op.get(`/api/exams/${examId}/results`)).body.candidates;
    expect(results[0].checks.find((l: { id: string }) => l.id === 'etat')).toMatchObject({ status: 'fail', expected: expect.any(String), actual: expect.stringMatching(/does not match/) });
    expect(results.map((r: { candidate: { id: string }; pending: string[] }) => [r.candidate.id, r.pending[0]])).toEqual([
      ['alice', 'manual criteria not marked yet: compte-rendu'],
      ['bob', 'not graded yet'],
      ['carol', 'not graded yet'],
    ]);
    const metrics = (await api(d.url).get('/metrics')).text;
    expect(metrics).toMatch(/^examlab_errors_total\{kind="provisioning"\} [4-9]/m);
    expect(metrics).toMatch(/^examlab_lab_provisioning_seconds_count 1$/m);
    expect(metrics).toMatch(/^examlab_lab_grading_seconds_count\{purpose="final"\} 1$/m);
  }, 150_000);
});
