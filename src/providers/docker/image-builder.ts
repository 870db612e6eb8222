import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { cp, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { EnvironmentError, errorMessage } from '../../util/errors.js';
import { Mutex } from '../../util/concurrency.js';
import { lineageOf, type BuildOptions, type CatalogImage } from '../../images/index.js';

export interface BuilderOptions {
  /** Scratch space for root filesystems (removed after import). */
  workDir: string;
  debianMirror: string;
}

/**
 * Builds catalog images on the Docker engine, offline from a registry: root
 * filesystems come from Debian packages (debootstrap, then import), the rest
 * are Dockerfiles on top. Only missing tags are built.
 */
export class DockerImageBuilder {
  private readonly locks = new Map<string, Mutex>();

  constructor(
    private readonly docker: Dockerode,
    private readonly log: Logger,
    private readonly options: BuilderOptions,
  ) {}

  async isPresent(tag: string): Promise<boolean> {
    try {
      await this.docker.getImage(tag).inspect();
      return true;
    } catch {
      return false;
    }
  }

  /** Makes sure the image and its ancestors exist, building what is missing. */
  async ensure(wanted: CatalogImage, options: BuildOptions = {}): Promise<void> {
    for (const image of lineageOf(wanted)) {
      // By tag: two catalogs (examlab's, a trainer's) share their common ancestors.
      const lock = this.locks.get(image.tag) ?? new Mutex();
      this.locks.set(image.tag, lock);
      await lock.run(async () => {
        const force = options.force === true && image === wanted;
        if (!force && (await this.isPresent(image.tag))) return;
        const started = Date.now();
        this.log.info({ image: image.tag }, 'building image');
        await this.build(image, options);
        this.log.info({ image: image.tag, seconds: Math.round((Date.now() - started) / 1000) }, 'image built');
      });
    }
  }

  private async build(image: CatalogImage, options: BuildOptions): Promise<void> {
    if (image.definition.provider !== 'docker') throw new EnvironmentError(`image ${image.name} is not a Docker image`);
    let base = image.parent?.tag;
    const hasDockerfile = existsSync(join(image.dir, 'Dockerfile'));
    if (image.definition.debootstrap) {
      const rootfsTag = hasDockerfile ? `examlab/${image.name}-rootfs:${image.hash.slice(0, 12)}` : image.tag;
      if (!(await this.isPresent(rootfsTag))) await this.importRootfs(image, rootfsTag);
      base = rootfsTag;
    }
    if (hasDockerfile) {
      if (!base) throw new EnvironmentError(`image ${image.name} has a Dockerfile but neither "from" nor "debootstrap"`);
      await this.buildDockerfile(image, base, options);
    }
  }

  private async importRootfs(image: CatalogImage, tag: string): Promise<void> {
    const spec = image.definition.debootstrap as NonNullable<CatalogImage['definition']['debootstrap']>;
    const dir = join(this.options.workDir, `${image.name}-${image.hash.slice(0, 12)}`);
    await rm(dir, { recursive: true, force: true });
    await mkdir(dir, { recursive: true });
    try {
      const args = [`--variant=${spec.variant}`, ...(spec.include.length ? [`--include=${spec.include.join(',')}`] : []), spec.suite, dir, this.options.debianMirror];
      await run('debootstrap', args, this.log);
      // Host keys made by the package's postinst would be shared by every lab: each machine makes its own at boot.
      for (const f of await readdir(join(dir, 'etc/ssh')).catch(() => [] as string[])) {
        if (f.startsWith('ssh_host_')) await rm(join(dir, 'etc/ssh', f));
      }
      await rm(join(dir, 'var/cache/apt/archives'), { recursive: true, force: true });
      const tar = spawn('tar', ['-C', dir, '--numeric-owner', '-c', '.'], { stdio: ['ignore', 'pipe', 'pipe'] });
      const [repo, version] = tag.split(':') as [string, string];
      const stream = await this.docker.importImage(tar.stdout, { repo, tag: version });
      await this.follow(stream, tag);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private async buildDockerfile(image: CatalogImage, base: string, options: BuildOptions): Promise<void> {
    const context = image.vmDisks.length ? await this.contextWithDisks(image, options) : image.dir;
    try {
      const files = await listFiles(context);
      const stream = await this.docker.buildImage(
        { context, src: files },
        { t: image.tag, buildargs: { BASE: base }, labels: { 'examlab.image': image.name, 'examlab.hash': image.hash }, rm: true, forcerm: true },
      );
      await this.follow(stream, image.tag);
    } finally {
      if (context !== image.dir) await rm(context, { recursive: true, force: true });
    }
  }

  /** The image's folder plus the disks it carries, in vm-disks/ (a scratch copy: the image folder is never written). */
  private async contextWithDisks(image: CatalogImage, options: BuildOptions): Promise<string> {
    const { exportVmDisk } = options;
    if (!exportVmDisk) throw new EnvironmentError(`image ${image.name} carries VM disks (${image.vmDisks.map((d) => d.name).join(', ')}) and this build cannot export them`);
    const context = join(this.options.workDir, `${image.name}-${image.hash.slice(0, 12)}-context`);
    await rm(context, { recursive: true, force: true });
    await mkdir(join(context, 'vm-disks'), { recursive: true });
    try {
      await cp(image.dir, context, { recursive: true });
      for (const disk of image.vmDisks) {
        this.log.info({ image: image.tag, disk: disk.name }, 'exporting the VM disk the image carries');
        await exportVmDisk(disk, join(context, 'vm-disks', `${disk.name}.img.zst`));
      }
      return context;
    } catch (err) {
      await rm(context, { recursive: true, force: true });
      throw err;
    }
  }

  private follow(stream: NodeJS.ReadableStream, what: string): Promise<void> {
    const tail: string[] = [];
    return new Promise((resolve, reject) => {
      this.docker.modem.followProgress(
        stream,
        (err: Error | null, output: { error?: string }[]) => {
          const failure = err?.message ?? output.find((o) => o.error)?.error;
          if (failure) reject(new EnvironmentError(`building ${what} failed: ${failure}\n${tail.join('')}`));
          else resolve();
        },
        (event: { stream?: string; error?: string; status?: string }) => {
          const line = event.stream ?? event.status;
          if (line) {
            tail.push(line.endsWith('\n') ? line : `${line}\n`);
            if (tail.length > 30) tail.shift();
            this.log.debug({ image: what }, line.trimEnd());
          }
        },
      );
    });
  }
}

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${entry.name}` : entry.name;
    if (entry.isDirectory()) out.push(...(await listFiles(dir, rel)));
    else out.push(rel);
  }
  return out;
}

function run(command: string, args: string[], log: Logger): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const tail: string[] = [];
    const keep = (chunk: Buffer) => {
      tail.push(chunk.toString());
      if (tail.length > 20) tail.shift();
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (err) => reject(new EnvironmentError(`cannot run ${command}: ${errorMessage(err)} (is it installed? \`make deps\` installs it)`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else reject(new EnvironmentError(`${command} ${args.join(' ')} exited ${code}:\n${tail.join('').slice(-2000)}`));
      log.debug({ command, code }, 'command finished');
    });
  });
}
