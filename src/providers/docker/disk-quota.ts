import type Dockerode from 'dockerode';

/** What a container may write on top of its image when the scenario does not say. */
export const DEFAULT_CONTAINER_DISK = 2 * 1024 ** 3;

/**
 * How this engine bounds a container's disk (`--storage-opt size`):
 * - `btrfs`: a quota on the container's subvolume, counting what it
 *   references, its image included: the size is the image's plus the room;
 * - `xfs`: overlay2 on XFS with project quotas counts the writable layer
 *   only: the size is the room;
 * - `none`: not bounded (overlay2 on ext4, for one): a candidate can fill
 *   the engine's filesystem. Said once, in the log and by `examlab doctor`.
 */
export type DiskQuota = { kind: 'btrfs' | 'xfs' } | { kind: 'none'; why: string };

export async function diskQuotaOf(docker: Dockerode): Promise<DiskQuota> {
  const info = (await docker.info()) as { Driver?: string; DriverStatus?: Array<[string, string]> };
  const status = new Map(info.DriverStatus ?? []);
  if (info.Driver === 'btrfs') return { kind: 'btrfs' };
  const backing = status.get('Backing Filesystem') ?? 'unknown';
  // Docker reports project quota support nowhere but at container creation; XFS without pquota fails there, loudly.
  if (info.Driver === 'overlay2' && backing === 'xfs') return { kind: 'xfs' };
  return { kind: 'none', why: `storage driver ${info.Driver ?? 'unknown'} on ${backing}: put Docker's data root on btrfs, or on XFS mounted with pquota (scripts/engines.sh does the former)` };
}

/** The engine's `size` storage option for a machine that may write `roomBytes`, or none when the engine cannot bound it. */
export async function storageOptFor(docker: Dockerode, quota: DiskQuota, image: string, roomBytes: number): Promise<Record<string, string> | undefined> {
  switch (quota.kind) {
    case 'none':
      return undefined;
    case 'xfs':
      return { size: String(roomBytes) };
    case 'btrfs': {
      const { Size } = await docker.getImage(image).inspect();
      return { size: String(Size + roomBytes) };
    }
  }
}
