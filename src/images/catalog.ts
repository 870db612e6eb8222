import { readdir, readFile, stat } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parse } from 'yaml';
import { z } from 'zod';
import { InputError, errorMessage } from '../util/errors.js';
import { sha256 } from '../util/ids.js';

/**
 * The images under images/: each folder holds an image.yaml saying how the
 * image is built (from Debian packages by debootstrap, or a Dockerfile on
 * top of another catalog image) and what its machines need at run time.
 *
 * An image's tag carries a hash of its folder and of its parent's hash, so a
 * changed definition always yields a new tag: nothing stale is ever served.
 */

const CAPABILITY = z.enum([
  'AUDIT_WRITE', 'CHOWN', 'DAC_OVERRIDE', 'FOWNER', 'FSETID', 'KILL', 'MKNOD', 'NET_ADMIN', 'NET_BIND_SERVICE',
  'NET_RAW', 'SETFCAP', 'SETGID', 'SETPCAP', 'SETUID', 'SYS_CHROOT',
]); // never SYS_TIME: a container shares the host's clock (every deadline with it)

const imageDefinitionSchema = z.strictObject({
  description: z.string(),
  provider: z.enum(['docker', 'libvirt']).default('docker'),
  /**
   * Catalog image this one builds on, of the same provider: a Docker image's
   * Dockerfile gets it as ARG BASE; a VM image is its parent's tree with this
   * folder's rootfs/ and configure.sh applied on top.
   */
  from: z.string().optional(),
  /**
   * VM images whose disk this Docker image's build receives (a deployment
   * server's masters): each built first, then handed to the Dockerfile's
   * context as vm-disks/NAME.img.zst, the whole disk as a raw image
   * compressed with zstd.
   */
  vmDisks: z.array(z.string()).default([]),
  /** Build a root filesystem from Debian packages; the Dockerfile, if any, goes on top. */
  debootstrap: z
    .strictObject({
      suite: z.string().default('bookworm'),
      variant: z.string().default('minbase'),
      include: z.array(z.string()).default([]),
    })
    .optional(),
  /** Virtual machine images (provider libvirt). */
  vm: z
    .strictObject({
      /** Size of the base disk built from debootstrap, e.g. "2G". */
      size: z.string().regex(/^\d+[MG]$/, 'a size like "2G" or "1536M"').default('2G'),
      /** Kernel command line for direct kernel boot. */
      cmdline: z.string().optional(),
      /** A disk made elsewhere (qcow2), e.g. a Windows guest: absolute, or relative to the image folder. Nothing is built. */
      disk: z.string().optional(),
    })
    .optional(),
  runtime: z
    .strictObject({
      /** PID 1 is systemd: the container gets /run tmpfs and a read-only cgroup mount. */
      systemd: z.boolean().optional(),
      /** Capabilities the machine needs; all others are dropped. */
      capabilities: z.array(CAPABILITY).optional(),
    })
    .prefault({}),
});

export type ImageDefinition = z.output<typeof imageDefinitionSchema>;

export interface CatalogImage {
  name: string;
  dir: string;
  definition: ImageDefinition;
  /** Content hash over the folder and the parent chain (hex, full). */
  hash: string;
  /** `examlab/<name>:<hash12>` */
  tag: string;
  parent?: CatalogImage;
  /** The VM images whose disks its build receives (`vmDisks`). */
  vmDisks: CatalogImage[];
  /** Runtime needs with the parent's merged in. */
  runtime: { systemd: boolean; capabilities: string[] };
}

export class ImageCatalog {
  private constructor(
    readonly root: string,
    private readonly images: Map<string, CatalogImage>,
  ) {}

  /**
   * The images of `root` (examlab's own) and of any `extraRoots` (a
   * trainer's folder beside their scenario). An extra image may build on an
   * image of the root; it may not take the name of one, so a name always
   * means one image.
   */
  static async load(root: string, extraRoots: readonly string[] = []): Promise<ImageCatalog> {
    const definitions = new Map<string, { dir: string; definition: ImageDefinition; contentHash: string }>();
    for (const folder of [root, ...extraRoots]) {
      for (const [name, found] of await readFolder(folder)) {
        const taken = definitions.get(name);
        if (taken) throw new InputError(`image "${name}" of ${found.dir} has the name of ${taken.dir}: give it a name of its own`);
        definitions.set(name, found);
      }
    }
    const images = new Map<string, CatalogImage>();
    const resolve = (name: string, trail: string[]): CatalogImage => {
      const done = images.get(name);
      if (done) return done;
      const def = definitions.get(name);
      if (!def) throw new InputError(`image "${trail.at(-1)}" builds on unknown image "${name}"; known: ${[...definitions.keys()].join(', ')}`);
      if (trail.includes(name)) throw new InputError(`images build on each other in a loop: ${[...trail, name].join(' -> ')}`);
      const parent = def.definition.from ? resolve(def.definition.from, [...trail, name]) : undefined;
      const provider = def.definition.provider;
      if (parent && parent.definition.provider !== provider) {
        throw new InputError(`image "${name}" (${provider}) builds on "${parent.name}", a ${parent.definition.provider} image: an image builds on one of its own provider`);
      }
      const vmDisks = def.definition.vmDisks.map((disk) => {
        if (provider !== 'docker') throw new InputError(`image "${name}": only a Docker image carries VM disks (vmDisks)`);
        const carried = resolve(disk, [...trail, name]);
        if (carried.definition.provider !== 'libvirt') throw new InputError(`image "${name}" carries "${disk}" in vmDisks, which is not a VM image`);
        return carried;
      });
      // A carried disk is part of what the image is: a new disk is a new image.
      const hash = sha256([def.contentHash, parent?.hash ?? '', ...vmDisks.map((d) => d.hash)].join('\n'));
      const runtime = {
        systemd: def.definition.runtime.systemd ?? parent?.runtime.systemd ?? false,
        capabilities: [...new Set([...(parent?.runtime.capabilities ?? []), ...(def.definition.runtime.capabilities ?? [])])].sort(),
      };
      const image: CatalogImage = { name, dir: def.dir, definition: def.definition, hash, tag: `examlab/${name}:${hash.slice(0, 12)}`, parent, vmDisks, runtime };
      images.set(name, image);
      return image;
    };
    for (const name of definitions.keys()) resolve(name, []);
    return new ImageCatalog(root, images);
  }

  names(): string[] {
    return [...this.images.keys()];
  }

  get(name: string): CatalogImage {
    const image = this.images.get(name);
    if (!image) throw new InputError(`unknown image "${name}"; known: ${this.names().join(', ')}`);
    return image;
  }

  /** The image and its ancestors, root first: the order to build them in. */
  lineage(name: string): CatalogImage[] {
    return lineageOf(this.get(name));
  }
}

/** An image and its ancestors, root first. */
export function lineageOf(image: CatalogImage): CatalogImage[] {
  const chain: CatalogImage[] = [];
  for (let i: CatalogImage | undefined = image; i; i = i.parent) chain.unshift(i);
  return chain;
}

/** The image folders of one catalog folder, by name. */
async function readFolder(root: string): Promise<Map<string, { dir: string; definition: ImageDefinition; contentHash: string }>> {
  let entries: string[];
  try {
    entries = (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory()).map((e) => e.name);
  } catch (err) {
    throw new InputError(`cannot read the image catalog ${root}: ${errorMessage(err)}`);
  }
  const found = new Map<string, { dir: string; definition: ImageDefinition; contentHash: string }>();
  for (const name of entries.sort()) {
    const dir = join(root, name);
    const file = join(dir, 'image.yaml');
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch {
      continue; // not an image folder (e.g. the grader's toolbox sources)
    }
    if (!/^[a-z][a-z0-9-]*$/.test(name)) throw new InputError(`${dir}: an image folder's name is lowercase letters, digits and "-", starting with a letter`);
    let data: unknown;
    try {
      data = parse(text);
    } catch (err) {
      throw new InputError(`${file}: not valid YAML: ${errorMessage(err)}`);
    }
    const parsed = imageDefinitionSchema.safeParse(data);
    if (!parsed.success) {
      throw new InputError(`${file}: invalid image definition`, parsed.error.issues.map((i) => ({ where: `${file} ${i.path.join('.')}`, message: i.message })));
    }
    found.set(name, { dir, definition: parsed.data, contentHash: await hashFolder(dir) });
  }
  return found;
}

/** Hash of every file in a folder (paths and contents, in a stable order). */
async function hashFolder(dir: string): Promise<string> {
  const files: string[] = [];
  const walk = async (d: string) => {
    for (const entry of await readdir(d, { withFileTypes: true })) {
      const path = join(d, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.isFile()) files.push(path);
    }
  };
  await walk(dir);
  files.sort();
  const parts: string[] = [];
  for (const file of files) {
    const info = await stat(file);
    parts.push(`${relative(dir, file)}\0${info.mode & 0o111 ? 'x' : '-'}\0${sha256(await readFile(file))}`);
  }
  return sha256(parts.join('\n'));
}
