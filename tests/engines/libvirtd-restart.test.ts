import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { pino } from 'pino';
import { loadConfig, PACKAGE_ROOT } from '../../src/daemon/config.js';
import type { Provider } from '../../src/providers/index.js';
import { api, OPERATOR, sshExec, startedExam, startTestDaemon, waitFor, type TestDaemon } from '../api/helpers.js';

/** One VM a candidate; the checks look for what the candidate wrote in it, before and while libvirtd was down. */
const SCENARIO = `apiVersion: examlab/v1
id: libvirtd-restart
title: Notes sur une VM
ccp: CCP2
competencies: [{ id: C1, title: Intervenir sur un poste }]
duration: 30m
machines:
  - name: vm
    provider: libvirt
    image: debian-vm
    resources: { cpus: 1, memory: 384M }
    login: { user: technicien }
instructions: { fr: Écrivez vos notes dans votre dossier. }
checks:
  - { id: before, title: Notes d'avant, machine: vm, kind: file, path: /home/technicien/before, content: { contains: written before libvirtd was stopped }, points: 1, competency: C1 }
  - { id: during, title: Notes de pendant, machine: vm, kind: file, path: /home/technicien/during, content: { contains: written while libvirtd was down }, points: 1, competency: C1 }
`;

const URI = loadConfig({ dataDir: '/nonexistent' }).libvirtUri;

/** Whether libvirtd answers (a stopped one makes virsh wait: bounded). */
function libvirtdAnswers(): boolean {
  try {
    execFileSync('virsh', ['-c', URI, 'version'], { stdio: 'ignore', timeout: 10_000 });
    return true;
  } catch {
    return false;
  }
}

/** libvirtd processes that have not exited (zombies aside). */
function libvirtdProcesses(): number {
  try {
    const states = execFileSync('ps', ['-C', 'libvirtd', '-o', 'stat='], { encoding: 'utf8' });
    return states.split('\n').filter((s) => s.trim() && !s.trim().startsWith('Z')).length;
  } catch {
    return 0; // ps found none
  }
}

function signalLibvirtd(signal: 'STOP' | 'CONT' | 'TERM'): void {
  try {
    execFileSync('pkill', [`-${signal}`, '-x', 'libvirtd']);
  } catch {
    // none running
  }
}

/** Starts libvirtd as the project does (scripts/engines.sh: its own mount namespace, /dev/kvm masked where KVM hangs guests). */
function startLibvirtd(): void {
  execFileSync('sh', [join(PACKAGE_ROOT, 'scripts/engines.sh')], { stdio: 'ignore', timeout: 180_000 });
}

/** The QEMU process running a domain, found without libvirtd. */
function qemuPid(domain: string): number | undefined {
  try {
    return Number(execFileSync('pgrep', ['-f', `guest=${domain},`], { encoding: 'utf8' }).trim().split('\n')[0]);
  } catch {
    return undefined;
  }
}

/** libvirtd waits for its busy workers (another lab's domain start) for 30 s at most, then forces its way out. */
const LIBVIRTD_EXIT_MS = 90_000;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface CandidateView {
  id: string;
  phase: string;
  detail?: string;
  deadline?: string;
  extensionMs: number;
  finalRunId?: string;
  lab: { id: string; state: string };
  runs: { id: string; purpose: string; status: string; score?: { complete: boolean } }[];
}

/**
 * libvirtd stopped (SIGSTOP), then killed and started again, under a real
 * exam of two candidates on VMs, with the daemon running throughout (in this
 * process: it shares libuv's threads with the test). Alice has handed in
 * before; Bob works through it and is ended while libvirtd is down.
 */
describe('libvirtd restarted mid-exam: the exam goes on, nothing is lost', () => {
  let d: TestDaemon | undefined;
  let closed = false;
  let examId: string;
  let tokens: Record<string, string>;
  let labs: Record<string, string>;
  let libvirt: Provider;
  const pids: Record<string, number | undefined> = {};
  const deadlines: Record<string, string | undefined> = {};
  const log: Record<string, unknown>[] = [];

  const op = () => api((d as TestDaemon).url, OPERATOR);
  const candidate = async (id: string): Promise<CandidateView> => (await op().get(`/api/exams/${examId}/candidates/${id}`)).body;
  const write = (id: string, file: string, text: string) => sshExec((d as TestDaemon).sshPort, id, tokens[id] as string, `echo '${text}' > ~/${file}`);
  const logged = (msg: string) => log.filter((l) => l.msg === msg);

  beforeAll(async () => {
    if (!libvirtdAnswers()) startLibvirtd();
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        for (const line of chunk.toString().split('\n')) if (line.trim()) log.push(JSON.parse(line) as Record<string, unknown>);
        done();
      },
    });
    d = await startTestDaemon({}, { log: pino({ level: 'info' }, sink) });
    ({ examId, tokens } = await startedExam(d.url, { scenarioYaml: SCENARIO, candidates: [{ id: 'alice', name: 'Alice' }, { id: 'bob', name: 'Bob' }], mode: 'exam' }, 900_000));
    labs = {};
    for (const id of ['alice', 'bob']) {
      const c = await candidate(id);
      labs[id] = c.lab.id;
      deadlines[id] = c.deadline;
      pids[id] = qemuPid(`exl-${c.lab.id}-vm`);
      const written = await write(id, 'before', 'written before libvirtd was stopped');
      if (written.code !== 0) throw new Error(`${id} could not write in their VM: ${written.stderr}`);
    }
    libvirt = await d.daemon.app.providers.get('libvirt');
    // Alice hands in now: graded, her lab kept (paused) for a regrade.
    await op().post(`/api/exams/${examId}/candidates/alice/end`).expect(202);
    await waitFor("alice's grading", () => candidate('alice'), (c) => c.phase === 'ended', 300_000);
  }, 1_500_000);

  afterAll(async () => {
    // libvirtd is left running whatever happened.
    signalLibvirtd('CONT');
    if (!libvirtdAnswers()) {
      signalLibvirtd('TERM');
      await waitFor("libvirtd's exit", async () => libvirtdProcesses(), (n) => n === 0, LIBVIRTD_EXIT_MS).catch(() => undefined);
      startLibvirtd();
    }
    if (d && !closed) await d.close();
  }, 300_000);

  test('libvirtd stopped (SIGSTOP): calls that need it end within their bound naming libvirtd, the daemon keeps serving meanwhile, and libvirt answers again once libvirtd goes on', async () => {
    const bob = { labId: labs.bob as string };
    signalLibvirtd('STOP');
    let outcomes: unknown[];
    let servedMs: number;
    let health: number;
    let took: number;
    try {
      const started = Date.now();
      // More calls than libuv has threads: were each to hold one, the daemon's file I/O would wait with them.
      const calls = Promise.all(Array.from({ length: 6 }, () => libvirt.machineState(bob, 'vm').catch((err: unknown) => err)));
      await sleep(2000);
      const served = Date.now();
      await readFile(join((d as TestDaemon).dataDir, 'daemon.json'));
      health = (await api((d as TestDaemon).url).get('/healthz')).status;
      servedMs = Date.now() - served;
      outcomes = await calls;
      took = Date.now() - started;
    } finally {
      signalLibvirtd('CONT');
    }
    expect(servedMs).toBeLessThan(2000);
    expect(health).toBe(200);
    expect(took).toBeLessThan(45_000);
    expect(outcomes.map((o) => (o instanceof Error ? `${o.name}: ${o.message}` : o))).toEqual(
      Array(6).fill(expect.stringMatching(new RegExp(`^EngineUnavailableError: libvirtd at ${URI} did not answer within 30 s \\(state of domain exl-${labs.bob}-vm\\), 2 call\\(s\\) unanswered`))),
    );
    expect(await libvirt.machineState(bob, 'vm')).toBe('running');
    expect(logged('lost the connection to libvirtd; a new one is opened at the next call')).toHaveLength(1);
    expect(logged('connected to libvirtd again')).toHaveLength(1);
  }, 180_000);

  test('libvirtd killed: the daemon keeps serving, a request that needs libvirt fails at once with a 503 naming libvirtd, and Bob keeps working in his VM', async () => {
    signalLibvirtd('TERM');
    await waitFor("libvirtd's exit", async () => libvirtdProcesses(), (n) => n === 0, LIBVIRTD_EXIT_MS);
    expect(libvirtdAnswers()).toBe(false);

    expect((await api((d as TestDaemon).url).get('/healthz')).status).toBe(200);
    const asked = Date.now();
    const regrade = await op().post(`/api/exams/${examId}/candidates/alice/regrade`);
    expect(Date.now() - asked).toBeLessThan(15_000);
    expect(regrade.status).toBe(503);
    expect(regrade.body.error).toBe('unavailable');
    expect(regrade.body.message).toMatch(new RegExp(`^libvirtd does not answer at ${URI} \\(.*resume domain exl-${labs.alice}-vm\\); start it with \`make engines\``));

    const during = await write('bob', 'during', 'written while libvirtd was down');
    expect(during).toMatchObject({ code: 0, stderr: '' });
  }, 240_000);

  test("the end of Bob's exam while libvirtd is down: he is cut off at once, and his grading waits for libvirtd, saying so", async () => {
    await op().post(`/api/exams/${examId}/candidates/bob/end`).expect(202);
    const waiting = await waitFor("Bob's grading to wait for libvirtd", () => candidate('bob'), (c) => /^grading waits/.test(c.detail ?? ''), 60_000);
    expect(waiting.detail).toMatch(new RegExp(`^grading waits for the libvirt engine \\(asked again every 5 s since [-0-9T:.]+Z\\): libvirtd does not answer at ${URI} \\(`));
    // His exam is over even though his lab cannot be frozen yet: the gateway refuses him.
    await expect(write('bob', 'late', 'too late')).rejects.toThrow(/authentication methods failed/);

    // A few more tries: still waiting, still said, nothing recorded as failed.
    await sleep(12_000);
    const still = await candidate('bob');
    expect(still).toMatchObject({ phase: 'ending', detail: waiting.detail });
    expect(still.runs.filter((r) => r.purpose === 'final')).toEqual([]);
    expect((await op().get(`/api/exams/${examId}`)).body.status).toBe('running');
    expect(logged('grading waits for the libvirt engine to answer')).toHaveLength(1);
  }, 120_000);

  test('libvirtd started again: the provider reconnects by itself, the same VMs are found running on, and the grading completes with everything Bob wrote', async () => {
    startLibvirtd();
    expect(libvirtdAnswers()).toBe(true);
    const bob = await waitFor("Bob's grading", () => candidate('bob'), (c) => c.phase === 'ended', 180_000);
    const final = bob.runs.find((r) => r.id === bob.finalRunId);
    expect(final).toMatchObject({ purpose: 'final', status: 'done', score: { complete: true } });
    expect(bob.detail).toBeUndefined();
    const result = (await op().get(`/api/exams/${examId}/results`)).body.candidates.find((c: { candidate: { id: string } }) => c.candidate.id === 'bob');
    expect(result).toMatchObject({ complete: true, auto: { points: 2, maxPoints: 2 } });
    expect(logged('the libvirt engine answers again; grading goes on')).toHaveLength(1);

    // No daemon restart: the same provider, on a connection it opened again itself, finds the same QEMU processes.
    expect(await (d as TestDaemon).daemon.app.providers.get('libvirt')).toBe(libvirt);
    expect(logged('connected to libvirtd again')).toHaveLength(2);
    for (const id of ['alice', 'bob']) {
      expect(await libvirt.machineState({ labId: labs[id] as string }, 'vm')).toBe('paused');
      expect(qemuPid(`exl-${labs[id]}-vm`)).toBe(pids[id]);
    }
    expect(pids.alice).toEqual(expect.any(Number));

    // The regrade refused while libvirtd was down works now.
    const regrade = await op().post(`/api/exams/${examId}/candidates/alice/regrade`);
    expect(regrade.status).toBe(200);
    expect(regrade.body.score).toMatchObject({ complete: true, points: 1, maxPoints: 2 });
    expect(Object.fromEntries(regrade.body.results.map((r: { checkId: string; status: string }) => [r.checkId, r.status]))).toEqual({ before: 'pass', during: 'fail' });
    expect((await op().get(`/api/exams/${examId}`)).body.status).toBe('ended');
  }, 300_000);

  test("every candidate's time is accounted for: nobody was kept from working, so deadlines stand and no time was given back", async () => {
    for (const id of ['alice', 'bob']) {
      const c = await candidate(id);
      expect(c.deadline).toBe(deadlines[id]);
      expect(c.extensionMs).toBe(0);
    }
    const actions = ((await op().get(`/api/audit?exam=${examId}`)).body.records as { action: string }[]).map((r) => r.action);
    expect(actions.filter((a) => a.endsWith('.outage'))).toEqual([]);
    expect(actions.filter((a) => a === 'lab.grade')).toHaveLength(3);
  }, 60_000);

  test('the labs are destroyed with the daemon: no domain and no file left', async () => {
    const vmDir = loadConfig({ dataDir: (d as TestDaemon).dataDir }).vmDir;
    await (d as TestDaemon).close();
    closed = true;
    const domains = execFileSync('virsh', ['-c', URI, 'list', '--all', '--name'], { encoding: 'utf8' });
    for (const id of ['alice', 'bob']) {
      expect(domains).not.toContain(`exl-${labs[id]}-`);
      expect(existsSync(join(vmDir, 'labs', labs[id] as string))).toBe(false);
    }
  }, 300_000);
});
