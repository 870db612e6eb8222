import { existsSync } from 'node:fs';
import { chmod, mkdir, open, readdir, readFile, rename, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import type { Logger } from 'pino';
import { EnvironmentError, InputError } from '../../util/errors.js';
import { runCommand } from '../../util/command.js';
import { Mutex } from '../../util/concurrency.js';
import { sha256 } from '../../util/ids.js';
import { parseSize } from '../../util/units.js';
import { lineageOf, type CatalogImage } from '../../images/index.js';

export interface VmBuilderOptions {
  /** Built images: <imagesDir>/<name>-<hash12>/. Must be readable by the QEMU user. */
  imagesDir: string;
  /** Scratch space for root filesystems (removed after the build). */
  workDir: string;
  debianMirror: string;
}

/** A VM image ready to boot: a read-only base disk, and a kernel for direct boot when it has one. */
export interface VmImage {
  name: string;
  disk: string;
  kernel?: { path: string; initrd: string; cmdline: string };
}

/** The MBR partition starts at 1 MiB, as every partitioning tool does; GRUB's core fits in the gap before it. */
const PARTITION_OFFSET = 1024 * 1024;

/**
 * Builds VM images offline from Debian packages, mounting nothing:
 * debootstrap → image files (rootfs/, configure.sh in chroot) → an ext4
 * filesystem made from the tree (`mkfs.ext4 -d`) inside an MBR partition →
 * GRUB's boot sector and core image written in front of it → qcow2. The
 * kernel and initrd are kept beside the disk for direct kernel boot.
 *
 * An image's folder name carries its content hash, so a changed definition
 * is a new image and labs running on the old base are never disturbed.
 */
export class VmImageBuilder {
  private readonly locks = new Map<string, Mutex>();

  constructor(
    private readonly log: Logger,
    private readonly options: VmBuilderOptions,
  ) {}

  dirOf(image: CatalogImage): string {
    return join(this.options.imagesDir, `${image.name}-${image.hash.slice(0, 12)}`);
  }

  /** The image if it is built (or is a disk made elsewhere that exists). */
  async find(wanted: CatalogImage): Promise<VmImage | undefined> {
    const image = vmImage(wanted);
    const name = image.name;
    const prebuilt = image.definition.vm?.disk;
    if (prebuilt !== undefined) {
      const disk = isAbsolute(prebuilt) ? prebuilt : join(image.dir, prebuilt);
      return existsSync(disk) ? { name, disk } : undefined;
    }
    const manifest = join(this.dirOf(image), 'image.json');
    if (!existsSync(manifest)) return undefined;
    return JSON.parse(await readFile(manifest, 'utf8')) as VmImage;
  }

  /** Builds the image when it is missing (or when forced). */
  async ensure(wanted: CatalogImage, options: { force?: boolean } = {}): Promise<VmImage> {
    const image = vmImage(wanted);
    const name = image.name;
    const lock = this.locks.get(image.tag) ?? new Mutex();
    this.locks.set(image.tag, lock);
    return lock.run(async () => {
      const existing = await this.find(image);
      if (existing && !(options.force && image.definition.vm?.disk === undefined)) return existing;
      if (image.definition.vm?.disk !== undefined) {
        throw new EnvironmentError(`image ${name} is a disk made elsewhere, and ${image.definition.vm.disk} does not exist: put the qcow2 there (see README, "Windows guests")`);
      }
      const started = Date.now();
      this.log.info({ image: name }, 'building VM image');
      const built = await this.build(image);
      this.log.info({ image: name, seconds: Math.round((Date.now() - started) / 1000) }, 'VM image built');
      return built;
    });
  }

  /**
   * Writes the image's whole disk to `dest` as a raw image compressed with
   * zstd (a deployment server's master), building the image first when
   * missing. The raw image is sparse on the way; zstd makes its empty space
   * almost free.
   */
  async exportDisk(wanted: CatalogImage, dest: string): Promise<void> {
    const image = await this.ensure(wanted);
    const raw = `${dest}.raw`;
    try {
      await runCommand('qemu-img', ['convert', '-O', 'raw', image.disk, raw]);
      await runCommand('zstd', ['-q', '-f', '-T0', '-3', raw, '-o', dest]);
    } finally {
      await rm(raw, { force: true });
    }
  }

  private async build(image: CatalogImage): Promise<VmImage> {
    // A VM image built on another is that image's tree with its own files on top: one debootstrap, every layer's files in order.
    const chain = lineageOf(image);
    const first = chain[0] as CatalogImage;
    const spec = first.definition.debootstrap;
    if (!spec) throw new InputError(`image ${image.name} builds on ${first.name}, a disk made elsewhere: only an image built from Debian packages can be built on`);
    const vm = [...chain].reverse().find((i) => i.definition.vm)?.definition.vm;
    const sizeBytes = parseSize(vm?.size ?? '2G') as number;
    const final = this.dirOf(image);
    const out = `${final}.partial`;
    const root = join(this.options.workDir, `${image.name}-${image.hash.slice(0, 12)}`);
    await Promise.all([rm(out, { recursive: true, force: true }), rm(root, { recursive: true, force: true })]);
    await mkdir(out, { recursive: true });
    await mkdir(root, { recursive: true });
    try {
      await this.debootstrap(spec, root);
      for (const layer of chain) {
        if (existsSync(join(layer.dir, 'rootfs'))) await runCommand('cp', ['-rT', '--preserve=mode', join(layer.dir, 'rootfs'), root]);
        if (existsSync(join(layer.dir, 'configure.sh'))) {
          await runCommand('chroot', [root, '/bin/sh', '-s'], { stdin: await readFile(join(layer.dir, 'configure.sh'), 'utf8') });
        }
      }
      await rm(join(root, 'var/cache/apt/archives'), { recursive: true, force: true });

      const kernel = await this.kernelFiles(root, out);
      await this.installGrub(root);
      const raw = join(out, 'disk.raw');
      await this.makeDisk(root, raw, sizeBytes);
      await runCommand('qemu-img', ['convert', '-O', 'qcow2', raw, join(out, 'disk.qcow2')]);
      await rm(raw);

      const built: VmImage = {
        name: image.name,
        disk: join(final, 'disk.qcow2'),
        kernel: { path: join(final, 'vmlinuz'), initrd: join(final, 'initrd.img'), cmdline: vm?.cmdline ?? kernel.cmdline },
      };
      await writeFile(join(out, 'image.json'), `${JSON.stringify(built, null, 2)}\n`);
      // Bases are shared by every lab: nobody writes them.
      for (const f of await readdir(out)) await chmod(join(out, f), 0o444);
      await chmod(out, 0o755);
      await rm(final, { recursive: true, force: true });
      await rename(out, final);
      return built;
    } catch (err) {
      await rm(out, { recursive: true, force: true });
      throw err;
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }

  /**
   * The Debian tree, from a tarball of an earlier debootstrap with the same
   * packages when there is one: changing an image's own files (rootfs/,
   * configure.sh) then costs seconds, not a download and a kernel install.
   */
  private async debootstrap(spec: NonNullable<CatalogImage['definition']['debootstrap']>, root: string): Promise<void> {
    const key = sha256(JSON.stringify([spec.suite, spec.variant, [...spec.include].sort(), this.options.debianMirror])).slice(0, 12);
    const cache = join(this.options.workDir, `debootstrap-${key}.tar`);
    const tarFlags = ['--numeric-owner', '--xattrs', '--xattrs-include=*'];
    if (existsSync(cache)) {
      await runCommand('tar', ['-C', root, ...tarFlags, '-xf', cache]);
      return;
    }
    const include = spec.include.length ? [`--include=${spec.include.join(',')}`] : [];
    await runCommand('debootstrap', [`--variant=${spec.variant}`, ...include, spec.suite, root, this.options.debianMirror]);
    await runCommand('tar', ['-C', root, ...tarFlags, '-cf', `${cache}.partial`, '.']);
    await rename(`${cache}.partial`, cache);
  }

  /** Copies the newest kernel and its initrd out of the tree, and points /vmlinuz and /initrd.img at them for GRUB. */
  private async kernelFiles(root: string, out: string): Promise<{ cmdline: string }> {
    const versions = (await readdir(join(root, 'boot')))
      .filter((f) => f.startsWith('vmlinuz-'))
      .map((f) => f.slice('vmlinuz-'.length))
      .sort();
    const version = versions.at(-1);
    if (!version) throw new EnvironmentError(`the image has no kernel in /boot: add linux-image-amd64 to debootstrap.include`);
    if (!existsSync(join(root, `boot/initrd.img-${version}`))) throw new EnvironmentError(`the image has no initrd for kernel ${version} (is initramfs-tools installed?)`);
    await runCommand('cp', [join(root, `boot/vmlinuz-${version}`), join(out, 'vmlinuz')]);
    await runCommand('cp', [join(root, `boot/initrd.img-${version}`), join(out, 'initrd.img')]);
    for (const [link, target] of [['vmlinuz', `boot/vmlinuz-${version}`], ['initrd.img', `boot/initrd.img-${version}`]] as const) {
      await rm(join(root, link), { force: true });
      await symlink(target, join(root, link));
    }
    return { cmdline: 'root=LABEL=root ro console=ttyS0,115200' };
  }

  /** GRUB for BIOS boot, from the image's own grub-pc-bin: modules in /boot/grub, a core image that finds them. */
  private async installGrub(root: string): Promise<void> {
    if (!existsSync(join(root, 'usr/lib/grub/i386-pc/boot.img'))) return; // no GRUB: the image boots by kernel only
    if (!existsSync(join(root, 'boot/grub/grub.cfg'))) throw new EnvironmentError('the image has GRUB but no boot/grub/grub.cfg in its rootfs/');
    await runCommand('cp', ['-rT', join(root, 'usr/lib/grub/i386-pc'), join(root, 'boot/grub/i386-pc')]);
    await runCommand('chroot', [root, 'grub-mkimage', '-O', 'i386-pc', '-o', '/boot/grub/i386-pc/core.img', '-p', '(hd0,msdos1)/boot/grub', 'biosdisk', 'part_msdos', 'ext2']);
  }

  /**
   * A raw disk: an MBR with one bootable Linux partition at 1 MiB holding an
   * ext4 filesystem labelled "root" made from the tree; GRUB's boot sector in
   * the MBR's code area and its core image right after it. The boot sector's
   * defaults already say "core image at sector 1", and grub-mkimage records
   * the core's length in it, so nothing needs patching.
   */
  private async makeDisk(root: string, raw: string, sizeBytes: number): Promise<void> {
    await writeFile(raw, '');
    await truncate(raw, sizeBytes);
    await runCommand('sfdisk', ['-q', raw], { stdin: `label: dos\nstart=${PARTITION_OFFSET / 512}, type=83, bootable\n` });
    const fsKiB = (sizeBytes - PARTITION_OFFSET) / 1024;
    await runCommand('mkfs.ext4', ['-q', '-F', '-L', 'root', '-d', root, '-E', `offset=${PARTITION_OFFSET}`, raw, `${fsKiB}k`]);
    const grub = join(root, 'boot/grub/i386-pc');
    if (!existsSync(join(grub, 'core.img'))) return;
    const [boot, core] = await Promise.all([readFile(join(grub, 'boot.img')), readFile(join(grub, 'core.img'))]);
    if (core.length > PARTITION_OFFSET - 512) throw new EnvironmentError(`GRUB's core image (${core.length} bytes) does not fit before the partition`);
    const file = await open(raw, 'r+');
    try {
      await file.write(boot, 0, 440, 0); // the code area only: the partition table after it stays
      await file.write(core, 0, core.length, 512);
    } finally {
      await file.close();
    }
  }
}

/** The image, if it can be a VM's. */
function vmImage(image: CatalogImage): CatalogImage {
  if (image.definition.provider !== 'libvirt') throw new InputError(`image ${image.name} is a ${image.definition.provider} image, not a VM image`);
  if (!image.definition.debootstrap && image.definition.vm?.disk === undefined && !image.parent) {
    throw new InputError(`image ${image.name}: a VM image needs "debootstrap" (built here), "from" (a VM image it builds on) or "vm.disk" (a qcow2 made elsewhere)`);
  }
  return image;
}
