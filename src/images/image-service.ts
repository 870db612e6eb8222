import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { mapLimit } from '../util/concurrency.js';
import { EnvironmentError } from '../util/errors.js';
import type { CatalogImage, ImageCatalog } from './catalog.js';

/** A machine image as its provider runs it. */
export interface BuiltImage {
  /** The engine's reference: a Docker tag, a VM disk. */
  ref: string;
  /** PID 1 is systemd. */
  systemd: boolean;
  /** Capabilities the image needs to run. */
  capabilities: string[];
  /** The image boots a kernel of its own (a VM disk). */
  bootable: boolean;
  /** A kernel for direct boot, when the image has one. */
  kernel?: { path: string; initrd: string; cmdline: string };
}

/** Builds a provider's images from their catalog definition, offline, only when missing (or forced). */
export interface ImageBuilder {
  ensure(image: CatalogImage, options?: BuildOptions): Promise<BuiltImage>;
  isBuilt(image: CatalogImage): Promise<boolean>;
  /** VM images: writes the image's whole disk to `dest` as a raw image compressed with zstd (what a deployment server serves), building it first when missing. */
  exportDisk?(image: CatalogImage, dest: string): Promise<void>;
}

export interface BuildOptions {
  force?: boolean;
  /** How a build gets the disk of a VM image it carries (`vmDisks`): written to `dest` as a raw image compressed with zstd. */
  exportVmDisk?: (image: CatalogImage, dest: string) => Promise<void>;
}

/** Images built at once by `build`. */
const BUILD_CONCURRENCY = 3;

/** Where a scenario may keep images of its own: an `images/` folder beside it. */
export function scenarioImagesDir(scenarioDir: string): string {
  return join(scenarioDir, 'images');
}

/** One image of the catalog and whether its current version is built. */
export interface ImageStatus {
  name: string;
  /** The provider that runs it (docker, libvirt). */
  provider: string;
  tag: string;
  built: boolean;
  from?: string;
}

/**
 * The lab images: the catalog (examlab's images/ folders, plus the images/
 * folder beside a scenario when it has one) and, per provider, the builder
 * that turns a definition into something its engine runs. Every method
 * takes the folder of the scenario asking (`scenarioDir`), since that
 * decides which images exist.
 */
export class ImageService {
  private readonly catalogs = new Map<string, Promise<ImageCatalog>>();

  constructor(
    /** examlab's own images folder. */
    private readonly imagesDir: string,
    private readonly loadCatalog: (root: string, extraRoots: readonly string[]) => Promise<ImageCatalog>,
    /** Each provider's builder, by provider name. */
    private readonly builders: Readonly<Record<string, () => Promise<ImageBuilder>>>,
  ) {}

  /** The images a scenario in `scenarioDir` may use (read once per process and folder). */
  catalog(scenarioDir?: string): Promise<ImageCatalog> {
    const own = scenarioDir === undefined ? undefined : resolve(scenarioImagesDir(scenarioDir));
    const extra = own && own !== resolve(this.imagesDir) && existsSync(own) ? [own] : [];
    const key = extra.join('\n');
    let catalog = this.catalogs.get(key);
    if (!catalog) {
      catalog = this.loadCatalog(this.imagesDir, extra);
      this.catalogs.set(key, catalog);
      catalog.catch(() => this.catalogs.delete(key));
    }
    return catalog;
  }

  /** Builds the named images (all by default, Docker's first); only what changed is rebuilt. */
  async build(names: readonly string[] = [], options: { force?: boolean; scenarioDir?: string; onBuilt?: (name: string, image: BuiltImage) => void } = {}): Promise<void> {
    const catalog = await this.catalog(options.scenarioDir);
    const order = Object.keys(this.builders);
    const rank = (name: string) => order.indexOf(catalog.get(name).definition.provider);
    const wanted = names.length ? names : catalog.names().sort((a, b) => rank(a) - rank(b));
    // A few at once: builds mostly wait on the mirror and the engine; a shared parent is built once (the builders lock by tag).
    await mapLimit(wanted, BUILD_CONCURRENCY, async (name) => {
      const image = await this.ensure(name, { force: options.force, scenarioDir: options.scenarioDir });
      options.onBuilt?.(name, image);
    });
  }

  async list(scenarioDir?: string): Promise<ImageStatus[]> {
    const catalog = await this.catalog(scenarioDir);
    return Promise.all(
      catalog.names().map(async (name) => {
        const image = catalog.get(name);
        const provider = image.definition.provider;
        return { name, provider, tag: image.tag, built: await (await this.builder(provider)).isBuilt(image), from: image.parent?.name };
      }),
    );
  }

  /** The image a machine runs, built first if it is missing. */
  async ensure(name: string, options: { force?: boolean; scenarioDir?: string } = {}): Promise<BuiltImage> {
    const image = (await this.catalog(options.scenarioDir)).get(name);
    const exportVmDisk = async (carried: CatalogImage, dest: string) => {
      const vms = await this.builder(carried.definition.provider);
      if (!vms.exportDisk) throw new EnvironmentError(`image ${carried.name} (${carried.definition.provider}) has no disk to export`);
      await vms.exportDisk(carried, dest);
    };
    return (await this.builder(image.definition.provider)).ensure(image, { force: options.force, exportVmDisk });
  }

  /** Whether the image runs systemd as PID 1 (what a room of them needs of the host differs). */
  async runsSystemd(name: string, scenarioDir?: string): Promise<boolean> {
    const catalog = await this.catalog(scenarioDir);
    return catalog.names().includes(name) && catalog.get(name).runtime.systemd;
  }

  /** What scenario validation needs: every image name and the provider it runs on. */
  async providersByImage(scenarioDir?: string): Promise<Record<string, string>> {
    const catalog = await this.catalog(scenarioDir);
    return Object.fromEntries(catalog.names().map((n) => [n, catalog.get(n).definition.provider]));
  }

  private builder(provider: string): Promise<ImageBuilder> {
    const make = this.builders[provider];
    if (!make) throw new EnvironmentError(`no image builder for provider ${provider}; known: ${Object.keys(this.builders).join(', ')}`);
    return make();
  }
}
