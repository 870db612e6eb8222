import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import type Dockerode from 'dockerode';

/** What a container may write on top of its image when the scenario does not say. */
export const DEFAULT_CONTAINER_DISK = 2 * 1024 ** 3;

/**
 * How this engine bounds a container's disk (`--storage-opt size`):
 * - `btrfs`: a quota on the container's subvolume. With simple quotas (what
 *   scripts/engines.sh sets up) it counts what the container writes: the
 *   size is the room. With full quotas it counts all the container
 *   references, its image included: the size is the image's plus the room
 *   (also what is assumed for an engine on another host, whose mode cannot
 *   be read from here: at worst the bound is looser by the image's size);
 * - `xfs`: overlay2 on XFS with project quotas counts the writable layer
 *   only: the size is the room;
 * - `none`: not bounded (overlay2 on ext4, for one): a candidate can fill
 *   the engine's filesystem. Said once, in the log and by `examlab doctor`.
 */
export type DiskQuota = { kind: 'btrfs'; counts: 'written' | 'referenced' } | { kind: 'xfs' } | { kind: 'none'; why: string };

export async function diskQuotaOf(docker: Dockerode, local: boolean): Promise<DiskQuota> {
  const info = (await docker.info()) as { Driver?: string; DriverStatus?: Array<[string, string]>; DockerRootDir?: string };
  const status = new Map(info.DriverStatus ?? []);
  if (info.Driver === 'btrfs') {
    const mode = local && info.DockerRootDir ? await btrfsQuotaMode(info.DockerRootDir) : undefined;
    return { kind: 'btrfs', counts: mode === 'squota' ? 'written' : 'referenced' };
  }
  const backing = status.get('Backing Filesystem') ?? 'unknown';
  // Docker reports project quota support nowhere but at container creation; XFS without pquota fails there, loudly.
  if (info.Driver === 'overlay2' && backing === 'xfs') return { kind: 'xfs' };
  return { kind: 'none', why: `storage driver ${info.Driver ?? 'unknown'} on ${backing}: put Docker's data root on btrfs, or on XFS mounted with pquota (scripts/engines.sh does the former)` };
}

/** The quota mode (`squota`, `qgroup`) of the btrfs filesystem holding `dir`, read from the kernel. */
async function btrfsQuotaMode(dir: string): Promise<string | undefined> {
  const mounts = (await readFile('/proc/self/mountinfo', 'utf8').catch(() => ''))
    .split('\n')
    .map((line) => {
      const [before, after] = line.split(' - ');
      return { point: before?.split(' ')[4] ?? '', type: after?.split(' ')[0], source: after?.split(' ')[1] ?? '' };
    })
    .filter((m) => m.type === 'btrfs' && (dir === m.point || dir.startsWith(`${m.point}/`)))
    .sort((a, b) => b.point.length - a.point.length);
  const device = mounts[0] ? basename(mounts[0].source) : undefined;
  if (!device) return undefined;
  for (const uuid of await readdir('/sys/fs/btrfs').catch(() => [] as string[])) {
    if (!existsSync(`/sys/fs/btrfs/${uuid}/devices/${device}`)) continue;
    return (await readFile(`/sys/fs/btrfs/${uuid}/qgroups/mode`, 'utf8').catch(() => '')).trim() || undefined;
  }
  return undefined;
}

/** The engine's `size` storage option for a machine that may write `roomBytes`, or none when the engine cannot bound it. */
export async function storageOptFor(docker: Dockerode, quota: DiskQuota, image: string, roomBytes: number): Promise<Record<string, string> | undefined> {
  if (quota.kind === 'none') return undefined;
  if (quota.kind === 'xfs' || quota.counts === 'written') return { size: String(roomBytes) };
  const { Size } = await docker.getImage(image).inspect();
  return { size: String(Size + roomBytes) };
}
