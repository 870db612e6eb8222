import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { api, examObjects, OPERATOR, sshExec, startedExam, startTestDaemon, waitFor, type TestDaemon, type CandidateView } from '../api/helpers.js';
import { SMALL_SCENARIO } from '../api/scenarios.js';
import { startLabHosts, type LabHost, type LabHosts } from '../hosts/lab-hosts.js';


const CANDIDATES = ['alice', 'bruno', 'carla', 'driss', 'emma', 'farid'];

/**
 * A six-candidate exam on two lab hosts (Docker engines of other machines,
 * one reached over TLS, the other over SSH; here, engines in containers of
 * this host): the labs are spread over both, candidates reach them through
 * the daemon, one host stops mid-exam and its candidates' labs are built
 * again on the other, the exam is graded in full, and the host that comes
 * back is cleared of the labs that left it.
 */
describe('an exam spread over two lab hosts', () => {
  let hosts: LabHosts;
  let a: LabHost;
  let b: LabHost;
  let d: TestDaemon;
  let examId: string;
  let tokens: { [id: string]: string };
  const op = () => api(d.url, OPERATOR);
  const candidates = async (): Promise<CandidateView[]> => Promise.all(CANDIDATES.map(async (id) => (await op().get(`/api/exams/${examId}/candidates/${id}`)).body as CandidateView));
  /** The exam's labs on a host's engine, by lab id. */
  const labsOn = async (host: LabHost): Promise<string[]> => {
    const containers = await host.dockerode('tls').listContainers({ all: true, filters: { label: [`examlab.exam=${examId}`] } });
    return [...new Set(containers.map((c) => c.Labels['examlab.lab'] as string))].sort();
  };
  const auditActions = async () => ((await op().get('/api/audit')).body.records as { action: string; detail: Record<string, unknown> }[]).filter((r) => /^(engine|host)\./.test(r.action));

  beforeAll(async () => {
    hosts = await startLabHosts(2, { name: 'exam-hosts' });
    [a, b] = hosts.hosts as [LabHost, LabHost];
    d = await startTestDaemon({
      engineCheck: '500ms',
      hostLostAfter: '5s',
      provisioning: { concurrency: 6, attempts: 3, retryDelay: '1s' },
      hosts: [
        { name: 'a', docker: { url: a.docker.tcp, tls: a.docker.certDir }, capacity: 6 },
        { name: 'b', docker: { url: b.docker.ssh, sshKey: b.docker.sshPrivateKeyFile, sshHostKey: b.docker.sshHostKey }, capacity: 6 },
      ],
    });
    const started = Date.now();
    ({ examId, tokens } = await startedExam(d.url, { scenarioYaml: SMALL_SCENARIO, candidates: CANDIDATES.map((id) => ({ id, name: id })) }, 600_000));
    process.stdout.write(`six labs offered on two lab hosts in ${(Date.now() - started) / 1000} s (images shipped to both)\n`);
  }, 900_000);

  afterAll(async () => {
    if (b && !(await b.answers('tls', 2000))) await b.start().catch(() => undefined);
    await d?.close().catch(() => undefined);
    await hosts?.close();
  }, 300_000);

  test('the labs are spread, three on each host and none on this one; candidates reach theirs through the daemon', async () => {
    const cs = await candidates();
    const [onA, onB] = [await labsOn(a), await labsOn(b)];
    expect([onA.length, onB.length]).toEqual([3, 3]);
    expect([...onA, ...onB].sort()).toEqual(cs.map((c) => c.lab.id).sort());
    expect((await examObjects(examId)).containers).toEqual([]);
    for (const id of CANDIDATES) {
      const work = await sshExec(d.sshPort, id, tokens[id] as string, `echo "travail de ${id}" > ~/travail && cat /etc/proprietaire`);
      expect(work).toMatchObject({ code: 0, stdout: `${id}\n` });
    }
  }, 300_000);

  test('one host stops: its candidates\' labs are built again on the other and they get the time back; the others are untouched', async () => {
    const before = await candidates();
    const onB = new Set(await labsOn(b));
    const moved = before.filter((c) => onB.has(c.lab.id)).map((c) => c.id);
    const stayed = before.filter((c) => !onB.has(c.lab.id)).map((c) => c.id);
    const stopped = Date.now();
    await b.stop({ kill: true });
    await waitFor('the host declared lost', auditActions, (rs) => rs.some((r) => r.action === 'host.lost'), 120_000);
    // The same lab records, built again from scratch on the host left.
    await waitFor('the lost labs built again on the other host', () => labsOn(a), (labs) => labs.length === 6, 300_000);
    const after = await waitFor('every candidate active again', candidates, (cs) => cs.every((c) => c.phase === 'active'), 120_000);
    process.stdout.write(`host lost: its three labs offered again on the other ${(Date.now() - stopped) / 1000} s after it stopped\n`);
    expect((await labsOn(a)).sort()).toEqual(after.map((c) => c.lab.id).sort());
    for (const c of after) {
      const was = before.find((x) => x.id === c.id) as CandidateView;
      if (moved.includes(c.id)) expect(c.extensionMs - was.extensionMs).toBeGreaterThanOrEqual(5000);
      else expect(c).toMatchObject({ deadline: was.deadline, extensionMs: was.extensionMs, lab: { id: was.lab.id } });
    }
    // A moved candidate has a fresh lab (their work was on the lost host); one who stayed keeps theirs.
    const fresh = await sshExec(d.sshPort, moved[0] as string, tokens[moved[0] as string] as string, 'cat ~/travail 2>/dev/null || echo none');
    expect(fresh.stdout).toBe('none\n');
    const kept = await sshExec(d.sshPort, stayed[0] as string, tokens[stayed[0] as string] as string, 'cat ~/travail');
    expect(kept.stdout).toBe(`travail de ${stayed[0]}\n`);
    const lost = (await auditActions()).find((r) => r.action === 'host.lost');
    expect(lost?.detail).toMatchObject({ host: 'docker@b', labs: 3 });
  }, 600_000);

  test('the exam is graded in full on the host left', async () => {
    expect((await op().post(`/api/exams/${examId}/end`)).status).toBe(202);
    const exam = await waitFor('the exam graded', async () => (await op().get(`/api/exams/${examId}`)).body, (e) => e.status === 'ended', 300_000);
    expect(exam.progress.labs).toEqual({ graded: 6 });
    const results = (await op().get(`/api/exams/${examId}/results`)).body.candidates as { candidate: { id: string }; checks: { status: string }[] }[];
    expect(results.map((r) => [r.candidate.id, r.checks.every((c) => c.status === 'pass' || c.status === 'fail')])).toEqual(CANDIDATES.map((id) => [id, true]));
  }, 400_000);

  test('the host comes back: the remains of the labs that left it are removed', async () => {
    await b.start();
    const up = await waitFor('the host picked up again', auditActions, (rs) => rs.some((r) => r.action === 'engine.up' && r.detail.provider === 'docker@b'), 120_000);
    expect(up.find((r) => r.action === 'engine.up')?.detail).toMatchObject({ provider: 'docker@b', removed: 3 });
    expect(await labsOn(b)).toEqual([]);
  }, 300_000);
});
