import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import autocannon from 'autocannon';
import ssh2 from 'ssh2';
import { expect, test } from '@jest/globals';
import { PACKAGE_ROOT } from '../../src/daemon/config.js';
import { api, DaemonProcess, destroyAllLabs, examObjects, OPERATOR, TEST_CONFIG, waitFor } from '../api/helpers.js';

/**
 * The API and the gateway under load on loopback while labs are being
 * built, through the daemon in its own process with its defaults:
 *   - an exam of CANDIDATES (4) candidates on `broken-workstation`, running;
 *   - autocannon, DURATION (10) seconds and CONNECTIONS (20) connections, on
 *     GET /api/exams/{id} (operator) then GET /api/me (a candidate);
 *   - WAVES (5) waves of PARALLEL (20) SSH logins at once through the
 *     gateway, each from its own loopback address (as candidates' machines
 *     are), each running `hostname`: time from connecting to the output;
 *   - all three first with no lab of ours being built (the host's other
 *     work only), then again while a second exam of BUILDING (12)
 *     candidates is prepared (its labs built and verified meanwhile).
 * Every request and login is bounded in count and time. Zero errors is part
 * of the result. Figures: build/bench/load.json.
 */
const CANDIDATES = Number(process.env.CANDIDATES ?? 4);
const BUILDING = Number(process.env.BUILDING ?? 12);
const DURATION = Number(process.env.DURATION ?? 10);
const CONNECTIONS = Number(process.env.CONNECTIONS ?? 20);
const PARALLEL = Number(process.env.PARALLEL ?? 20);
const WAVES = Number(process.env.WAVES ?? 5);
const SCENARIO = 'broken-workstation';

interface Exam {
  id: string;
  status: string;
  progress: { byPhase: Record<'waiting' | 'provisioning' | 'ready' | 'active' | 'failed', number> };
}

const loadAverage = () => Number(readFileSync('/proc/loadavg', 'utf8').split(' ')[0]);
const percentile = (values: number[], p: number) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? 0;
};
const roster = (prefix: string, n: number) => `id,name\n${Array.from({ length: n }, (_, i) => `${prefix}${i},Candidat ${i}`).join('\n')}\n`;

/** One login through the gateway from `localAddress`, running `hostname`: the output and the time to it. */
function loginAndRun(port: number, user: string, token: string, localAddress: string): Promise<{ ms: number; output: string }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const client = new ssh2.Client();
    const timer = setTimeout(() => {
      client.end();
      reject(new Error(`${user}: no output within 60 s`));
    }, 60_000);
    const fail = (err: Error) => {
      clearTimeout(timer);
      client.end();
      reject(err);
    };
    client.on('error', fail);
    client.on('ready', () =>
      client.exec('hostname', (err, ch) => {
        if (err) return fail(err);
        let output = '';
        let ms = 0;
        ch.on('data', (d: Buffer) => {
          if (!output) ms = Number(process.hrtime.bigint() - started) / 1e6;
          output += d.toString();
        });
        ch.stderr.on('data', (d: Buffer) => (output += d.toString()));
        ch.on('close', () => {
          clearTimeout(timer);
          client.end();
          resolve({ ms, output });
        });
      }),
    );
    client.connect({ host: '127.0.0.1', port, localAddress, username: user, password: token, readyTimeout: 60_000 });
  });
}

test(`the API and the gateway under load while ${BUILDING} labs are built`, async () => {
  const startedAt = new Date().toISOString();
  const daemon = DaemonProcess.create();
  // The daemon's defaults (concurrency from the host, the limits on unauthenticated clients): only the test's tokens and loopback addresses.
  const { provisioning: _fixed, ...config } = TEST_CONFIG;
  writeFileSync(daemon.configFile, JSON.stringify({ ...config, tick: '1s' }));
  await daemon.start();
  const op = api(daemon.url, OPERATOR);
  const exam = async (id: string) => (await op.get(`/api/exams/${id}`)).body as Exam;
  const examIds: string[] = [];
  const phases: Record<string, unknown>[] = [];
  try {
    // The exam under load: every lab offered first.
    const created = await op.post('/api/exams').send({ scenario: SCENARIO, rosterCsv: roster('c', CANDIDATES), duration: '2h', start: 'now' });
    expect(created.status).toBe(201);
    const examId = created.body.exam.id as string;
    examIds.push(examId);
    const candidates = created.body.candidates as { id: string; token: string }[];
    const running = await waitFor('every lab offered', () => exam(examId), (e) => e.progress.byPhase.active + e.progress.byPhase.failed === CANDIDATES, 600_000);
    expect(running.progress.byPhase.failed).toBe(0);
    const hostnames = new Map<string, string>();
    for (const c of candidates) {
      const me = await api(daemon.url, c.token).get('/api/me');
      hostnames.set(c.id, (me.body as { access: { machines: { hostname: string }[] } }).access.machines[0]?.hostname as string);
    }

    const phase = async <T extends Record<string, unknown>>(name: string, run: () => Promise<T>, building?: () => Promise<Record<string, number>>) => {
      const before = { loadAverage: loadAverage(), building: await building?.() };
      const figures = await run();
      const after = { loadAverage: loadAverage(), building: await building?.() };
      const entry = { phase: name, ...figures, before, after };
      process.stdout.write(`load ${JSON.stringify(entry)}\n`);
      phases.push(entry);
      return figures;
    };
    const cannon = (path: string, token: string) => async () => {
      const r = await autocannon({ url: `${daemon.url}${path}`, connections: CONNECTIONS, duration: DURATION, headers: { authorization: `Bearer ${token}` } });
      return {
        requests: r.requests.total,
        requestsPerSecond: r.requests.average,
        latencyP50Ms: r.latency.p50,
        latencyP99Ms: r.latency.p99,
        latencyMaxMs: r.latency.max,
        non2xx: r.non2xx,
        errors: r.errors,
        timeouts: r.timeouts,
      };
    };
    const logins = (wavesFrom: number) => async () => {
      const times: number[] = [];
      let errors = 0;
      let wrong = 0;
      const problems: string[] = [];
      for (let wave = 0; wave < WAVES; wave++) {
        const results = await Promise.allSettled(
          Array.from({ length: PARALLEL }, (_, i) => {
            const c = candidates[i % candidates.length] as { id: string; token: string };
            // Each login from its own address, as each candidate's machine has one.
            return loginAndRun(daemon.sshPort, c.id, c.token, `127.0.${wavesFrom + wave}.${i + 1}`).then((r) => ({ ...r, expected: hostnames.get(c.id) }));
          }),
        );
        for (const r of results) {
          if (r.status === 'rejected') {
            errors++;
            problems.push(String(r.reason));
          } else if (r.value.output.trim() !== r.value.expected) {
            wrong++;
            problems.push(`output ${JSON.stringify(r.value.output)}, expected ${r.value.expected}`);
          } else {
            times.push(r.value.ms);
          }
        }
      }
      return { logins: PARALLEL * WAVES, parallel: PARALLEL, p50Ms: Math.round(percentile(times, 50)), p99Ms: Math.round(percentile(times, 99)), maxMs: Math.round(Math.max(...times)), errors, wrongOutput: wrong, problems: problems.slice(0, 5) };
    };

    // The host's other work only.
    const quiet = [
      await phase('GET /api/exams/{id}, no lab of ours building', cannon(`/api/exams/${examId}`, OPERATOR)),
      await phase('GET /api/me, no lab of ours building', cannon('/api/me', candidates[0]?.token as string)),
    ];
    const quietLogins = await phase('SSH logins, no lab of ours building', logins(10));

    // Labs being built meanwhile: a second exam prepared.
    const building = await op.post('/api/exams').send({ scenario: SCENARIO, rosterCsv: roster('b', BUILDING), duration: '2h', start: 'manual', prepare: true });
    expect(building.status).toBe(201);
    const buildingId = building.body.exam.id as string;
    examIds.push(buildingId);
    const builtMeanwhile = async () => {
      const p = (await exam(buildingId)).progress.byPhase;
      return { waiting: p.waiting, provisioning: p.provisioning, ready: p.ready, failed: p.failed };
    };
    await waitFor('labs being built', builtMeanwhile, (p) => p.provisioning > 0, 60_000);

    const busy = [
      await phase('GET /api/exams/{id}, while labs are built', cannon(`/api/exams/${examId}`, OPERATOR), builtMeanwhile),
      await phase('GET /api/me, while labs are built', cannon('/api/me', candidates[0]?.token as string), builtMeanwhile),
    ];
    const busyLogins = await phase('SSH logins, while labs are built', logins(20), builtMeanwhile);

    const built = await waitFor('the second exam built', builtMeanwhile, (p) => p.ready + p.failed === BUILDING, 900_000);
    const summary = {
      startedAt,
      finishedAt: new Date().toISOString(),
      scenario: SCENARIO,
      runningCandidates: CANDIDATES,
      buildingCandidates: BUILDING,
      autocannon: { connections: CONNECTIONS, durationSeconds: DURATION },
      phases,
      secondExamBuilt: built,
    };
    mkdirSync(join(PACKAGE_ROOT, 'build/bench'), { recursive: true });
    writeFileSync(join(PACKAGE_ROOT, 'build/bench/load.json'), `${JSON.stringify(summary, null, 2)}\n`);

    for (const r of [...quiet, ...busy]) {
      expect({ non2xx: r.non2xx, errors: r.errors, timeouts: r.timeouts }).toEqual({ non2xx: 0, errors: 0, timeouts: 0 });
      expect(r.requests).toBeGreaterThan(0);
    }
    for (const l of [quietLogins, busyLogins]) expect({ errors: l.errors, wrongOutput: l.wrongOutput, problems: l.problems }).toEqual({ errors: 0, wrongOutput: 0, problems: [] });
    // Labs were being built when each busy measurement began (how many were still building at its end is in the figures).
    for (const p of phases.slice(3)) {
      const at = (p.before as { building: { provisioning: number; waiting: number } }).building;
      expect(at.provisioning + at.waiting).toBeGreaterThan(0);
    }
  } finally {
    await daemon.kill('SIGTERM');
    await destroyAllLabs(daemon.dataDir);
    for (const id of examIds) expect(await examObjects(id)).toEqual({ containers: [], networks: [] });
  }
}, 1_800_000);
