import { existsSync } from 'node:fs';
import { mkdir, rm, symlink } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * A systemd container sees its own cgroup and nothing else.
 *
 * systemd inside a container must write to its cgroup (one per unit). The
 * usual recipe, the host's whole /sys/fs/cgroup bound in, lets root in one
 * lab freeze, starve or watch every other container of the host. Instead, on
 * a cgroup v1 host, the container gets a private cgroup namespace, an empty
 * /sys/fs/cgroup, and only its own directory of the named `systemd`
 * hierarchy bound rw at /sys/fs/cgroup/systemd: no controller of any kind,
 * no other container. The container's id (hence its cgroup's path) is known
 * only once it is created, so the bind's source is a fixed link made between
 * create and start, pointing at a cgroup directory made in advance (runc uses
 * an existing one as is).
 */
export class CgroupIsolation {
  /** Where the links live: one per container, by name. */
  static readonly LINKS = '/run/examlab/cgroup-links';
  /** The cgroup parent of lab containers, so their cgroup path is known. */
  static readonly PARENT = '/examlab';
  private static readonly HIERARCHY = '/sys/fs/cgroup/systemd';

  /** Only a cgroup v1 host with a named systemd hierarchy, seen from this process (a local engine). */
  static available(): boolean {
    return existsSync(join(CgroupIsolation.HIERARCHY, 'cgroup.procs'));
  }

  /** What the container is created with. */
  static hostConfig(containerName: string): { CgroupnsMode: 'private'; CgroupParent: string; Tmpfs: Record<string, string>; Binds: string[] } {
    return {
      CgroupnsMode: 'private',
      CgroupParent: CgroupIsolation.PARENT,
      Tmpfs: { '/sys/fs/cgroup': 'rw,nosuid,nodev,noexec,size=64k' },
      Binds: [`${join(CgroupIsolation.LINKS, containerName)}:/sys/fs/cgroup/systemd:rw`],
    };
  }

  /** Between create and (every) start: the container's cgroup directory and the link to it. */
  static async prepare(containerName: string, containerId: string): Promise<void> {
    const cgroup = join(CgroupIsolation.HIERARCHY, CgroupIsolation.PARENT, containerId);
    await mkdir(cgroup, { recursive: true });
    await mkdir(CgroupIsolation.LINKS, { recursive: true, mode: 0o700 });
    const link = join(CgroupIsolation.LINKS, containerName);
    await rm(link, { force: true, recursive: true });
    await symlink(cgroup, link);
  }

  static async release(containerName: string): Promise<void> {
    await rm(join(CgroupIsolation.LINKS, containerName), { force: true });
  }
}
