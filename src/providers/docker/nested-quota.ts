import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';
import { EnvironmentError, errorMessage } from '../../util/errors.js';

const execFileAsync = promisify(execFile);

/** Runs the host's `btrfs` with these arguments; its stdout. */
export type BtrfsRunner = (args: string[]) => Promise<string>;
const runBtrfs: BtrfsRunner = async (args) => (await execFileAsync('btrfs', args, { timeout: 30_000 })).stdout;

/**
 * The engine bounds a container's disk with a quota on its btrfs subvolume
 * (0/ID). Root in the container may create subvolumes and snapshots of its
 * own (an unprivileged ioctl), each with a quota group of its own: what is
 * written there would escape that bound and could fill the engine's
 * filesystem for every lab. With simple quotas the kernel puts a new
 * subvolume into its parent's level-1 group when the parent is in exactly
 * one. So every container's subvolume gets a level-1 group of its own
 * (1/ID), bounded like it: the container and whatever subvolumes it makes
 * share one room.
 *
 * On removal the bound is lifted first (btrfs cannot delete a subvolume
 * whose group is full), and the level-1 group is destroyed after.
 */
export class NestedQuota {
  constructor(
    /** The engine's data root (on this host). */
    private readonly dataRoot: string,
    private readonly btrfs: BtrfsRunner = runBtrfs,
  ) {}

  /** Bounds the container and every subvolume it will make to `bytes` in all. */
  async bound(containerId: string, bytes: number): Promise<void> {
    const id = await this.subvolumeOf(containerId);
    try {
      await this.btrfs(['qgroup', 'create', `1/${id}`, this.dataRoot]);
      await this.btrfs(['qgroup', 'assign', `0/${id}`, `1/${id}`, this.dataRoot]);
      await this.btrfs(['qgroup', 'limit', String(bytes), `1/${id}`, this.dataRoot]);
    } catch (err) {
      throw new EnvironmentError(`cannot bound the subvolumes of container ${containerId} (quota group 1/${id}): ${errorMessage(err)}`);
    }
  }

  /**
   * Lifts the bound of a container about to be removed; returns what
   * destroys its level-1 group once it is. Undefined for a container that
   * has none (made before, or whose layer is gone).
   */
  async release(containerId: string): Promise<(() => Promise<void>) | undefined> {
    const id = await this.subvolumeOf(containerId).catch(() => undefined);
    if (id === undefined) return undefined;
    const group = `1/${id}`;
    const present = await this.btrfs(['qgroup', 'limit', 'none', group, this.dataRoot]).then(
      () => true,
      () => false,
    );
    if (!present) return undefined;
    return async () => {
      // A group with members cannot be destroyed: the container's and its subvolumes' (stale once deleted) leave it first.
      for (const child of await this.membersOf(group)) await this.btrfs(['qgroup', 'remove', child, group, this.dataRoot]).catch(() => undefined);
      await this.btrfs(['qgroup', 'destroy', group, this.dataRoot]);
    };
  }

  /** The members of a group, from `btrfs qgroup show -c` (its fourth column: a comma-separated list, or "-"). */
  private async membersOf(group: string): Promise<string[]> {
    const table = await this.btrfs(['qgroup', 'show', '-c', '--raw', this.dataRoot]);
    const row = table.split('\n').find((line) => line.split(/\s+/)[0] === group);
    return (row?.split(/\s+/)[3] ?? '').split(',').filter((c) => /^0\/\d+$/.test(c));
  }

  /** The btrfs subvolume id of a container's writable layer, through the engine's own record of its layer. */
  private async subvolumeOf(containerId: string): Promise<string> {
    if (!/^[0-9a-f]{64}$/.test(containerId)) throw new EnvironmentError(`not a container id: ${containerId}`);
    const layer = (await readFile(`${this.dataRoot}/image/btrfs/layerdb/mounts/${containerId}/mount-id`, 'utf8')).trim();
    if (!/^[0-9a-f]{64}$/.test(layer)) throw new EnvironmentError(`container ${containerId} has no layer id the engine recorded`);
    const id = (await this.btrfs(['inspect-internal', 'rootid', `${this.dataRoot}/btrfs/subvolumes/${layer}`])).trim();
    if (!/^\d+$/.test(id)) throw new EnvironmentError(`the layer of container ${containerId} is not a btrfs subvolume (rootid said ${JSON.stringify(id)})`);
    return id;
  }
}
