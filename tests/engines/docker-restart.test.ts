import { execFileSync, spawn } from 'node:child_process';
import { openSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import Dockerode from 'dockerode';
import { api, examObjects, OPERATOR, sshExec, startedExam, startTestDaemon, waitFor, type TestDaemon, type CandidateView } from '../api/helpers.js';
import { SMALL_SCENARIO } from '../api/scenarios.js';

const docker = new Dockerode();

/** The running engine's command line, to start it again exactly so (with or without live restore). */
function dockerdArgs(): string[] {
  const pid = execFileSync('pgrep', ['-xo', 'dockerd']).toString().trim();
  return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).slice(1).filter((a) => a !== '--live-restore');
}

async function stopDockerd(): Promise<void> {
  execFileSync('pkill', ['-x', 'dockerd']);
  await waitFor('dockerd to exit', async () => execFileSync('sh', ['-c', 'pgrep -x dockerd || true']).toString().trim(), (pids) => pids === '', 90_000);
}

async function startDockerd(args: readonly string[]): Promise<void> {
  const log = openSync('/var/log/examlab/dockerd.log', 'a');
  spawn('dockerd', args, { detached: true, stdio: ['ignore', log, log] }).unref();
  await waitFor('dockerd to answer', () => docker.info().then(() => true, () => false), (up) => up, 60_000);
}

interface AuditRecord {
  at: string;
  action: string;
  candidateId?: string;
  detail: { provider?: string; kept?: number; restarted?: number; rebuilt?: number; compensated?: number | boolean; seconds?: number };
}


/**
 * The Docker engine restarted under a running exam, with live restore (the
 * labs run through it: nothing to do, nobody owed time) and without (the
 * machines stop with the engine: started again with the candidates' files,
 * and the candidates given the time they were down). The daemon says the
 * outage while it lasts, and the exam is graded in full afterwards.
 */
describe('the Docker engine restarted during an exam', () => {
  let d: TestDaemon;
  let examId: string;
  let tokens: { [id: string]: string };
  let args: string[];
  const op = () => api(d.url, OPERATOR);
  const candidates = async (): Promise<CandidateView[]> => Promise.all(['alice', 'bob'].map(async (id) => (await op().get(`/api/exams/${examId}/candidates/${id}`)).body as CandidateView));
  const engineRecords = async (): Promise<AuditRecord[]> => ((await op().get('/api/audit')).body.records as AuditRecord[]).filter((r) => r.action.startsWith('engine.'));
  /** Every machine of the exam running again after the engine's restart at `since`, and the daemon's records of how (an outage's end, or machines started again). */
  const pickedUp = async (since: number) => {
    const after = async () => ((await op().get('/api/audit')).body.records as AuditRecord[]).filter((r) => Date.parse(r.at) >= since && (r.action === 'engine.up' || r.action === 'lab.restart'));
    await waitFor('the machines running again', async () => (await examObjects(examId)).containers.map((c) => c.state), (states) => states.length === 2 && states.every((s) => s === 'running'), 90_000);
    return waitFor('the daemon to say it picked the labs up', after, (rs) => rs.some((r) => r.action === 'engine.up') || new Set(rs.map((r) => r.candidateId)).size === 2, 30_000);
  };
  const recovered = async (count: number) => (await waitFor(`recovery ${count} of the engine`, engineRecords, (rs) => rs.filter((r) => r.action === 'engine.up').length >= count, 90_000)).filter((r) => r.action === 'engine.up')[count - 1] as AuditRecord;

  beforeAll(async () => {
    args = dockerdArgs();
    d = await startTestDaemon({ engineCheck: '500ms' });
    ({ examId, tokens } = await startedExam(d.url, { scenarioYaml: SMALL_SCENARIO, candidates: [{ id: 'alice', name: 'Alice' }, { id: 'bob', name: 'Bob' }] }));
    const written = await sshExec(d.sshPort, 'alice', tokens.alice as string, 'echo travail > ~/travail');
    expect(written.code).toBe(0);
  }, 240_000);

  afterAll(async () => {
    // Whatever happened, the engine is left running as the project starts it: live restore on.
    if (!(await docker.info().then(() => true, () => false))) await startDockerd([...args, '--live-restore']);
    else if (!((await docker.info()) as { LiveRestoreEnabled: boolean }).LiveRestoreEnabled) {
      await stopDockerd();
      await startDockerd([...args, '--live-restore']);
    }
    await d?.close();
  }, 240_000);

  test('with live restore: the outage is said while it lasts, candidates keep working, labs are kept and nobody is owed time', async () => {
    const before = await candidates();
    const containers = (await examObjects(examId)).containers.map((c) => c.id).sort();
    await stopDockerd();
    const ready = await waitFor('readiness to say the engine is down', async () => (await api(d.url).get('/readyz')).body, (r) => r.checks?.labEngines?.ok === false, 30_000);
    expect(ready.checks.labEngines.detail).toMatch(/the docker engine has not answered since/);
    // The labs run on without their engine: the candidate's session through the gateway still works.
    expect((await sshExec(d.sshPort, 'alice', tokens.alice as string, 'cat ~/travail')).stdout).toBe('travail\n');
    await startDockerd([...args, '--live-restore']);
    const up = await recovered(1);
    expect(up.detail).toMatchObject({ provider: 'docker', kept: 2, restarted: 0, rebuilt: 0, compensated: 0 });
    expect((await engineRecords()).map((r) => r.action)).toEqual(['engine.down', 'engine.up']);
    expect((await examObjects(examId)).containers.map((c) => c.id).sort()).toEqual(containers);
    expect((await candidates()).map((c) => c.deadline)).toEqual(before.map((c) => c.deadline));
    expect((await api(d.url).get('/readyz')).body.checks.labEngines.ok).toBe(true);
  }, 240_000);

  test('without live restore: the stopped machines are started again with the candidates\' files, and the candidates get the time back', async () => {
    // An engine restarted without live restore (its own restart is survived: it had it until now).
    // It stops the machines it finds at its start: they are picked up as well.
    let since = Date.now();
    await stopDockerd();
    await startDockerd(args);
    await pickedUp(since);
    const before = await candidates();
    const containers = (await examObjects(examId)).containers.map((c) => c.id).sort();
    // Now it stops and takes the machines with it.
    since = Date.now();
    await stopDockerd();
    await startDockerd([...args, '--live-restore']);
    const records = await pickedUp(since);
    const downMs = Date.now() - since;
    // Seen as an outage (engine.up), or, an engine back before the next look, as stopped machines (lab.restart): started again either way, the time given.
    const up = records.find((r) => r.action === 'engine.up');
    process.stdout.write(`engine restarted without live restore, picked up ${up ? 'as an outage' : 'as stopped machines'} in ${downMs / 1000} s\n`);
    if (up) expect(up.detail).toMatchObject({ provider: 'docker', kept: 0, restarted: 2, rebuilt: 0, compensated: 2 });
    else expect(records.filter((r) => r.action === 'lab.restart').map((r) => [r.candidateId, r.detail.compensated]).sort()).toEqual([['alice', true], ['bob', true]]);
    const after = await candidates();
    const objects = await examObjects(examId);
    expect(objects.containers.map((c) => c.id).sort()).toEqual(containers);
    expect(objects.containers.map((c) => c.state)).toEqual(['running', 'running']);
    for (const [i, c] of after.entries()) {
      const given = Date.parse(c.deadline) - Date.parse(before[i]?.deadline as string);
      const machine = (await docker.getContainer(objects.containers.find((o) => o.lab === c.lab.id)?.id as string).inspect()).State;
      // At least the time the machine was down, at most the whole wait (and the one look of the watch before it).
      expect(given).toBeGreaterThanOrEqual(Date.parse(machine.StartedAt) - Date.parse(machine.FinishedAt) - 1000);
      expect(given).toBeLessThanOrEqual(downMs + 1500);
      expect(c.extensionMs - (before[i]?.extensionMs as number)).toBe(given);
    }
    const work = await waitFor('alice\'s machine to answer again', () => sshExec(d.sshPort, 'alice', tokens.alice as string, 'cat ~/travail').catch((err: Error) => ({ code: -1, stdout: err.message, stderr: '' })), (r) => r.code === 0, 60_000);
    expect(work.stdout).toBe('travail\n');
  }, 300_000);

  test('the exam is then graded in full', async () => {
    expect((await op().post(`/api/exams/${examId}/end`)).status).toBe(202);
    const exam = await waitFor('the exam graded', async () => (await op().get(`/api/exams/${examId}`)).body, (e) => e.status === 'ended', 120_000);
    expect(exam.progress.labs).toEqual({ graded: 2 });
    // Every check decided (pass or fail, none in error): only the jury's manual marks are left.
    const results = (await op().get(`/api/exams/${examId}/results`)).body.candidates as { candidate: { id: string }; checks: { status: string }[]; pending: string[] }[];
    expect(results.map((r) => [r.candidate.id, r.checks.map((c) => c.status).filter((s) => s !== 'pass' && s !== 'fail'), r.pending.filter((p) => !p.startsWith('manual criteria'))])).toEqual([
      ['alice', [], []],
      ['bob', [], []],
    ]);
    expect((await op().get('/api/audit')).body.chain).toMatchObject({ ok: true });
  }, 180_000);
});
