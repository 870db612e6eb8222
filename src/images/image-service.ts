import { EnvironmentError } from '../util/errors.js';
import type { ImageCatalog } from './catalog.js';

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

/** Builds a provider's images from the catalog, offline, only when missing (or forced). */
export interface ImageBuilder {
  ensure(name: string, options?: { force?: boolean }): Promise<BuiltImage>;
  isBuilt(name: string): Promise<boolean>;
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
 * The lab images: the catalog (images/ folders) and, per provider, the
 * builder that turns a definition into something its engine runs.
 */
export class ImageService {
  constructor(
    readonly catalog: () => Promise<ImageCatalog>,
    /** Each provider's builder, by provider name. */
    private readonly builders: Readonly<Record<string, () => Promise<ImageBuilder>>>,
  ) {}

  /** Builds the named images (all by default, provider by provider in the order their builders were given); only what changed is rebuilt. */
  async build(names: readonly string[] = [], options: { force?: boolean; onBuilt?: (name: string, image: BuiltImage) => void } = {}): Promise<void> {
    const catalog = await this.catalog();
    const order = Object.keys(this.builders);
    const rank = (name: string) => order.indexOf(catalog.get(name).definition.provider);
    const wanted = names.length ? names : catalog.names().sort((a, b) => rank(a) - rank(b));
    for (const name of wanted) {
      const image = await this.ensure(name, options.force);
      options.onBuilt?.(name, image);
    }
  }

  async list(): Promise<ImageStatus[]> {
    const catalog = await this.catalog();
    return Promise.all(
      catalog.names().map(async (name) => {
        const image = catalog.get(name);
        const provider = image.definition.provider;
        return { name, provider, tag: image.tag, built: await (await this.builder(provider)).isBuilt(name), from: image.parent?.name };
      }),
    );
  }

  /** The image a machine runs, built first if it is missing. */
  async ensure(name: string, force = false): Promise<BuiltImage> {
    const catalog = await this.catalog();
    return (await this.builder(catalog.get(name).definition.provider)).ensure(name, { force });
  }

  /** Whether the image runs systemd as PID 1 (what a room of them needs of the host differs). */
  async runsSystemd(name: string): Promise<boolean> {
    const catalog = await this.catalog();
    return catalog.names().includes(name) && catalog.get(name).runtime.systemd;
  }

  /** What scenario validation needs: every image name and the provider it runs on. */
  async providersByImage(): Promise<Record<string, string>> {
    const catalog = await this.catalog();
    return Object.fromEntries(catalog.names().map((n) => [n, catalog.get(n).definition.provider]));
  }

  private builder(provider: string): Promise<ImageBuilder> {
    const make = this.builders[provider];
    if (!make) throw new EnvironmentError(`no image builder for provider ${provider}; known: ${Object.keys(this.builders).join(', ')}`);
    return make();
  }
}
