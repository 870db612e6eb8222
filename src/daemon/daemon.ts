import { existsSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import type { Logger } from 'pino';
import { hashStaffToken, type TokenStore } from '../access/index.js';
import { SYSTEM, type AuditLog, type ChainCheck } from '../audit/index.js';
import { HEARTBEAT_KEY, reconcile, type ExamService, type ExamStore, type ReconcileReport } from '../exams/index.js';
import { gatewayHostKey, hostKeyFingerprint } from '../gateway/index.js';
import { DaemonSockets, type Readiness } from '../http/index.js';
import { EnvironmentError, errorMessage } from '../util/errors.js';
import { systemClock, withTimeout, type Clock } from '../util/retry.js';
import { writeFileWhole } from '../util/storage.js';
import type { App } from './app.js';
import { composeDaemon, type DaemonParts } from './compose.js';
import { checkDataDisk, type DiskCheck } from './data-disk.js';
import { PACKAGE_ROOT } from './config.js';
import { defaultPublicHost, type DaemonConfig } from './settings.js';

export interface StartedDaemon {
  httpUrl: string;
  http: AddressInfo;
  ssh: AddressInfo;
  sshHost: string;
  hostKeyFingerprint: string;
  /** Tokens made at this start (first start, or none configured): shown once, never stored in clear. */
  newTokens: { name: string; role: string; token: string }[];
  recovery: ReconcileReport;
  /** The audit chain checked against its anchor at this start. */
  audit: ChainCheck;
}

/** How often the data directory's free space is looked at. */
const DISK_CHECK_MS = 60_000;

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
  readonly service: ExamService;
  private readonly parts: DaemonParts;
  private readonly hostKey: string;
  private readonly httpServer: Server;
  private readonly sockets: DaemonSockets;
  private sshHost = '127.0.0.1';
  private sshPort = 0;
  private stopped = false;
  private serving = false;
  private diskState?: 'fine' | 'low' | 'short';
  private diskTimer?: NodeJS.Timeout;

  constructor(
    readonly app: App,
    private readonly config: DaemonConfig,
    private readonly log: Logger,
    private readonly clock: Clock = systemClock,
  ) {
    ({ exams: this.exams, tokens: this.tokens, audit: this.audit } = app.stores);
    this.hostKey = gatewayHostKey(join(app.config.dataDir, 'gateway_host_key'));
    this.parts = composeDaemon(app, {
      config,
      log,
      clock,
      version: VERSION,
      hostKey: this.hostKey,
      access: {
        sshCommand: (candidateId, machine) => `ssh ${this.sshPort === 22 ? '' : `-p ${this.sshPort} `}${candidateId}${machine ? `+${machine}` : ''}@${this.sshHost}`,
      },
      readiness: () => this.readiness(),
    });
    this.service = this.parts.service;
    this.httpServer = createServer(this.parts.http);
    // The browser's terminals and the jury's live watch, on the same port.
    this.sockets = new DaemonSockets({ auth: this.parts.auth, shells: this.parts.shells, recordings: this.parts.recordings, log: log.child({ component: 'sockets' }) });
    this.sockets.attach(this.httpServer);
  }

  async start(): Promise<StartedDaemon> {
    this.refuseSecondDaemon();
    // The chain is checked against its anchor at every start; a broken chain is reported, not fatal: the exam goes on.
    const chain = this.audit.resume();
    if (chain.ok) this.log.info({ records: chain.checked, anchor: chain.anchor?.text }, 'audit chain verified against its anchor');
    else this.log.error({ brokenAt: chain.brokenAt, missingAfter: chain.missingAfter, anchor: chain.anchor?.text }, `audit chain broken: ${chain.problem}`);
    const newTokens = this.setUpTokens();
    await (await this.app.providers.get(this.app.providers.networksOn)).ping();
    const recovery = await reconcile({
      exams: this.exams,
      labStore: this.app.stores.labs,
      labs: this.app.labs,
      audit: this.audit,
      pipeline: this.parts.pipeline,
      providers: this.app.providers,
      clock: this.clock,
      log: this.log.child({ component: 'reconciler' }),
      heartbeatGraceMs: Math.max(5_000, this.config.tick * 5),
    });
    const http = await new Promise<AddressInfo>((resolve, reject) => {
      this.httpServer.once('error', reject);
      this.httpServer.listen(this.config.http.port, this.config.http.host, () => resolve(this.httpServer.address() as AddressInfo));
    });
    const ssh = await this.parts.gateway.listen(this.config.ssh.port, this.config.ssh.host);
    this.sshPort = ssh.port;
    this.sshHost = this.config.ssh.publicHost ?? (['0.0.0.0', '::'].includes(this.config.ssh.host) ? defaultPublicHost() : this.config.ssh.host);
    this.parts.scheduler.start();
    this.parts.engineWatch.start();
    // Said before it runs out: at start, then every minute.
    await this.watchDisk();
    this.diskTimer = setInterval(() => void this.watchDisk(), DISK_CHECK_MS);
    this.diskTimer.unref();
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
      audit: chain,
    };
    writeFileWhole(join(this.app.config.dataDir, DAEMON_FILE), `${JSON.stringify({ pid: process.pid, http: started.httpUrl, ssh: { host: this.sshHost, port: ssh.port }, startedAt: new Date(this.clock.now()).toISOString() }, null, 2)}\n`);
    this.log.info({ http: started.httpUrl, ssh: ssh.port }, 'daemon ready');
    return started;
  }

  /** Graceful stop: no new work, sessions closed, running work given `shutdownGrace` to finish; labs keep running. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.parts.scheduler.stop();
    this.parts.engineWatch.stop();
    clearInterval(this.diskTimer);
    const httpClosed = new Promise<void>((resolve) => this.httpServer.close(() => resolve()));
    this.httpServer.closeIdleConnections();
    this.sockets.close();
    await this.parts.gateway.close();
    await this.parts.shells.closeAll(5_000);
    this.parts.recordings.endAll();
    const finished = await this.parts.pipeline.drain(this.config.shutdownGrace);
    if (!finished) this.log.warn({ tasks: this.parts.pipeline.busy }, 'work still running at shutdown; it is redone at the next start');
    this.httpServer.closeAllConnections();
    await httpClosed;
    if (this.serving) {
      try {
        this.exams.setState(HEARTBEAT_KEY, new Date(this.clock.now()).toISOString(), { evenWhenFull: true });
        this.audit.append({ actor: SYSTEM, action: 'daemon.stop', detail: { finished } });
      } catch (err) {
        // The store refusing (its disk full) does not keep the daemon from stopping: the next start finds the work where the store left it.
        this.log.error({ err: errorMessage(err) }, 'the stop could not be recorded');
      }
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
    for (const t of this.config.tokens) {
      const token = this.tokens.add(t.name, t.role, t.sha256 ?? hashStaffToken(t.token as string), 'config');
      if (token.revokedAt) this.log.warn({ token: token.id, name: token.name }, 'a token of the configuration was revoked through the API and stays revoked; give it a new value in the configuration to use it again');
    }
    if (this.tokens.count('operator') > 0) return [];
    const made = (['operator', 'jury'] as const).map((role) => ({ role, ...this.tokens.issue(role, role, 'bootstrap') }));
    this.audit.append({ actor: SYSTEM, action: 'token.bootstrap', detail: { tokens: made.map((m) => ({ id: m.record.id, role: m.role })) } });
    return made.map((m) => ({ name: m.record.name, role: m.role, token: m.token }));
  }

  async readiness(): Promise<Readiness> {
    const checks: Readiness['checks'] = {};
    try {
      const engine = this.app.providers.networksOn;
      checks.engine = { ok: true, detail: await withTimeout((await this.app.providers.get(engine)).ping(), 3000, `the ${engine} engine`) };
    } catch (err) {
      checks.engine = { ok: false, detail: errorMessage(err) };
    }
    try {
      this.exams.setState('ready-probe', new Date(this.clock.now()).toISOString());
      checks.store = { ok: true, detail: 'writable' };
    } catch (err) {
      checks.store = { ok: false, detail: errorMessage(err) };
    }
    const disk = await this.watchDisk();
    checks.disk = { ok: disk.ok, detail: disk.detail };
    // Every engine that holds live labs, not only the one that makes networks.
    const outages = this.parts.engineWatch.outages();
    checks.labEngines = outages.length
      ? { ok: false, detail: outages.map((o) => `the ${o.provider} engine has not answered since ${o.since} (${o.error})`).join('; ') }
      : { ok: true, detail: 'every engine holding a live lab answers' };
    return { ready: Object.values(checks).every((c) => c.ok), checks };
  }

  /** The data directory's free space; said in the log when it turns low or short, and when it is back. */
  private async watchDisk(): Promise<DiskCheck> {
    const disk = await checkDataDisk(this.app.config.dataDir, this.config.diskReserve);
    const state = !disk.ok ? 'short' : disk.low ? 'low' : 'fine';
    if (state !== this.diskState) {
      if (state === 'short') this.log.error({ disk: disk.detail }, 'the data directory is below its disk reserve');
      else if (state === 'low') this.log.warn({ disk: disk.detail }, 'the data directory is running low on disk');
      else if (this.diskState) this.log.info({ disk: disk.detail }, 'the data directory has room again');
      this.diskState = state;
    }
    return disk;
  }
}
