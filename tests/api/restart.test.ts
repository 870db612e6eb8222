import { api, DaemonProcess, destroyAllLabs, examObjects, OPERATOR, sshExec, waitFor } from './helpers.js';
import { SLOW_SCENARIO } from './scenarios.js';

interface Candidate {
  id: string;
  phase: string;
  deadline?: string;
  lab: { id: string; state: string };
  runs: { id: string; purpose: string; status: string; error?: string }[];
  labEvents: { from?: string; to: string }[];
  finalRunId?: string;
}

/**
 * The daemon in its own process, killed with SIGKILL while labs are
 * built, during the exam and while grading, and stopped with SIGTERM:
 * every restart picks up where it was, nothing is lost, nothing is left
 * behind on the engine.
 */
describe('a restart at any moment loses nothing', () => {
  const daemon = DaemonProcess.create();
  let examId: string;
  const tokens: Record<string, string> = {};
  const op = () => api(daemon.url, OPERATOR);
  const candidate = async (id: string): Promise<Candidate> => (await op().get(`/api/exams/${examId}/candidates/${id}`)).body;
  const both = async () => Promise.all(['alice', 'bob'].map(candidate));

  /** Every container and network of the exam belongs to a candidate's current lab, one machine and one network each. */
  const expectNoOrphans = async () => {
    const current = new Set((await both()).map((c) => c.lab.id));
    const objects = await examObjects(examId);
    expect(objects.containers.map((c) => c.lab).sort()).toEqual([...current].sort());
    expect(objects.networks.map((n) => n.lab).sort()).toEqual([...current].sort());
    return objects;
  };

  afterAll(async () => {
    await daemon.kill('SIGKILL').catch(() => undefined);
    await destroyAllLabs(daemon.dataDir);
    if (examId) expect(await examObjects(examId)).toEqual({ containers: [], networks: [] });
  }, 180_000);

  test('killed while the labs are being built: the half-made labs are built again and offered', async () => {
    await daemon.start();
    const created = await op().post('/api/exams').send({ scenarioYaml: SLOW_SCENARIO, candidates: [{ id: 'alice', name: 'Alice' }, { id: 'bob', name: 'Bob' }], start: 'now' });
    expect(created.status).toBe(201);
    examId = created.body.exam.id;
    for (const c of created.body.candidates) tokens[c.id] = c.token;
    // Kill as soon as the engine holds part of a lab.
    await waitFor('a container of the exam', () => examObjects(examId), (o) => o.containers.length > 0, 60_000);
    expect((await both()).map((c) => c.phase)).toEqual(['provisioning', 'provisioning']);
    expect(await daemon.kill('SIGKILL')).toBeNull();

    const restarted = Date.now();
    await daemon.start();
    const ready = await waitFor('both labs offered after the restart', both, (cs) => cs.every((c) => c.phase === 'active'), 120_000);
    process.stdout.write(`restart during provisioning: labs offered ${(Date.now() - restarted) / 1000} s after the restart\n`);
    for (const c of ready) {
      // Built once more from scratch: provisioning redone in place, then verified and offered.
      expect(c.labEvents.map((e) => e.to).slice(-3)).toEqual(['provisioning', 'ready', 'running']);
      expect(c.runs.filter((r) => r.purpose === 'baseline' && r.status === 'done')).toHaveLength(1);
    }
    expect(ready.some((c) => c.labEvents.filter((e) => e.to === 'provisioning').length === 2)).toBe(true);
    await expectNoOrphans();
  }, 240_000);

  test('stopped with SIGTERM during the exam: exits cleanly, the labs keep running and are picked up again', async () => {
    const before = await expectNoOrphans();
    expect(await daemon.kill('SIGTERM')).toBe(0);
    const during = await examObjects(examId);
    expect(during.containers.map((c) => [c.id, c.state])).toEqual(before.containers.map((c) => [c.id, 'running']));
    await daemon.start();
    expect((await both()).map((c) => c.phase)).toEqual(['active', 'active']);
    expect((await expectNoOrphans()).containers.map((c) => c.id)).toEqual(before.containers.map((c) => c.id));
  }, 120_000);

  test('a second daemon on the same store refuses to start, and leaves the first one alone', async () => {
    const second = new DaemonProcess(daemon.dataDir, daemon.configFile);
    await expect(second.start()).rejects.toThrow(/another examlab daemon \(pid \d+\) is serving/);
    expect((await api(daemon.url).get('/healthz')).status).toBe(200);
    const again = new DaemonProcess(daemon.dataDir, daemon.configFile);
    await expect(again.start()).rejects.toThrow(/another examlab daemon/);
  }, 60_000);

  test('killed during the exam: labs adopted with the candidates\' work, and the time the daemon was away given back', async () => {
    const sudo = (await api(daemon.url, tokens.alice).get('/api/me')).body.access.sudoPassword as string;
    const fixed = await sshExec(daemon.sshPort, 'alice', tokens.alice as string, `echo '${sudo}' | sudo -S -p '' sh -c 'echo ok > /etc/etat' && echo travail > ~/travail`);
    expect(fixed.code).toBe(0);
    const before = await both();
    const objects = await expectNoOrphans();
    expect(await daemon.kill('SIGKILL')).toBeNull();
    // Longer than the heartbeat grace (5 s): a real outage, given back in full.
    const awayMs = 6000;
    await new Promise((resolve) => setTimeout(resolve, awayMs));
    const restarted = Date.now();
    await daemon.start();
    process.stdout.write(`restart during the exam: serving again ${(Date.now() - restarted) / 1000} s after the start\n`);
    const after = await both();
    for (const [i, c] of after.entries()) {
      expect(c.phase).toBe('active');
      expect(c.lab.id).toBe(before[i]?.lab.id);
      expect(Date.parse(c.deadline as string) - Date.parse(before[i]?.deadline as string)).toBeGreaterThanOrEqual(awayMs);
    }
    expect((await expectNoOrphans()).containers.map((c) => c.id)).toEqual(objects.containers.map((c) => c.id));
    expect((await sshExec(daemon.sshPort, 'alice', tokens.alice as string, 'cat ~/travail /etc/etat')).stdout).toBe('travail\nok\n');
    const outage = (await op().get('/api/audit')).body.records.filter((r: { action: string }) => r.action === 'daemon.outage');
    expect(outage.at(-1).detail).toMatchObject({ candidates: 2 });
  }, 120_000);

  test('killed while grading: the interrupted grading is redone and every result is stored', async () => {
    expect((await op().post(`/api/exams/${examId}/end`)).status).toBe(202);
    await waitFor('a final grading under way', both, (cs) => cs.some((c) => c.runs.some((r) => r.purpose === 'final' && r.status === 'running')), 60_000);
    expect(await daemon.kill('SIGKILL')).toBeNull();
    await daemon.start();
    const exam = await waitFor('the exam graded after the restart', async () => (await op().get(`/api/exams/${examId}`)).body, (e) => e.status === 'ended', 120_000);
    expect(exam.progress.labs).toEqual({ graded: 2 });
    const cs = await both();
    const interrupted = cs.flatMap((c) => c.runs).filter((r) => r.purpose === 'final' && r.status === 'failed');
    expect(interrupted.length).toBeGreaterThanOrEqual(1);
    for (const r of interrupted) expect(r.error).toMatch(/^interrupted/);
    for (const c of cs) expect(c.runs.find((r) => r.id === c.finalRunId)?.status).toBe('done');

    const results = (await op().get(`/api/exams/${examId}/results`)).body.candidates;
    expect(results.map((r: { candidate: { id: string }; auto: { points: number } }) => [r.candidate.id, r.auto.points])).toEqual([
      ['alice', 2],
      ['bob', 0],
    ]);
    const audit = (await op().get('/api/audit')).body;
    expect(audit.chain).toMatchObject({ ok: true });
    await expectNoOrphans();
    expect((await op().delete(`/api/exams/${examId}/labs`)).status).toBe(200);
    expect(await examObjects(examId)).toEqual({ containers: [], networks: [] });
  }, 240_000);
});
