import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import type { App } from './app.js';
import { AuditLog, SYSTEM } from '../audit/index.js';
import { Authenticator } from '../access/index.js';
import { TokenStore } from '../access/index.js';
import { PACKAGE_ROOT } from './config.js';
import { EnvironmentError, errorMessage } from '../util/errors.js';
import { ExamService } from '../exams/index.js';
import { LabPipeline } from '../exams/index.js';
import { reconcile, HEARTBEAT_KEY, type ReconcileReport } from '../exams/index.js';
import { Scheduler } from '../exams/index.js';
import type { AccessInfo } from '../exams/index.js';
import { gatewayHostKey, hostKeyFingerprint, SshGateway } from '../gateway/index.js';
import { SessionRegistry } from '../access/index.js';
import { createHttpApp } from '../http/index.js';
import { createMetrics } from '../http/index.js';
import type { Readiness } from '../http/index.js';
import { ExamStore } from '../exams/index.js';
import { systemClock, withTimeout, type Clock } from '../util/retry.js';
import { defaultPublicHost, type DaemonConfig } from './settings.js';
import { hashStaffToken } from '../access/index.js';

export interface StartedDaemon {
  httpUrl: string;
  http: AddressInfo;
  ssh: AddressInfo;
  sshHost: string;
  hostKeyFingerprint: string;
  /** Tokens made at this start (first start, or none configured): shown once, never stored in clear. */
  newTokens: { name: string; role: string; token: string }[];
  recovery: ReconcileReport;
}

/** What the daemon writes in its data directory while it runs (for tools and tests). */
export const DAEMON_FILE = 'daemon.json';

export const VERSION = (JSON.parse(readFileSync(join(PACKAGE_ROOT, 'package.json'), 'utf8')) as { version: string }).version;

/**
 * The exam daemon, composed: stores, audit log, exam service and its lab
 * pipeline, scheduler, SSH gateway and HTTP API, over an App (engines,
 * labs). `start` reconciles with the engines before serving anything.
 */
export class Daemon {
  readonly exams: ExamStore;
  readonly tokens: TokenStore;
  readonly audit: AuditLog;
  readonly sessions = new SessionRegistry();
  readonly service: ExamService;
  readonly auth: Authenticator;
  private readonly pipeline: LabPipeline;
  private readonly scheduler: Scheduler;
  private readonly gateway: SshGateway;
  private readonly hostKey: string;
  private readonly httpServer: Server;
  private sshHost = '127.0.0.1';
  private sshPort = 0;
  private stopped = false;
  private serving = false;

  constructor(
    readonly app: App,
    private readonly config: DaemonConfig,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    const db = app.db;
    this.exams = new ExamStore(db);
    this.tokens = new TokenStore(db);
    this.audit = new AuditLog(db);
    const metrics = createMetrics(db, this.sessions);
    this.pipeline = new LabPipeline({
      exams: this.exams,
      labStore: app.store,
      labs: app.labs,
      audit: this.audit,
      sessions: this.sessions,
      metrics,
      log: log.child({ component: 'pipeline' }),
      clock,
      settings: {
        provisionConcurrency: config.provisioning.concurrency,
        gradingConcurrency: config.grading.concurrency,
        attempts: config.provisioning.attempts,
        retryDelayMs: config.provisioning.retryDelay,
      },
      scenarioOf: (exam) => this.service.scenarioOf(exam),
    });
    this.service = new ExamService({
      exams: this.exams,
      labStore: app.store,
      labs: app.labs,
      audit: this.audit,
      sessions: this.sessions,
      pipeline: this.pipeline,
      clock,
      log: log.child({ component: 'exams' }),
      scenariosDir: app.config.scenariosDir,
      uploadsDir: join(app.config.dataDir, 'scenarios'),
      loadScenario: (file) => app.loadScenario(file),
    });
    this.auth = new Authenticator(this.tokens, this.exams);
    this.scheduler = new Scheduler({ service: this.service, exams: this.exams, clock, log: log.child({ component: 'scheduler' }), tickMs: config.tick });
    this.hostKey = gatewayHostKey(join(app.config.dataDir, 'gateway_host_key'));
    this.gateway = new SshGateway({ auth: this.auth, exams: this.service, sessions: this.sessions, audit: this.audit, metrics, log: log.child({ component: 'gateway' }), hostKey: this.hostKey });
    const access: AccessInfo = {
      sshCommand: (candidateId, machine) => `ssh ${this.sshPort === 22 ? '' : `-p ${this.sshPort} `}${candidateId}${machine ? `+${machine}` : ''}@${this.sshHost}`,
    };
    const http = createHttpApp({
      service: this.service,
      exams: this.exams,
      labStore: app.store,
      labs: app.labs,
      audit: this.audit,
      tokens: this.tokens,
      auth: this.auth,
      access,
      metrics,
      clock,
      log: log.child({ component: 'http' }),
      version: VERSION,
      readiness: () => this.readiness(),
      publicDir: join(PACKAGE_ROOT, 'public'),
    });
    this.httpServer = createServer(http);
  }

  async start(): Promise<StartedDaemon> {
    this.refuseSecondDaemon();
    const newTokens = this.setUpTokens();
    await (await this.app.providers.get('docker')).ping();
    const recovery = await reconcile({
      exams: this.exams,
      labStore: this.app.store,
      labs: this.app.labs,
      audit: this.audit,
      pipeline: this.pipeline,
      providers: this.app.providers,
      clock: this.clock,
      log: this.log.child({ component: 'reconciler' }),
      heartbeatGraceMs: Math.max(5_000, this.config.tick * 5),
    });
    const http = await new Promise<AddressInfo>((resolve, reject) => {
      this.httpServer.once('error', reject);
      this.httpServer.listen(this.config.http.port, this.config.http.host, () => resolve(this.httpServer.address() as AddressInfo));
    });
    const ssh = await this.gateway.listen(this.config.ssh.port, this.config.ssh.host);
    this.sshPort = ssh.port;
    this.sshHost = this.config.ssh.publicHost ?? (['0.0.0.0', '::'].includes(this.config.ssh.host) ? defaultPublicHost() : this.config.ssh.host);
    this.scheduler.start();
    this.serving = true;
    const httpHost = ['0.0.0.0', '::'].includes(this.config.http.host) ? this.sshHost : this.config.http.host;
    const started: StartedDaemon = {
      httpUrl: `http://${httpHost}:${http.port}`,
      http,
      ssh,
      sshHost: this.sshHost,
      hostKeyFingerprint: hostKeyFingerprint(this.hostKey),
      newTokens,
      recovery,
    };
    writeFileSync(join(this.app.config.dataDir, DAEMON_FILE), `${JSON.stringify({ pid: process.pid, http: started.httpUrl, ssh: { host: this.sshHost, port: ssh.port }, startedAt: new Date(this.clock.now()).toISOString() }, null, 2)}\n`, { mode: 0o600 });
    this.log.info({ http: started.httpUrl, ssh: ssh.port }, 'daemon ready');
    return started;
  }

  /** Graceful stop: no new work, sessions closed, running work given `shutdownGrace` to finish; labs keep running. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.scheduler.stop();
    const httpClosed = new Promise<void>((resolve) => this.httpServer.close(() => resolve()));
    this.httpServer.closeIdleConnections();
    await this.gateway.close();
    const finished = await this.pipeline.drain(this.config.shutdownGrace);
    if (!finished) this.log.warn({ tasks: this.pipeline.busy }, 'work still running at shutdown; it is redone at the next start');
    this.httpServer.closeAllConnections();
    await httpClosed;
    if (this.serving) {
      this.exams.setState(HEARTBEAT_KEY, new Date(this.clock.now()).toISOString());
      this.audit.append({ actor: SYSTEM, action: 'daemon.stop', detail: { finished } });
      rmSync(join(this.app.config.dataDir, DAEMON_FILE), { force: true });
    }
    this.app.close();
    if (this.serving) this.log.info('daemon stopped; labs keep running');
  }

  /** Two daemons on one store would both drive the same labs. A stale file (after a kill) names a dead process. */
  private refuseSecondDaemon(): void {
    const file = join(this.app.config.dataDir, DAEMON_FILE);
    if (!existsSync(file)) return;
    let pid: number | undefined;
    try {
      pid = (JSON.parse(readFileSync(file, 'utf8')) as { pid?: number }).pid;
    } catch {
      return;
    }
    if (!pid || pid === process.pid) return;
    try {
      process.kill(pid, 0);
    } catch {
      return; // not running any more
    }
    throw new EnvironmentError(`another examlab daemon (pid ${pid}) is serving ${this.app.config.dataDir}; stop it first or use another --data directory`);
  }

  private setUpTokens(): { name: string; role: string; token: string }[] {
    for (const t of this.config.tokens) this.tokens.add(t.name, t.role, t.sha256 ?? hashStaffToken(t.token as string), 'config');
    if (this.tokens.count('operator') > 0) return [];
    const made = (['operator', 'jury'] as const).map((role) => ({ role, ...this.tokens.issue(role, role, 'bootstrap') }));
    this.audit.append({ actor: SYSTEM, action: 'token.bootstrap', detail: { tokens: made.map((m) => ({ id: m.record.id, role: m.role })) } });
    return made.map((m) => ({ name: m.record.name, role: m.role, token: m.token }));
  }

  async readiness(): Promise<Readiness> {
    const checks: Readiness['checks'] = {};
    try {
      checks.engine = { ok: true, detail: await withTimeout((await this.app.providers.get('docker')).ping(), 3000, 'the Docker engine') };
    } catch (err) {
      checks.engine = { ok: false, detail: errorMessage(err) };
    }
    try {
      this.exams.setState('ready-probe', new Date(this.clock.now()).toISOString());
      checks.store = { ok: true, detail: 'writable' };
    } catch (err) {
      checks.store = { ok: false, detail: errorMessage(err) };
    }
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  }
}
