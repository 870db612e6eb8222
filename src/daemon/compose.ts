import { join } from 'node:path';
import type { Logger } from 'pino';
import { Authenticator, FailedTokens, SessionRegistry, StaffTokens } from '../access/index.js';
import { EngineWatch, ExamReader, ExamScenarios, ExamService, LabPipeline, Scheduler, type AccessInfo } from '../exams/index.js';
import { SshGateway } from '../gateway/index.js';
import { createHttpApp, createMetrics, type Readiness } from '../http/index.js';
import { ScenarioLibrary } from '../scenario/index.js';
import { LabShells, Recordings } from '../terminal/index.js';
import type { Clock } from '../util/retry.js';
import type { App } from './app.js';
import { PACKAGE_ROOT } from './config.js';
import type { DaemonConfig } from './settings.js';

/** The exam daemon's parts, made from an App: what `examlab serve` runs. */
export interface DaemonParts {
  sessions: SessionRegistry;
  pipeline: LabPipeline;
  service: ExamService;
  reader: ExamReader;
  auth: Authenticator;
  scheduler: Scheduler;
  engineWatch: EngineWatch;
  gateway: SshGateway;
  shells: LabShells;
  recordings: Recordings;
  http: ReturnType<typeof createHttpApp>;
}

export interface DaemonWiring {
  config: DaemonConfig;
  log: Logger;
  clock: Clock;
  version: string;
  /** The gateway's host key (OpenSSH private key). */
  hostKey: string;
  /** Where candidates reach the gateway: known once it listens. */
  access: AccessInfo;
  readiness(): Promise<Readiness>;
}

export function composeDaemon(app: App, wiring: DaemonWiring): DaemonParts {
  const { config, log, clock } = wiring;
  const { labs: labStore, exams, tokens, audit } = app.stores;
  const sessions = new SessionRegistry();
  const scenarios = new ExamScenarios();
  const metrics = createMetrics({
    labsByState: () => labStore.countByState(),
    candidatesByPhase: () => exams.countCandidatesByPhase(),
    gatewaySessions: () => sessions.total(),
  });
  const pipeline = new LabPipeline({
    exams,
    labStore,
    labs: app.labs,
    audit,
    sessions,
    metrics,
    scenarios,
    log: log.child({ component: 'pipeline' }),
    clock,
    settings: {
      provisionConcurrency: config.provisioning.concurrency,
      gradingConcurrency: config.grading.concurrency,
      attempts: config.provisioning.attempts,
      retryDelayMs: config.provisioning.retryDelay,
    },
  });
  const service = new ExamService({
    exams,
    labStore,
    labs: app.labs,
    audit,
    sessions,
    pipeline,
    scenarios,
    clock,
    log: log.child({ component: 'exams' }),
    library: new ScenarioLibrary([app.config.scenariosDir, ...config.scenarioFolders]),
    uploadsDir: join(app.config.dataDir, 'scenarios'),
    loadScenario: (file) => app.loadScenario(file),
  });
  const reader = new ExamReader({ exams, scenarios, labStore, labs: app.labs, clock, sessions });
  const auth = new Authenticator(tokens, service, new FailedTokens({ perAddress: config.failedTokens.perAddress, windowMs: config.failedTokens.window }, () => clock.now()));
  const scheduler = new Scheduler({ service, exams, pipeline, audit, clock, log: log.child({ component: 'scheduler' }), tickMs: config.tick });
  const engineWatch = new EngineWatch({ exams, labStore, labs: app.labs, audit, pipeline, providers: app.providers, clock, log: log.child({ component: 'engines' }), hostLostAfterMs: config.hostLostAfter }, config.engineCheck);
  const recordings = new Recordings(join(app.config.dataDir, 'recordings'), { log: log.child({ component: 'recordings' }) });
  const shells = new LabShells({
    exams: service,
    sessions,
    audit,
    recordings,
    metrics,
    log: log.child({ component: 'terminal' }),
    refused: (examId, candidateId, err) => scheduler.sessionRefused(examId, candidateId, err),
  });
  const gateway = new SshGateway({
    auth,
    shells,
    sessions,
    metrics,
    log: log.child({ component: 'gateway' }),
    hostKey: wiring.hostKey,
    unauthenticated: { perAddress: config.ssh.unauthenticated.perAddress, total: config.ssh.unauthenticated.total, timeoutMs: config.ssh.unauthenticated.timeout },
  });
  const http = createHttpApp({
    service,
    reader,
    staffTokens: new StaffTokens(tokens, audit),
    recordings,
    audit,
    auth,
    access: wiring.access,
    metrics,
    clock,
    log: log.child({ component: 'http' }),
    version: wiring.version,
    readiness: wiring.readiness,
    publicDirs: [join(PACKAGE_ROOT, 'public'), join(PACKAGE_ROOT, 'dist', 'public')],
  });
  return { sessions, pipeline, service, reader, auth, scheduler, engineWatch, gateway, shells, recordings, http };
}
