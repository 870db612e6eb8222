import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { expect, test } from '@jest/globals';
import { PACKAGE_ROOT } from '../../src/daemon/config.js';
import { retryUntil } from '../../src/util/retry.js';
import { cpuTimes } from '../integration/helpers.js';
import { api, DaemonProcess, destroyAllLabs, OPERATOR, sshExec, TEST_CONFIG, waitFor } from '../api/helpers.js';

/**
 * A full exam room on this host, through the daemon in its own process, as a
 * centre runs it: `broken-workstation` (two systemd machines a lab) for
 * ROOM candidates (30 by default), ROUNDS times in a row (3):
 *   cold      created with start "now" → every lab built, verified broken and offered;
 *   end       end of the exam → every result stored; then the CSV export;
 *   prepared  created with `prepare` → every lab ready while access is shut;
 *   start     start → every candidate logged in through the gateway (in parallel);
 *   reset     a reset with a spare lab ready → the candidate's new lab answers;
 *   rss       the daemon's resident memory with every lab up and a gateway session per candidate open.
 * Zero failed labs is part of the result. Figures: build/bench/room.json.
 */
const ROOM = Number(process.env.ROOM ?? 30);
const ROUNDS = Number(process.env.ROUNDS ?? 3);
const SCENARIO = 'broken-workstation';

type Figures = Record<string, number>;
const roster = (round: number, kind: string) =>
  `id,name\n${Array.from({ length: ROOM }, (_, i) => `c${round}${kind}${i},Candidat ${i}`).join('\n')}\n`;

interface Exam {
  id: string;
  status: string;
  progress: { byPhase: { active: number; ready: number; failed: number }; failed: number; spares: { ready: number } };
  candidates: { id: string; phase: string; finalRunId?: string }[];
}

/**
 * An interactive gateway session (a shell), held open; retried while the start is being applied.
 * From its own loopback address, as each candidate's machine has one (the gateway limits connections not logged in per address).
 */
function openSession(port: number, user: string, token: string, localAddress: string): Promise<ssh2.Client> {
  const connect = () =>
    new Promise<ssh2.Client>((resolve, reject) => {
      const client = new ssh2.Client();
      client.on('error', reject);
      client.on('ready', () => client.shell((err) => (err ? reject(err) : resolve(client))));
      client.connect({ host: '127.0.0.1', port, localAddress, username: user, password: token, readyTimeout: 30_000 });
    });
  return retryUntil(connect, () => true, { what: `a gateway session for ${user}`, timeoutMs: 60_000, intervalMs: 100 });
}

/** CPU-seconds so far: the whole host, the lab containers (their cgroup), the engine (dockerd, containerd), the daemon. */
function cpuSeconds(daemonPid: number): Record<string, number> {
  const ticks = (pid: number) => {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
      return (Number(fields[11]) + Number(fields[12])) / 100;
    } catch {
      return 0;
    }
  };
  const commOf = (pid: string) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
    } catch {
      return ''; // gone meanwhile
    }
  };
  const pidsOf = (name: string) => readdirSync('/proc').filter((p) => /^\d+$/.test(p) && commOf(p) === name).map(Number);
  let labs = 0;
  try {
    labs = Number(readFileSync('/sys/fs/cgroup/cpuacct/examlab/cpuacct.usage', 'utf8')) / 1e9;
  } catch {
    // cgroup v2 or another layout: not split out
  }
  const host = cpuTimes();
  return { host: host.busy / 100, labs, engine: [...pidsOf('dockerd'), ...pidsOf('containerd')].reduce((sum, p) => sum + ticks(p), 0), daemon: ticks(daemonPid) };
}

function rssMiB(pid: number): number {
  const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:')) ?? '';
  return Math.round(Number(line.replace(/\D+/g, '')) / 1024);
}

const seconds = (from: string, to: string) => (Date.parse(to) - Date.parse(from)) / 1000;
const medianOf = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? 0;

/** Where a lab's time went, median over the room: waiting its turn, built, verified broken. */
async function buildPhases(op: ReturnType<typeof api>, examId: string, ids: string[]): Promise<Figures> {
  const details = await Promise.all(ids.map(async (id) => (await op.get(`/api/exams/${examId}/candidates/${id}`)).body as { labEvents: { to: string; at: string }[]; runs: { purpose: string; startedAt: string; finishedAt: string }[] }));
  const phase = (from: string, to: string) =>
    medianOf(details.map((d) => seconds(d.labEvents.find((e) => e.to === from)?.at ?? '', d.labEvents.findLast((e) => e.to === to)?.at ?? '')));
  return {
    queuedMedian: phase('requested', 'provisioning'),
    buildMedian: phase('provisioning', 'ready'),
    baselineMedian: medianOf(details.map((d) => d.runs.filter((r) => r.purpose === 'baseline').map((r) => seconds(r.startedAt, r.finishedAt)).at(-1) ?? 0)),
  };
}

test(`a room of ${ROOM} candidates, ${ROUNDS} rounds`, async () => {
  const daemon = DaemonProcess.create();
  // The daemon's defaults for a room: only the test's tokens and loopback addresses.
  const { provisioning: _fixed, ...config } = TEST_CONFIG;
  // PROVISIONING=N and GRADING=N compare fixed concurrencies with the host's own.
  const fixed = (name: string) => (process.env[name] ? { concurrency: Number(process.env[name]) } : undefined);
  writeFileSync(daemon.configFile, JSON.stringify({ ...config, tick: '1s', provisioning: fixed('PROVISIONING'), grading: fixed('GRADING') }));
  await daemon.start();
  const op = api(daemon.url, OPERATOR);
  const exam = async (id: string) => (await op.get(`/api/exams/${id}`)).body as Exam;
  const rounds: Figures[] = [];
  try {
    for (let round = 1; round <= ROUNDS; round++) {
      const f: Figures = {};
      // Cold: built after the start.
      let t = Date.now();
      const cpu = cpuTimes();
      const cpuBefore = cpuSeconds(daemon.proc?.pid as number);
      const cold = await op.post('/api/exams').send({ scenario: SCENARIO, rosterCsv: roster(round, 'a'), duration: '2h', start: 'now' });
      expect(cold.status).toBe(201);
      const coldId = cold.body.exam.id as string;
      const offered = await waitFor('every lab offered', () => exam(coldId), (e) => e.progress.byPhase.active + e.progress.byPhase.failed === ROOM, 900_000);
      f.coldSeconds = (Date.now() - t) / 1000;
      f.coldFailed = offered.progress.byPhase.failed;
      const after = cpuTimes();
      f.coldHostBusy = Math.round((100 * (after.busy - cpu.busy)) / (after.total - cpu.total)) / 100;
      // CPU-seconds a lab cost, by who spent them.
      const cpuAfter = cpuSeconds(daemon.proc?.pid as number);
      for (const k of Object.keys(cpuAfter)) f[`coldCpuPerLab_${k}`] = Math.round((100 * ((cpuAfter[k] as number) - (cpuBefore[k] as number))) / ROOM) / 100;
      Object.assign(f, await buildPhases(op, coldId, offered.candidates.map((c) => c.id)));

      // End: every result stored.
      t = Date.now();
      expect((await op.post(`/api/exams/${coldId}/end`)).status).toBe(202);
      const ended = await waitFor('every result stored', () => exam(coldId), (e) => e.status === 'ended', 600_000);
      f.endSeconds = (Date.now() - t) / 1000;
      f.ungraded = ended.candidates.filter((c) => !c.finalRunId).length;
      const csv = await op.get(`/api/exams/${coldId}/results.csv`);
      expect(csv.status).toBe(200);
      f.exportedRows = csv.text.trim().split('\n').length - 1;
      expect((await op.delete(`/api/exams/${coldId}/labs`)).status).toBe(200);

      // COLD_ONLY=1: the cold start and the end only (when tuning the build).
      if (process.env.COLD_ONLY) {
        rounds.push(f);
        process.stdout.write(`room round ${round}: ${JSON.stringify(f)}\n`);
        continue;
      }
      // Prepared: built before the start, with a spare.
      t = Date.now();
      const prepared = await op.post('/api/exams').send({ scenario: SCENARIO, rosterCsv: roster(round, 'b'), duration: '2h', start: 'manual', prepare: true, spares: 1 });
      expect(prepared.status).toBe(201);
      const examId = prepared.body.exam.id as string;
      const tokens = new Map<string, string>((prepared.body.candidates as { id: string; token: string }[]).map((c) => [c.id, c.token]));
      const ready = await waitFor('every lab ready, and the spare', () => exam(examId), (e) => e.progress.byPhase.ready + e.progress.byPhase.failed === ROOM && e.progress.spares.ready === 1, 900_000);
      f.preparedSeconds = (Date.now() - t) / 1000;
      f.preparedFailed = ready.progress.byPhase.failed;
      // Nobody gets in before the start.
      const early = await sshExec(daemon.sshPort, [...tokens.keys()][0] as string, [...tokens.values()][0] as string, 'true').catch((err: Error) => err);
      expect(early).toBeInstanceOf(Error);

      // Start → every candidate logged in through the gateway, all at once.
      t = Date.now();
      expect((await op.post(`/api/exams/${examId}/start`)).status).toBe(202);
      const sessions = await Promise.all([...tokens].map(([id, token], i) => openSession(daemon.sshPort, id, token, `127.0.1.${i + 1}`)));
      f.startToAllLoggedInSeconds = (Date.now() - t) / 1000;

      // Memory with every lab up and a gateway session per candidate open.
      f.daemonRssMiB = rssMiB(daemon.proc?.pid as number);

      // A reset with the spare ready → the candidate works on a fresh lab.
      const [resetId, resetToken] = [...tokens][0] as [string, string];
      await sshExec(daemon.sshPort, resetId, resetToken, 'touch ~/before-reset');
      t = Date.now();
      expect((await op.post(`/api/exams/${examId}/candidates/${resetId}/reset`)).status).toBe(202);
      const fresh = await retryUntil(() => sshExec(daemon.sshPort, resetId, resetToken, 'test ! -e ~/before-reset && echo fresh'), (r) => r.stdout === 'fresh\n', { what: 'a working fresh lab after the reset', timeoutMs: 300_000, intervalMs: 100 });
      f.resetWithSpareSeconds = (Date.now() - t) / 1000;
      expect(fresh.stdout).toBe('fresh\n');
      for (const s of sessions) s.end();

      // End of the prepared exam → every result stored.
      t = Date.now();
      expect((await op.post(`/api/exams/${examId}/end`)).status).toBe(202);
      const done = await waitFor('every result stored', () => exam(examId), (e) => e.status === 'ended', 600_000);
      f.endPreparedSeconds = (Date.now() - t) / 1000;
      f.ungradedPrepared = done.candidates.filter((c) => !c.finalRunId).length;
      const exported = await op.get(`/api/exams/${examId}/results.xlsx`);
      expect(exported.status).toBe(200);
      f.exportedPreparedBytes = Number(exported.headers['content-length']);
      expect((await op.delete(`/api/exams/${examId}/labs`)).status).toBe(200);

      process.stdout.write(`room round ${round}: ${JSON.stringify(f)}\n`);
      rounds.push(f);
    }
  } finally {
    await daemon.kill('SIGTERM');
    await destroyAllLabs(daemon.dataDir);
  }
  const median = (key: string) => {
    const values = rounds.map((r) => r[key] as number).sort((a, b) => a - b);
    return values[Math.floor(values.length / 2)];
  };
  const summary = { room: ROOM, scenario: SCENARIO, rounds, medians: Object.fromEntries(Object.keys(rounds[0] ?? {}).map((k) => [k, median(k)])) };
  mkdirSync(join(PACKAGE_ROOT, 'build/bench'), { recursive: true });
  writeFileSync(join(PACKAGE_ROOT, 'build/bench/room.json'), `${JSON.stringify(summary, null, 2)}\n`);
  for (const r of rounds) {
    expect(r.coldFailed).toBe(0);
    expect(r.ungraded).toBe(0);
    expect(r.coldSeconds).toBeLessThan(90);
    expect(r.endSeconds).toBeLessThan(15);
    expect(r.preparedFailed).toBe(0);
    expect(r.ungradedPrepared).toBe(0);
    expect(r.exportedRows).toBe(ROOM);
    expect(r.exportedPreparedBytes).toBeGreaterThan(0);
    expect(r.startToAllLoggedInSeconds).toBeLessThan(5);
    expect(r.resetWithSpareSeconds).toBeLessThan(5);
    expect(r.endPreparedSeconds).toBeLessThan(15);
    expect(r.daemonRssMiB).toBeLessThan(200);
  }
});
