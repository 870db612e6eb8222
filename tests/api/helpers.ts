import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Dockerode from 'dockerode';
import ssh2 from 'ssh2';
import request from 'supertest';
import { createApp } from '../../src/daemon/app.js';
import { PACKAGE_ROOT, loadConfig } from '../../src/daemon/config.js';
import { Daemon, DAEMON_FILE, type StartedDaemon } from '../../src/daemon/daemon.js';
import { daemonConfigSchema, labHostsOf } from '../../src/daemon/settings.js';
import { createLogger, type Logger } from '../../src/util/log.js';
import { retryUntil } from '../../src/util/retry.js';

export const OPERATOR = 'test-operator-token-0123456789';
export const JURY = 'test-jury-token-0123456789ab';

/** Settings for test daemons: loopback only, ports chosen by the system, a fast clock. */
export const TEST_CONFIG = {
  http: { host: '127.0.0.1', port: 0 },
  ssh: { host: '127.0.0.1', port: 0 },
  tokens: [
    { name: 'tester', role: 'operator', token: OPERATOR },
    { name: 'juror', role: 'jury', token: JURY },
  ],
  tick: '250ms',
  provisioning: { concurrency: 3, attempts: 2, retryDelay: '1s' },
  shutdownGrace: '10s',
};

export interface TestDaemon {
  daemon: Daemon;
  started: StartedDaemon;
  url: string;
  sshPort: number;
  dataDir: string;
  /** Stops the daemon, destroys every lab it made and removes its data. */
  close(): Promise<void>;
}

/**
 * The daemon exactly as `examlab serve` composes it, in this process, on
 * the real Docker engine, with a private data directory (or the one
 * given) and a silent log (or the one given). If the engine does not
 * answer, start() throws and the test fails.
 */
export async function startTestDaemon(settings: Record<string, unknown> = {}, options: { dataDir?: string; log?: Logger } = {}): Promise<TestDaemon> {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'examlab-api-'));
  const log = options.log ?? createLogger({ level: process.env.EXAMLAB_TEST_LOG ?? 'silent' });
  const config = daemonConfigSchema.parse({ ...TEST_CONFIG, ...settings });
  const app = createApp(loadConfig({ dataDir, labHosts: labHostsOf(config) }), log);
  const daemon = new Daemon(app, config, log);
  const started = await daemon.start();
  return {
    daemon,
    started,
    url: `http://127.0.0.1:${started.http.port}`,
    sshPort: started.ssh.port,
    dataDir,
    async close() {
      await daemon.stop();
      await destroyAllLabs(dataDir, labHostsOf(config));
    },
  };
}

/** Removes every lab recorded in a data directory, then the directory. */
export async function destroyAllLabs(dataDir: string, labHosts: ReturnType<typeof labHostsOf> = []): Promise<void> {
  const app = createApp(loadConfig({ dataDir, labHosts }), createLogger({ level: 'silent' }));
  try {
    for (const lab of app.stores.labs.list()) await app.labs.destroy(lab.id);
  } finally {
    app.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** A candidate as `GET /api/exams/{id}/candidates/{id}` shows them, the fields tests read. */
export interface CandidateView {
  id: string;
  phase: string;
  deadline: string;
  extensionMs: number;
  finalRunId?: string;
  lab: { id: string; state: string };
  runs: { id: string; purpose: string; status: string }[];
}

/** Authenticated requests against a daemon. */
export function api(url: string, token?: string) {
  const auth = <T extends { set(name: string, value: string): T }>(r: T) => (token ? r.set('Authorization', `Bearer ${token}`) : r);
  return {
    get: (path: string) => auth(request(url).get(path)),
    post: (path: string) => auth(request(url).post(path)),
    put: (path: string) => auth(request(url).put(path)),
    delete: (path: string) => auth(request(url).delete(path)),
  };
}

export async function waitFor<T>(what: string, probe: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 180_000): Promise<T> {
  return retryUntil(probe, done, { what, timeoutMs, intervalMs: 500 });
}

/**
 * An exam created to start now (practice unless said otherwise), waited for
 * until every candidate's lab is offered: its id and each candidate's token.
 */
export async function startedExam(
  url: string,
  exam: { scenario?: string; scenarioYaml?: string; candidates: { id: string; name: string }[]; mode?: 'practice' | 'exam'; end?: { keepLabs?: boolean } },
  timeoutMs = 150_000,
): Promise<{ examId: string; tokens: Record<string, string> }> {
  const op = api(url, OPERATOR);
  const created = await op.post('/api/exams').send({ mode: 'practice', ...exam, start: 'now' });
  if (created.status !== 201) throw new Error(`the exam was not created (${created.status}): ${JSON.stringify(created.body)}`);
  const examId = created.body.exam.id as string;
  const tokens = Object.fromEntries((created.body.candidates as { id: string; token: string }[]).map((c) => [c.id, c.token]));
  await waitFor(`the labs of exam ${examId} offered`, async () => (await op.get(`/api/exams/${examId}`)).body, (e) => e.progress.byPhase.active === exam.candidates.length, timeoutMs);
  return { examId, tokens };
}

export interface ExecResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command through the daemon's SSH gateway as a candidate; rejects when the login is refused. */
export function sshExec(port: number, user: string, token: string, command: string, timeoutMs = 30_000): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const client = new ssh2.Client();
    const timer = setTimeout(() => {
      client.end();
      reject(new Error(`ssh ${user}: no answer within ${timeoutMs} ms`));
    }, timeoutMs);
    client.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    client.on('ready', () =>
      client.exec(command, (err, channel) => {
        if (err) {
          clearTimeout(timer);
          client.end();
          return reject(err);
        }
        let stdout = '';
        let stderr = '';
        let code: number | null = null;
        channel.on('data', (d: Buffer) => (stdout += d.toString()));
        channel.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
        channel.on('exit', (c: number | null) => (code = c));
        channel.on('close', () => {
          clearTimeout(timer);
          client.end();
          resolve({ code, stdout, stderr });
        });
      }),
    );
    client.connect({ host: '127.0.0.1', port, username: user, password: token, readyTimeout: 15_000 });
  });
}

/** Containers and networks on the engine that carry an exam's label. */
export async function examObjects(examId: string): Promise<{ containers: { id: string; lab: string; state: string }[]; networks: { id: string; lab: string }[] }> {
  const docker = new Dockerode();
  const filters = { label: [`examlab.exam=${examId}`] };
  const [containers, networks] = await Promise.all([docker.listContainers({ all: true, filters }), docker.listNetworks({ filters })]);
  return {
    containers: containers.map((c) => ({ id: c.Id, lab: c.Labels['examlab.lab'] as string, state: c.State })),
    networks: networks.map((n) => ({ id: n.Id, lab: n.Labels?.['examlab.lab'] as string })),
  };
}

/** A daemon in its own process (`examlab serve`), so that it can really be killed. Needs `make build`. */
export class DaemonProcess {
  proc?: ChildProcess;
  url = '';
  sshPort = 0;
  private stderr = '';

  constructor(
    readonly dataDir: string,
    readonly configFile: string,
  ) {}

  static create(): DaemonProcess {
    const dataDir = mkdtempSync(join(tmpdir(), 'examlab-daemon-'));
    const configFile = join(dataDir, 'daemon.yaml');
    writeFileSync(configFile, JSON.stringify(TEST_CONFIG));
    return new DaemonProcess(dataDir, configFile);
  }

  async start(): Promise<void> {
    const bin = join(PACKAGE_ROOT, 'dist/cli/bin.js');
    if (!existsSync(bin)) throw new Error(`${bin} is missing: run make build first`);
    const proc = spawn(process.execPath, [bin, '--data', this.dataDir, 'serve', '--config', this.configFile], {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, EXAMLAB_LOG_LEVEL: 'warn' },
    });
    this.proc = proc;
    this.stderr = '';
    proc.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    const file = join(this.dataDir, DAEMON_FILE);
    // 'close', not 'exit': the process's last words on stderr may come after it has exited.
    const exited = new Promise<never>((_, reject) => proc.once('close', (code) => reject(new Error(`the daemon exited (${code}): ${this.stderr}`))));
    exited.catch(() => undefined);
    const info = await Promise.race([
      // Undefined once the process has ended (its file may never come): no polling left behind.
      retryUntil(
        async () => (proc.exitCode !== null || proc.signalCode !== null ? undefined : (JSON.parse(readFileSync(file, 'utf8')) as { pid: number; http: string; ssh: { port: number } })),
        (i) => i === undefined || i.pid === proc.pid,
        { what: 'the daemon to start', timeoutMs: 60_000, intervalMs: 100 },
      ),
      exited,
    ]);
    if (!info) return exited;
    this.url = info.http;
    this.sshPort = info.ssh.port;
  }

  /** Sends a signal and waits for the process to end; returns its exit code (null when killed). */
  async kill(signal: NodeJS.Signals): Promise<number | null> {
    const proc = this.proc as ChildProcess;
    if (proc.exitCode !== null || proc.signalCode !== null) return proc.exitCode;
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    proc.kill(signal);
    return exited;
  }

  get log(): string {
    return this.stderr;
  }
}
