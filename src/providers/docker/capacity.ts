import { readdir, readFile, readlink, statfs } from 'node:fs/promises';
import type Dockerode from 'dockerode';
import { freeSubnetCount } from '../addressing.js';
import type { HostCapacity } from '../types.js';

/**
 * The Docker host as the engine reports it (memory, CPUs: right for a
 * remote engine too), plus what only the local kernel can tell: free disk
 * where the engine keeps containers, and the inotify instances left.
 */
export async function dockerCapacity(docker: Dockerode, subnetPool: string, subnetsInUse: readonly string[], local: boolean): Promise<HostCapacity> {
  const info = (await docker.info()) as { MemTotal: number; NCPU: number; DockerRootDir?: string };
  const capacity: HostCapacity = { provider: 'docker', memoryBytes: info.MemTotal, cpus: info.NCPU, freeSubnets: freeSubnetCount(subnetPool, subnetsInUse) };
  if (!local) return capacity;
  if (info.DockerRootDir) {
    const fs = await statfs(info.DockerRootDir).catch(() => undefined);
    if (fs) capacity.diskFreeBytes = fs.bavail * fs.bsize;
  }
  const limit = Number((await readFile('/proc/sys/fs/inotify/max_user_instances', 'utf8').catch(() => '')).trim());
  if (limit) capacity.inotifyInstancesFree = limit - (await inotifyInstancesInUse());
  return capacity;
}

/** inotify instances open on this host (they count against root's limit, the user of every lab container). */
async function inotifyInstancesInUse(): Promise<number> {
  let count = 0;
  for (const pid of await readdir('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    const fds = await readdir(`/proc/${pid}/fd`).catch(() => [] as string[]);
    for (const fd of fds) if ((await readlink(`/proc/${pid}/fd/${fd}`).catch(() => '')) === 'anon_inode:inotify') count++;
  }
  return count;
}
