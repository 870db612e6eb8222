import { join } from 'node:path';
import type { Logger } from 'pino';
import { Authenticator, SessionRegistry, StaffTokens, TokenStore } from '../access/index.js';
import { AuditLog } from '../audit/index.js';
import { ExamReader, ExamScenarios, ExamService, ExamStore, LabPipeline, Scheduler, type AccessInfo } from '../exams/index.js';
import { SshGateway } from '../gateway/index.js';
import { loadToolbox, type Toolbox } from '../grading/index.js';
import { createHttpApp, createMetrics, type Readiness } from '../http/index.js';
import { ImageCatalog, ImageService } from '../images/index.js';
import { LabMachineAccess, LabService, LabStore } from '../labs/index.js';
import { ProviderRegistry } from '../providers/index.js';
import { DockerImageBuilder, DockerProvider, dockerImages } from '../providers/docker/index.js';
import { VmImageBuilder, startLibvirtProvider, vmImages } from '../providers/libvirt/index.js';
import { loadScenarioFile, type LoadedScenario } from '../scenario/index.js';
import { openDatabase, type Db } from '../util/database.js';
import type { Clock } from '../util/retry.js';
import { PACKAGE_ROOT, type Config } from './config.js';
import type { DaemonConfig } from './settings.js';

/**
 * The composition root: every long-lived object is made here, once, with
 * its dependencies passed in. Nothing else constructs engines, stores or
 * services; the faces (CLI, HTTP, SSH gateway) receive services.
 */
export interface App {
  config: Config;
  log: Logger;
  /** The stores, for the daemon's composition below (and tests); faces use the services. */
  stores: { labs: LabStore; exams: ExamStore; tokens: TokenStore; audit: AuditLog };
  providers: ProviderRegistry;
  images: ImageService;
  labs: LabService;
  loadScenario(file: string): Promise<LoadedScenario>;
  close(): void;
}

export function createApp(config: Config, log: Logger): App {
  const db: Db = openDatabase(join(config.dataDir, 'examlab.db'));
  const stores = { labs: new LabStore(db), exams: new ExamStore(db), tokens: new TokenStore(db), audit: new AuditLog(db) };
  const toolbox = once((): Promise<Toolbox> => loadToolbox(join(config.buildDir, 'toolbox')));
  const docker = once(() => DockerProvider.start(log.child({ provider: 'docker' }), { subnetPool: config.subnetPool, socketPath: config.dockerSocket, graderTools: toolbox }));
  // Started on first use only: a Docker-only lab never needs libvirtd.
  const libvirt = once(() =>
    startLibvirtProvider(log.child({ provider: 'libvirt' }), {
      uri: config.libvirtUri,
      labsDir: join(config.vmDir, 'labs'),
      accelerationCache: join(config.vmDir, 'acceleration.json'),
      imagesDir: join(config.vmDir, 'images'),
    }),
  );
  // Docker also makes every lab's networks (VMs join its bridges).
  const providers = new ProviderRegistry().register('docker', docker, { networks: true }).register('libvirt', libvirt);
  const catalog = once(() => ImageCatalog.load(config.imagesDir));
  const imageLog = log.child({ component: 'images' });
  const images = new ImageService(catalog, {
    docker: once(async () => dockerImages(new DockerImageBuilder((await docker()).docker, await catalog(), imageLog, { workDir: join(config.buildDir, 'rootfs'), debianMirror: config.debianMirror }), await catalog())),
    libvirt: once(async () => vmImages(new VmImageBuilder(await catalog(), imageLog, { imagesDir: join(config.vmDir, 'images'), workDir: join(config.buildDir, 'rootfs'), debianMirror: config.debianMirror }))),
  });
  const labs = new LabService({ store: stores.labs, providers, images, machines: new LabMachineAccess(providers, toolbox), log, labFilesDir: join(config.dataDir, 'labs') });

  return {
    config,
    log,
    stores,
    providers,
    images,
    labs,
    async loadScenario(file) {
      const imageProviders = await images.providersByImage();
      return loadScenarioFile(file, { knownImages: Object.keys(imageProviders), imageProviders });
    },
    close: () => db.close(),
  };
}

/** The exam daemon's parts, made from an App: what `examlab serve` runs. */
export interface DaemonParts {
  sessions: SessionRegistry;
  pipeline: LabPipeline;
  service: ExamService;
  reader: ExamReader;
  auth: Authenticator;
  scheduler: Scheduler;
  gateway: SshGateway;
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
    scenariosDir: app.config.scenariosDir,
    uploadsDir: join(app.config.dataDir, 'scenarios'),
    loadScenario: (file) => app.loadScenario(file),
  });
  const reader = new ExamReader({ exams, scenarios, labStore, labs: app.labs, clock });
  const auth = new Authenticator(tokens, service);
  const scheduler = new Scheduler({ service, exams, clock, log: log.child({ component: 'scheduler' }), tickMs: config.tick });
  const gateway = new SshGateway({ auth, exams: service, sessions, audit, metrics, log: log.child({ component: 'gateway' }), hostKey: wiring.hostKey });
  const http = createHttpApp({
    service,
    reader,
    staffTokens: new StaffTokens(tokens, audit),
    audit,
    auth,
    access: wiring.access,
    metrics,
    clock,
    log: log.child({ component: 'http' }),
    version: wiring.version,
    readiness: wiring.readiness,
    publicDir: join(PACKAGE_ROOT, 'public'),
  });
  return { sessions, pipeline, service, reader, auth, scheduler, gateway, http };
}

/** A lazily made value; a failure is not kept, so the next call tries again. */
function once<T>(make: () => Promise<T>): () => Promise<T> {
  let value: Promise<T> | undefined;
  return () => {
    if (!value) {
      value = make();
      value.catch(() => (value = undefined));
    }
    return value;
  };
}
