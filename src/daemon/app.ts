import { join } from 'node:path';
import type { Logger } from 'pino';
import { loadToolbox, type Toolbox } from '../grading/index.js';
import { ImageCatalog } from '../images/index.js';
import { DockerImageBuilder } from '../providers/docker/index.js';
import { VmImageBuilder } from '../providers/libvirt/index.js';
import { LabService } from '../labs/index.js';
import { DockerProvider } from '../providers/docker/index.js';
import { ProviderRegistry } from '../providers/index.js';
import { openDatabase, type Db } from '../util/database.js';
import { LabStore } from '../labs/index.js';
import type { Config } from './config.js';
import { loadScenarioFile, type LoadedScenario } from '../scenario/index.js';

/**
 * The composition root: every long-lived object is made here, once, with
 * its dependencies passed in. Nothing else constructs engines or stores.
 */
export interface App {
  config: Config;
  log: Logger;
  db: Db;
  store: LabStore;
  providers: ProviderRegistry;
  catalog: () => Promise<ImageCatalog>;
  dockerImages: () => Promise<DockerImageBuilder>;
  vmImages: () => Promise<VmImageBuilder>;
  labs: LabService;
  loadScenario(file: string): Promise<LoadedScenario>;
  close(): void;
}

export function createApp(config: Config, log: Logger): App {
  const db = openDatabase(join(config.dataDir, 'examlab.db'));
  const store = new LabStore(db);
  const docker = once(() => DockerProvider.start(log.child({ provider: 'docker' }), { subnetPool: config.subnetPool, socketPath: config.dockerSocket }));
  // Started on first use only: a Docker-only lab never needs libvirtd.
  const libvirt = once(async () => {
    const { LibvirtProvider } = await import('../providers/libvirt/index.js');
    return LibvirtProvider.start(log.child({ provider: 'libvirt' }), {
      uri: config.libvirtUri,
      labsDir: join(config.vmDir, 'labs'),
      accelerationCache: join(config.vmDir, 'acceleration.json'),
    });
  });
  const providers = new ProviderRegistry().register('docker', docker).register('libvirt', libvirt);
  const catalog = once(() => ImageCatalog.load(config.imagesDir));
  const dockerImages = once(async () => new DockerImageBuilder((await docker()).docker, await catalog(), log.child({ component: 'images' }), { workDir: join(config.buildDir, 'rootfs'), debianMirror: config.debianMirror }));
  const vmImages = once(async () => new VmImageBuilder(await catalog(), log.child({ component: 'images' }), { imagesDir: join(config.vmDir, 'images'), workDir: join(config.buildDir, 'rootfs'), debianMirror: config.debianMirror }));
  const toolbox = once((): Promise<Toolbox> => loadToolbox(join(config.buildDir, 'toolbox')));

  const labs = new LabService({
    store,
    providers,
    networks: docker,
    images: {
      docker: async (machine) => {
        const image = await (await dockerImages()).ensure(machine.image);
        return { ref: image.tag, systemd: image.runtime.systemd, capabilities: image.runtime.capabilities };
      },
      libvirt: async (machine) => {
        const image = await (await vmImages()).ensure(machine.image);
        return { ref: image.disk, systemd: true, capabilities: [], kernel: image.kernel };
      },
    },
    toolbox,
    log,
    labFilesDir: join(config.dataDir, 'labs'),
  });

  return {
    config,
    log,
    db,
    store,
    providers,
    catalog,
    dockerImages,
    vmImages,
    labs,
    async loadScenario(file) {
      const images = await catalog();
      const imageProviders = Object.fromEntries(images.names().map((n) => [n, images.get(n).definition.provider]));
      return loadScenarioFile(file, { knownImages: images.names(), imageProviders });
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
