import { randomBytes } from 'node:crypto';
import { readdir, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, relative, sep } from 'node:path';
import type { Logger } from 'pino';
import type { HostConnection } from '../../remote/index.js';
import { EnvironmentError } from '../../util/errors.js';
import { sha256 } from '../../util/ids.js';

/** Time to copy one file of an image (a disk of a few GB at tens of MB/s over SSH). */
const FILE_COPY_TIMEOUT_MS = 30 * 60_000;

/**
 * VM images on a lab host. A built image is a folder of this host,
 * <imagesDir>/<name>-<hash>/, whose name carries a hash of its definition:
 * the same name is the same content. Before a VM of an image is created on
 * the host, the folder is copied to <remote imagesDir>/<same name>/ unless
 * it is there already, so an image crosses the network once per host.
 *
 * A copy is written to a folder of its own and renamed into place when
 * complete: a half copy (an interrupted daemon, a dropped connection) is
 * never used as an image. Labs of this process that need the same image
 * at once wait for one copy. A disk made elsewhere (an image's `vm.disk`,
 * outside <imagesDir>) is named by its path, size and modification time.
 */
export class ImageCopies {
  private readonly copies = new Map<string, Promise<void>>();

  constructor(
    private readonly connection: HostConnection,
    private readonly localDir: string,
    private readonly remoteDir: string,
    private readonly log: Logger,
  ) {}

  /** The lab host's path of a file of an image of this host (its disk, its kernel), copying the image there first when missing. */
  async pathOf(localFile: string): Promise<string> {
    const { folder, files, source } = await this.folderOf(localFile);
    let copy = this.copies.get(folder);
    if (!copy) {
      copy = this.ensure(folder, source, files);
      this.copies.set(folder, copy);
      copy.catch(() => this.copies.delete(folder));
    }
    await copy;
    return join(this.remoteDir, folder, basename(localFile));
  }

  /** The folder an image file belongs to, named as on the host, and the files that make it. */
  private async folderOf(localFile: string): Promise<{ folder: string; source: string; files: string[] }> {
    const inside = relative(this.localDir, localFile);
    if (inside && !inside.startsWith('..') && inside.split(sep).length === 2) {
      const source = dirname(localFile);
      return { folder: basename(source), source, files: (await readdir(source)).sort() };
    }
    const real = await realpath(localFile);
    const info = await stat(real);
    const folder = `${basename(real).replace(/[^A-Za-z0-9._-]/g, '_')}-${sha256(`${real}\n${info.size}\n${info.mtimeMs}`).slice(0, 12)}`;
    return { folder, source: dirname(real), files: [basename(real)] };
  }

  private async ensure(folder: string, source: string, files: string[]): Promise<void> {
    const target = join(this.remoteDir, folder);
    if (await this.present(target, source, files)) return;
    const started = Date.now();
    const partial = `${target}.partial-${randomBytes(4).toString('hex')}`;
    try {
      await this.connection.mkdir(partial, { mode: 0o755 });
      let bytes = 0;
      for (const file of files) {
        await this.connection.upload(join(source, file), join(partial, file), { mode: 0o444, timeoutMs: FILE_COPY_TIMEOUT_MS });
        bytes += (await stat(join(source, file))).size;
      }
      // Another process may have finished the same copy meanwhile: theirs is as good.
      if (!(await this.connection.renameNew(partial, target))) await this.connection.rm([partial]);
      this.log.info({ image: folder, host: this.connection.label, megabytes: Math.round(bytes / 1e6), seconds: (Date.now() - started) / 1000 }, 'VM image copied to the lab host');
    } catch (err) {
      await this.connection.rm([partial]).catch(() => undefined);
      throw err;
    }
  }

  /** Whether the host has the image's folder, with every file at its size (anything else there is not ours to replace). */
  private async present(target: string, source: string, files: string[]): Promise<boolean> {
    if ((await this.connection.stat(target)) === undefined) return false;
    for (const file of files) {
      const [there, here] = await Promise.all([this.connection.stat(join(target, file)), stat(join(source, file))]);
      if (there?.size !== here.size) {
        throw new EnvironmentError(`the copy of VM image ${basename(target)} on ${this.connection.label} is damaged (${file}: ${there ? `${there.size} bytes, not ${here.size}` : 'missing'}); remove ${target} there to copy it again`);
      }
    }
    return true;
  }
}
