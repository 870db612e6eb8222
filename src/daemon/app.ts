import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { TokenStore } from '../access/index.js';
import { AuditLog } from '../audit/index.js';
import { ExamStore } from '../exams/index.js';
import { loadToolbox, type Toolbox } from '../grading/index.js';
import { ImageCatalog, ImageService } from '../images/index.js';
import { LabMachineAccess, LabService, LabStore } from '../labs/index.js';
import { ProviderRegistry } from '../providers/index.js';
import { loadScenarioFile, type LoadedScenario } from '../scenario/index.js';
import { openDatabase, type Db } from '../util/database.js';
import { auditAnchorFiles, storeFile, type Config } from './config.js';

/**
 * The composition root: every long-lived object is made here (the daemon's
 * own parts in compose.ts), once, with its dependencies passed in. Nothing
 * outside daemon/ constructs engines, stores or services; the faces (CLI,
 * HTTP, SSH gateway) receive services.
 */
export interface App {
  config: Config;
  log: Logger;
  /** The stores, for the daemon's composition (compose.ts) and tests; faces use the services. */
  stores: { labs: LabStore; exams: ExamStore; tokens: TokenStore; audit: AuditLog };
  providers: ProviderRegistry;
  images: ImageService;
  labs: LabService;
  loadScenario(file: string): Promise<LoadedScenario>;
  close(): void;
}

export function createApp(config: Config, log: Logger): App {
  const db: Db = openDatabase(storeFile(config));
  const stores = { labs: new LabStore(db), exams: new ExamStore(db), tokens: new TokenStore(db), audit: new AuditLog(db, auditAnchorFiles(config)) };
  const toolbox = once((): Promise<Toolbox> => loadToolbox(join(config.buildDir, 'toolbox')));
  // The engines' modules are loaded with the engines, on first use: a command that starts none loads none.
  const dockerModule = once(() => import('../providers/docker/index.js'));
  const libvirtModule = once(() => import('../providers/libvirt/index.js'));
  // Images are built on this host's engine; an engine on another host gets them from it.
  const buildEngine = once(async () => (await dockerModule()).localEngine(config.dockerSocket));
  const docker = once(async () =>
    (await dockerModule()).DockerProvider.start(log.child({ provider: 'docker' }), { subnetPool: config.subnetPool, engine: config.dockerEngine, imageSource: buildEngine, graderTools: toolbox }),
  );
  // Started on first use only: a Docker-only lab never needs libvirtd.
  const libvirt = once(async () =>
    (await libvirtModule()).startLibvirtProvider(log.child({ provider: 'libvirt' }), {
      uri: config.libvirtUri,
      labsDir: join(config.vmDir, 'labs'),
      accelerationCache: join(config.vmDir, 'acceleration.json'),
      imagesDir: join(config.vmDir, 'images'),
    }),
  );
  /** A lab host's libvirtd, over SSH: its VMs' files in the same folders there as here; the images copied from this host's. */
  const labHostLibvirt = (name: string, libvirt: { url: string; sshKey?: string; sshHostKey?: string }, kvm: string | undefined) =>
    once(async () =>
      (await libvirtModule()).startLibvirtProvider(log.child({ provider: 'libvirt', host: name }), {
        uri: libvirt.url,
        labsDir: join(config.vmDir, 'labs'),
        imagesDir: join(config.vmDir, 'images'),
        accelerationCache: join(config.vmDir, `acceleration-${name}.json`),
        labHost: {
          sshKey: libvirt.sshKey as string, // required by the configuration with qemu+ssh://
          sshHostKey: libvirt.sshHostKey as string,
          socketDir: join(config.dataDir, 'run', `libvirt-${name}`),
          ...(kvm === undefined ? {} : { kvm: kvm === 'true' }),
        },
      }),
    );
  // Docker also makes every lab's networks (VMs join its bridges).
  const providers = new ProviderRegistry().register('docker', docker, { networks: true }).register('libvirt', libvirt);
  for (const host of config.labHosts) {
    const start = once(async () =>
      (await dockerModule()).DockerProvider.start(log.child({ provider: 'docker', host: host.name }), { subnetPool: config.subnetPool, engine: host.engine, imageSource: buildEngine, graderTools: toolbox }),
    );
    const local = host.engine.url.startsWith('unix:');
    // This host's libvirt serves a lab host whose engine is this host's too (its VMs join that engine's bridges).
    const remote = host.libvirt && !host.libvirt.url.startsWith('qemu:///') ? host.libvirt : undefined;
    const vms = remote ? labHostLibvirt(host.name, remote, host.labels.kvm) : (host.libvirt ? true : local) ? 'local' : undefined;
    providers.registerHost({ name: host.name, capacity: host.capacity, local, labels: host.labels }, start, vms);
  }
  const imageLog = log.child({ component: 'images' });
  const images = new ImageService(config.imagesDir, (root, extra) => ImageCatalog.load(root, extra), {
    docker: once(async () => {
      const { DockerImageBuilder, dockerImages } = await dockerModule();
      return dockerImages(new DockerImageBuilder(await buildEngine(), imageLog, { workDir: join(config.buildDir, 'rootfs'), debianMirror: config.debianMirror }));
    }),
    libvirt: once(async () => {
      const { VmImageBuilder, vmImages } = await libvirtModule();
      return vmImages(new VmImageBuilder(imageLog, { imagesDir: join(config.vmDir, 'images'), workDir: join(config.buildDir, 'rootfs'), debianMirror: config.debianMirror }));
    }),
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
      const imageProviders = await images.providersByImage(dirname(file));
      return loadScenarioFile(file, { knownImages: Object.keys(imageProviders), imageProviders });
    },
    close: () => db.close(),
  };
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
