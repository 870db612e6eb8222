import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readdirSync, rmdirSync, rmSync, statfsSync, writeFileSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { pino } from 'pino';
import ssh2 from 'ssh2';
import { api, DaemonProcess, destroyAllLabs, JURY, OPERATOR, sshExec, startedExam, startTestDaemon, TEST_CONFIG, waitFor, type TestDaemon, type CandidateView } from './helpers.js';
import { SMALL_SCENARIO } from './scenarios.js';

/** The data directory's filesystem: small, so that a file fills it at once. */
const DISK = '48m';
/** The daemon's reserve on it: /readyz is ready with room, not ready once full. */
const SETTINGS = { diskReserve: '4M' };
/** Each candidate's time: long enough to set the scene with room, short enough to pass while the disk is full. */
const DURATION_S = 90;


interface AuditRecord {
  seq: number;
  at: string;
  action: string;
  candidateId?: string;
  detail: Record<string, unknown>;
}

/** A long command in a candidate's lab through the gateway, its output as it comes, and when it was closed. */
interface Stream {
  stdout: string;
  stderr: string;
  closedAt?: number;
  closed: Promise<void>;
  end(): void;
}

function openStream(port: number, user: string, token: string, command: string): Promise<Stream> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    client.on('error', reject);
    client.on('ready', () =>
      client.exec(command, (err, channel) => {
        if (err) return reject(err);
        let closed!: () => void;
        const stream: Stream = { stdout: '', stderr: '', closed: new Promise<void>((r) => (closed = r)), end: () => client.end() };
        channel.on('data', (d: Buffer) => (stream.stdout += d.toString()));
        channel.stderr.on('data', (d: Buffer) => (stream.stderr += d.toString()));
        channel.on('close', () => {
          stream.closedAt = Date.now();
          client.end();
          closed();
        });
        resolve(stream);
      }),
    );
    client.connect({ host: '127.0.0.1', port, username: user, password: token, readyTimeout: 15_000 });
  });
}

const freeBytes = (dir: string) => {
  const s = statfsSync(dir);
  return s.bavail * s.bsize;
};

/** Fills the filesystem of `dir` with one file, until the system says ENOSPC or only `leave` bytes are free; returns the file. */
function fill(dir: string, leave = 0): string {
  const file = join(dir, leave ? 'nearly' : 'filler');
  const fd = openSync(file, 'a');
  try {
    for (const size of [1 << 20, 4096, 1]) {
      const chunk = Buffer.alloc(size, 0x78);
      try {
        while (leave === 0 || freeBytes(dir) >= leave + size) writeSync(fd, chunk);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
      }
      if (leave) break;
    }
  } finally {
    closeSync(fd);
  }
  return file;
}

/** What the daemon says of the full disk: the cause, how much is free, where. */
const literally = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const fullMessage = (dataDir: string, free = '\\d+(\\.\\d)? (B|KiB)') =>
  new RegExp(`^the data directory's filesystem is full \\(${free} free of 4\\d\\.\\d MiB, at ${literally(dataDir)}(/[a-z]+)?(; the store keeps 8\\.0 MiB)?\\): nothing was saved; free space on it`);


/**
 * The data directory's filesystem fills up during a real exam (a tmpfs
 * filled by a file, on the real engine): the daemon refuses every state
 * change clearly, keeps what it has, keeps the candidates' clock, and
 * carries on by itself once space is freed, without a restart.
 */
describe('the data directory full during an exam', () => {
  const mount = mkdtempSync(join(tmpdir(), 'examlab-full-disk-'));
  const dataDir = join(mount, 'data');
  const logLines: { level: number; msg: string; err?: string }[] = [];
  const log = pino({ level: 'info' }, { write: (line: string) => void logLines.push(JSON.parse(line) as { level: number; msg: string; err?: string }) });
  let mounted = false;
  let d: TestDaemon | undefined;
  let stopped = false;
  let examId: string;
  const tokens: Record<string, string> = {};
  let deadline: string;
  let bob: Stream;
  const op = () => api((d as TestDaemon).url, OPERATOR);
  const candidate = async (id: string): Promise<CandidateView> => (await op().get(`/api/exams/${examId}/candidates/${id}`)).body;
  const audit = async (): Promise<{ records: AuditRecord[]; chain: { ok: boolean; problem?: string; anchor?: { text: string } } }> => (await op().get('/api/audit?limit=5000')).body;
  const freeSpace = () => {
    for (const file of ['filler', 'nearly']) rmSync(join(mount, file), { force: true });
  };

  beforeAll(async () => {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK},mode=0700`, 'tmpfs', mount]);
    mounted = true;
    d = await startTestDaemon(SETTINGS, { dataDir, log });
  }, 180_000);

  afterAll(async () => {
    try {
      freeSpace();
      if (d && !stopped) await d.close();
      else await destroyAllLabs(dataDir);
    } finally {
      if (mounted) {
        try {
          execFileSync('umount', [mount]);
        } catch {
          execFileSync('umount', ['-l', mount]);
        }
      }
      rmdirSync(mount);
    }
  }, 180_000);

  test('with room: a prepared exam of two starts, alice repairs her lab, bob works in an open session', async () => {
    const created = await op()
      .post('/api/exams')
      .send({ scenarioYaml: SMALL_SCENARIO, candidates: [{ id: 'alice', name: 'Alice' }, { id: 'bob', name: 'Bob' }], start: 'manual', prepare: true, duration: `${DURATION_S}s` });
    expect(created.status).toBe(201);
    examId = created.body.exam.id;
    for (const c of created.body.candidates) tokens[c.id] = c.token;
    await waitFor('both labs ready', async () => (await op().get(`/api/exams/${examId}`)).body, (e) => e.progress.byPhase.ready === 2, 180_000);
    const started = await op().post(`/api/exams/${examId}/start`);
    expect(started.status).toBe(202);
    deadline = started.body.candidates[0].deadline;
    expect(started.body.candidates.map((c: CandidateView) => c.deadline)).toEqual([deadline, deadline]);

    const sudo = (await api(d!.url, tokens.alice).get('/api/me')).body.access.sudoPassword as string;
    const fixed = await sshExec(d!.sshPort, 'alice', tokens.alice as string, `echo '${sudo}' | sudo -S -p '' sh -c 'echo ok > /etc/etat'`);
    expect(fixed.code).toBe(0);
    bob = await openStream(d!.sshPort, 'bob', tokens.bob as string, 'i=0; while true; do i=$((i+1)); echo "tick $i"; sleep 1; done');
    await waitFor("bob's session running", async () => bob.stdout, (out) => /tick 2\n/.test(out), 30_000);
    expect(await waitFor('readiness with room', async () => (await api(d!.url).get('/readyz')).status, (s) => s === 200, 10_000)).toBe(200);
    // The scene is set with time to spare: the deadline must pass while the disk is full.
    expect(Date.parse(deadline) - Date.now()).toBeGreaterThan(30_000);
  }, 300_000);

  test('the disk fills: every change is refused with 507 naming the directory and its free space; reads answer; /readyz fails and says why', async () => {
    const before = await audit();
    fill(mount);
    expect(freeBytes(mount)).toBeLessThan(64 * 1024);
    const full = fullMessage(dataDir);

    const extend = await op().post(`/api/exams/${examId}/candidates/alice/extend`).send({ duration: '10m' });
    expect(extend.status).toBe(507);
    expect(extend.body).toMatchObject({ error: 'insufficient_storage', message: expect.stringMatching(full) });
    const end = await op().post(`/api/exams/${examId}/candidates/bob/end`);
    expect(end.status).toBe(507);
    const another = await op().post('/api/exams').send({ scenarioYaml: SMALL_SCENARIO, candidates: [{ id: 'carol', name: 'Carol' }] });
    expect(another.status).toBe(507);
    expect(another.body.message).toMatch(full);
    const token = await op().post('/api/tokens').send({ name: 'late', role: 'jury' });
    expect(token.status).toBe(507);

    // Reads still answer, and nothing changed.
    const exams = (await op().get('/api/exams')).body.exams as { id: string }[];
    expect(exams.map((e) => e.id)).toEqual([examId]);
    expect(readdirSync(join(dataDir, 'scenarios')).filter((f) => f.includes('.tmp'))).toEqual([]);
    const both = [await candidate('alice'), await candidate('bob')];
    expect(both.map((c) => [c.phase, c.deadline, c.extensionMs])).toEqual([
      ['active', deadline, 0],
      ['active', deadline, 0],
    ]);
    const now = await audit();
    expect(now.chain).toMatchObject({ ok: true });
    expect(now.records.length).toBe(before.records.length);

    const ready = await api(d!.url).get('/readyz');
    expect(ready.status).toBe(503);
    expect(ready.body.ready).toBe(false);
    expect(ready.body.checks.store).toEqual({ ok: false, detail: expect.stringMatching(full) });
    expect(ready.body.checks.disk).toEqual({ ok: false, detail: expect.stringMatching(new RegExp(` free of 4\\d\\.\\d MiB on ${literally(dataDir)}; below the reserve of 4\\.0 MiB`)) });
    expect((await api(d!.url).get('/healthz')).status).toBe(200);

    // A new session cannot be recorded: refused, in words the candidate understands; bob's open one goes on.
    const refused = await sshExec(d!.sshPort, 'alice', tokens.alice as string, 'true');
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/your session cannot be recorded right now \(the exam server has no disk space left\)/);
    const seen = bob.stdout.length;
    await waitFor("bob's session going on", async () => bob.stdout.slice(seen), (out) => (out.match(/tick \d+\n/g) ?? []).length >= 2, 15_000);
    expect(bob.closedAt).toBeUndefined();

    const errors = logLines.filter((l) => l.level >= 50);
    expect(errors.map((l) => l.msg)).toContain('the store refuses writes: state changes wait (refused over the API with 507). Deadlines still cut access; ends, gradings and the rest are written once it takes writes again, by itself');
    expect(errors.find((l) => l.msg.startsWith('the store refuses writes'))?.err).toMatch(full);
  }, 60_000);

  test("the deadline passes while the disk is full: access is cut at the deadline, though the end cannot be recorded yet", async () => {
    await waitFor("bob's session cut at his deadline", async () => bob.closedAt, (at) => at !== undefined, DURATION_S * 1000 + 30_000);
    const late = (bob.closedAt as number) - Date.parse(deadline);
    expect(late).toBeGreaterThanOrEqual(0);
    expect(late).toBeLessThan(10_000);
    expect(bob.stderr).toMatch(/time is up: your exam is over/);
    await expect(sshExec(d!.sshPort, 'alice', tokens.alice as string, 'true')).rejects.toThrow(/authentication/i);
    expect((await api(d!.url, tokens.alice).get('/api/me')).body.message).toBe('time is up: your exam is over');
    // Nothing could be written: still active in the store, with the same deadline.
    expect((await candidate('alice')).phase).toBe('active');
    expect((await api(d!.url).get('/readyz')).status).toBe(503);
  }, DURATION_S * 1000 + 60_000);

  test('space is freed: without a restart both are ended and graded, the exam ends, /readyz is ready, and no time was lost or given', async () => {
    const freedAt = Date.now();
    freeSpace();
    const ended = await waitFor('the exam ended after the space came back', async () => (await op().get(`/api/exams/${examId}`)).body, (e) => e.status === 'ended', 180_000);
    process.stdout.write(`disk full: exam ended and graded ${(Date.now() - freedAt) / 1000} s after the space came back\n`);
    expect(ended.progress.byPhase.ended).toBe(2);
    expect((await api(d!.url).get('/readyz')).status).toBe(200);

    const results = (await api(d!.url, JURY).get(`/api/exams/${examId}/results`)).body.candidates as { candidate: { id: string }; auto: { points: number }; pending: string[] }[];
    // Every check decided; only the jury's manual criterion is left to mark.
    expect(results.map((r) => [r.candidate.id, r.auto.points, r.pending])).toEqual([
      ['alice', 2, ['manual criteria not marked yet: compte-rendu']],
      ['bob', 0, ['manual criteria not marked yet: compte-rendu']],
    ]);
    for (const id of ['alice', 'bob']) {
      const c = await candidate(id);
      expect([c.phase, c.deadline, c.extensionMs]).toEqual(['ended', deadline, 0]);
      expect(c.runs.filter((r) => r.purpose === 'final' && r.status === 'running')).toEqual([]);
      expect(c.runs.find((r) => r.id === c.finalRunId)?.status).toBe('done');
    }

    const { records, chain } = await audit();
    expect(chain).toMatchObject({ ok: true, anchor: { text: expect.stringMatching(/^\d+:[0-9a-f]{16}$/) } });
    // Each end carries the deadline and when access was really cut: at the deadline, not when the end could be written.
    const ends = records.filter((r) => r.action === 'candidate.end').sort((a, b) => String(a.candidateId).localeCompare(String(b.candidateId)));
    expect(ends.map((r) => [r.candidateId, r.detail.reason, r.detail.deadline])).toEqual([
      ['alice', 'deadline reached', deadline],
      ['bob', 'deadline reached', deadline],
    ]);
    for (const r of ends) {
      const cut = Date.parse(r.detail.accessCutAt as string) - Date.parse(deadline);
      expect(cut).toBeGreaterThanOrEqual(0);
      expect(cut).toBeLessThan(10_000);
      expect(Date.parse(r.at)).toBeGreaterThanOrEqual(freedAt - 1000);
    }
    // No time given back: the labs ran all along; the period is on the record, with the session refused.
    expect(records.filter((r) => r.action === 'daemon.outage' || r.action === 'candidate.extend')).toEqual([]);
    const period = records.filter((r) => r.action === 'daemon.store.refused');
    expect(period).toHaveLength(1);
    expect(period[0]?.detail).toMatchObject({ sessionsRefused: [{ examId, candidateId: 'alice', refused: 1 }], problem: expect.stringMatching(/is full/) });
    expect(Number(period[0]?.detail.seconds)).toBeGreaterThan(10);
    // Bob's session closed during the outage: recorded late, with when it happened.
    const closes = records.filter((r) => r.action === 'lab.session.close' && r.candidateId === 'bob');
    expect(closes.at(-1)?.detail).toMatchObject({ happenedAt: expect.any(String), recordedLate: expect.stringMatching(/is full/) });

    // Bob's recording holds every tick he saw, the ones while the disk was full included; alice's refused session left nothing.
    const jury = api(d!.url, JURY);
    // Its last lines and its end are written by the recording's own retry (every 2 s), not by the store's recovery.
    const bobs = await waitFor(
      "bob's recording written to its end",
      async () => (await jury.get(`/api/exams/${examId}/candidates/bob/recordings`)).body.recordings as { id: string; live: boolean; endedAt?: string }[],
      (list) => list.every((r) => r.endedAt !== undefined),
      15_000,
    );
    expect(bobs).toHaveLength(1);
    expect(bobs[0]).toMatchObject({ live: false, endedAt: expect.any(String) });
    const cast = (await jury.get(`/api/exams/${examId}/candidates/bob/recordings/${bobs[0]?.id}.cast`)).text;
    const recorded = cast
      .split('\n')
      .filter(Boolean)
      .slice(1)
      .map((l) => JSON.parse(l) as [number, string, string])
      .filter((e) => e[1] === 'o')
      .map((e) => e[2])
      .join('');
    const ticks = (text: string) => [...text.matchAll(/tick (\d+)\n/g)].map((m) => Number(m[1]));
    const seen = ticks(bob.stdout);
    expect(seen.length).toBeGreaterThan(10);
    expect(ticks(recorded)).toEqual(Array.from({ length: ticks(recorded).length }, (_, i) => i + 1));
    expect(ticks(recorded).length).toBeGreaterThanOrEqual(seen.at(-1) as number);
    expect(((await jury.get(`/api/exams/${examId}/candidates/alice/recordings`)).body.recordings as unknown[]).length).toBe(1);

    // The store is whole.
    const db = new Database(join(dataDir, 'examlab.db'), { readonly: true });
    try {
      expect(db.pragma('integrity_check', { simple: true })).toBe('ok');
    } finally {
      db.close();
    }
    expect(logLines.map((l) => l.msg)).toContain('the store takes writes again: what it refused is being written');
  }, 240_000);

  test('nearly full, under the store\'s floor: changes refused, the heartbeat kept; a daemon stopped then started with room counts only the time it was away', async () => {
    const { examId: practice } = await startedExam(d!.url, { scenarioYaml: SMALL_SCENARIO, candidates: [{ id: 'carol', name: 'Carol' }] });
    const before = (await op().get(`/api/exams/${practice}/candidates/carol`)).body as CandidateView;
    // Under the floor (8 MiB), with room for SQLite's journal (the heartbeat's) to grow.
    fill(mount, 6 * 1024 ** 2);
    expect(freeBytes(mount)).toBeGreaterThan(5 * 1024 ** 2);
    expect(freeBytes(mount)).toBeLessThan(8 * 1024 ** 2);
    const refused = await op().post(`/api/exams/${practice}/candidates/carol/extend`).send({ duration: '5m' });
    expect(refused.status).toBe(507);
    expect(refused.body.message).toMatch(fullMessage(dataDir, '\\d\\.\\d MiB'));
    expect(refused.body.message).toContain('; the store keeps 8.0 MiB)');

    // Longer than a restart's grace (5 s): had the heartbeat stopped with the other writes, this would read as an outage.
    await new Promise((resolve) => setTimeout(resolve, 8000));
    const store = new Database(join(dataDir, 'examlab.db'), { readonly: true });
    try {
      const beat = (store.prepare(`SELECT value FROM daemon_state WHERE key = 'heartbeat'`).get() as { value: string }).value;
      expect(Date.now() - Date.parse(beat)).toBeLessThan(3000);
    } finally {
      store.close();
    }
    const stopping = Date.now();
    await d!.daemon.stop();
    stopped = true;
    freeSpace();
    d = await startTestDaemon(SETTINGS, { dataDir, log });
    stopped = false;
    const away = Date.now() - stopping;
    // Only the time it was really away may be given back (none, within the 5 s grace), never the 8 s and more before.
    const given = d.started.recovery.outageSeconds * 1000;
    expect(given).toBeLessThanOrEqual(away + 1000);
    expect(d.started.recovery.adopted).toBe(1);
    const after = (await op().get(`/api/exams/${practice}/candidates/carol`)).body as CandidateView;
    expect(after.phase).toBe('active');
    expect(after.extensionMs).toBeLessThanOrEqual(away);
    expect(Date.parse(after.deadline) - Date.parse(before.deadline)).toBe(after.extensionMs);
    expect((await api(d.url).get('/readyz')).status).toBe(200);
  }, 240_000);

  test('a daemon started on a data directory already full stops with a clear message, not a stack trace', async () => {
    await d!.daemon.stop();
    stopped = true;
    fill(mount);
    const configFile = join(tmpdir(), `examlab-disk-full-${process.pid}.json`);
    writeFileSync(configFile, JSON.stringify({ ...TEST_CONFIG, ...SETTINGS }));
    try {
      const again = new DaemonProcess(dataDir, configFile);
      const failure = await again.start().then(
        () => undefined,
        (err: Error) => err.message,
      );
      if (failure === undefined) await again.kill('SIGTERM');
      expect(failure).toMatch(/^the daemon exited \(2\): /);
      // What examlab prints, after the pino lines if any: `error: <message>`, its details, the hint.
      expect(failure).toMatch(/(^|\n|\): )error: the data directory's filesystem is full/);
      const said = /(?:^|\n|\): )error: ([^\n]*)/.exec(failure as string)?.[1];
      expect(said).toMatch(fullMessage(dataDir));
      expect(failure).not.toMatch(/\n\s+at /);
    } finally {
      rmSync(configFile, { force: true });
      freeSpace();
    }
  }, 60_000);
});
