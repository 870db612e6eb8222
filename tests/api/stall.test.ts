import Dockerode from 'dockerode';
import { api, OPERATOR, startTestDaemon, waitFor, type TestDaemon } from './helpers.js';

/** One small container a candidate; two checks of 2 s each: a probe run is bounded by 4 s, plus 5 s for the engine. */
const SCENARIO = `apiVersion: examlab/v1
id: api-stall
title: Fichier d'état
ccp: CCP1
competencies: [{ id: C1, title: Diagnostiquer }]
duration: 30m
machines:
  - name: pc
    image: base
    login: { user: technicien }
setup:
  - machine: pc
    run: echo ok > /etc/etat
faults:
  - machine: pc
    run: echo casse > /etc/etat
instructions: { fr: Réparez /etc/etat. }
checks:
  - { id: etat, title: État réparé, machine: pc, kind: file, path: /etc/etat, content: { matches: "^ok$" }, points: 2, competency: C1, timeout: 2s }
  - { id: sshd, title: SSH répond, machine: pc, kind: port, port: 22, points: 1, baseline: pass, competency: C1, timeout: 2s }
`;

/** What a root candidate runs to stop every start of the grader's probe in their lab, as fast as the machine allows. */
const STALL = 'while :; do pkill -STOP -x examlab-probe; done';

/**
 * Three candidates stop the grader's probe in their labs (they are root
 * there). Ending the exam still grades everyone: the stalled runs end within
 * their bound with errors (a provisional score), and the two others get
 * their complete results.
 */
describe('an exam whose candidates stall the grader', () => {
  let d: TestDaemon;
  let examId: string;

  beforeAll(async () => {
    d = await startTestDaemon();
  }, 180_000);
  afterAll(async () => {
    await d?.close();
  }, 180_000);

  test('three stalling candidates do not hold up the end of the exam for the others', async () => {
    const op = api(d.url, OPERATOR);
    const roster = ['alice', 'bruno', 'chloe', 'david', 'emma'].map((id) => ({ id, name: id }));
    const created = await op.post('/api/exams').send({ scenarioYaml: SCENARIO, candidates: roster, start: 'now' });
    expect(created.status).toBe(201);
    examId = created.body.exam.id;
    const ready = await waitFor('five labs offered', async () => (await op.get(`/api/exams/${examId}`)).body, (e) => e.progress.byPhase.active === 5, 300_000);

    const docker = new Dockerode();
    const stallers = ['alice', 'bruno', 'chloe'];
    for (const c of ready.candidates.filter((c: { id: string }) => stallers.includes(c.id))) {
      const exec = await docker.getContainer(`exl-${c.lab.id}-pc`).exec({ Cmd: ['/bin/sh', '-c', `setsid sh -c '${STALL}' </dev/null >/dev/null 2>&1 & sleep 0.3; echo started`], AttachStdout: true, AttachStderr: true });
      const stream = await exec.start({});
      const chunks: Buffer[] = [];
      for await (const chunk of stream) chunks.push(chunk as Buffer);
      expect(Buffer.concat(chunks).toString('latin1')).toContain('started');
    }

    const ended = Date.now();
    expect((await op.post(`/api/exams/${examId}/end`)).status).toBe(202);
    const done = await waitFor('every candidate graded', async () => (await op.get(`/api/exams/${examId}`)).body, (e) => e.status === 'ended', 120_000);
    const seconds = (Date.now() - ended) / 1000;
    // One stalled run lasts at most 4 s + 5 s; the stalled ones run side by side, the others after or beside them.
    expect(seconds).toBeLessThan(40);
    expect(done.progress.byPhase.ended).toBe(5);

    const results = (await op.get(`/api/exams/${examId}/results`)).body.candidates as { candidate: { id: string }; complete: boolean; pending: string[]; checks: { status: string; message?: string }[] }[];
    expect(results).toHaveLength(5);
    // The candidate's loop races each start of the probe, which needs only milliseconds: a probe it did
    // not catch in time grades as usual. Either way the result is right, and most are caught.
    let stalled = 0;
    for (const r of results) {
      if (stallers.includes(r.candidate.id) && !r.complete) {
        stalled++;
        expect(r.pending.join(' ')).toMatch(/could not be decided \(regrade\)/);
        expect(r.checks.map((l) => l.status)).toEqual(['error', 'error']);
      } else {
        expect(r.complete).toBe(true);
        expect(r.checks.map((l) => l.status)).toEqual(['fail', 'pass']);
      }
    }
    expect(stalled).toBeGreaterThanOrEqual(1);
    process.stdout.write(`end of a 5-candidate exam with 3 stalling: ${seconds.toFixed(1)} s to every result stored\n`);
  }, 480_000);
});
