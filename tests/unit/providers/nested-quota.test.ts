import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, test } from '@jest/globals';
import { NestedQuota } from '../../../src/providers/docker/nested-quota.js';

const CONTAINER = 'c'.repeat(64);
const LAYER = 'a'.repeat(64);

/** btrfs as the kernel would answer: subvolume 3892 holds the layer, its level-1 group 1/3892 has the members given. */
function fakeBtrfs(members: string) {
  const calls: string[] = [];
  const run = async (args: string[]) => {
    calls.push(args.join(' '));
    if (args[0] === 'inspect-internal') return '3892\n';
    if (args[0] === 'qgroup' && args[1] === 'show') {
      return `Qgroupid    Referenced    Exclusive Child           Path \n--------    ----------    --------- -----           ---- \n0/3892          360448       360448 -               <stale>\n1/3892       209715200    209715200 ${members} <0 member qgroups>\n`;
    }
    return '';
  };
  return { calls, run };
}

describe('a container and the subvolumes it makes share one quota group', () => {
  let root: string;
  afterEach(() => rmSync(root, { recursive: true, force: true }));
  const dataRoot = () => {
    root = mkdtempSync(join(tmpdir(), 'examlab-docker-root-'));
    mkdirSync(join(root, 'image/btrfs/layerdb/mounts', CONTAINER), { recursive: true });
    writeFileSync(join(root, 'image/btrfs/layerdb/mounts', CONTAINER, 'mount-id'), LAYER);
    return root;
  };

  test('bound: a level-1 group for the layer\'s subvolume, the container in it, the room as its limit', async () => {
    const btrfs = fakeBtrfs('-');
    await new NestedQuota(dataRoot(), btrfs.run).bound(CONTAINER, 200 * 1024 ** 2);
    expect(btrfs.calls).toEqual([
      `inspect-internal rootid ${root}/btrfs/subvolumes/${LAYER}`,
      `qgroup create 1/3892 ${root}`,
      `qgroup assign 0/3892 1/3892 ${root}`,
      `qgroup limit 209715200 1/3892 ${root}`,
    ]);
  });

  test('release: the limit lifted before the removal; after it, every member leaves the group and the group goes', async () => {
    const btrfs = fakeBtrfs('0/3892,0/3893');
    const after = await new NestedQuota(dataRoot(), btrfs.run).release(CONTAINER);
    expect(btrfs.calls).toEqual([`inspect-internal rootid ${root}/btrfs/subvolumes/${LAYER}`, `qgroup limit none 1/3892 ${root}`]);
    await after?.();
    expect(btrfs.calls.slice(2)).toEqual([`qgroup show -c --raw ${root}`, `qgroup remove 0/3892 1/3892 ${root}`, `qgroup remove 0/3893 1/3892 ${root}`, `qgroup destroy 1/3892 ${root}`]);
  });

  test('a container without a group (made before), or whose layer is gone, has nothing to release', async () => {
    const btrfs = fakeBtrfs('-');
    const none = async (args: string[]) => (args[1] === 'limit' ? Promise.reject(new Error('ERROR: unable to limit requested quota group: No such file or directory')) : btrfs.run(args));
    expect(await new NestedQuota(dataRoot(), none).release(CONTAINER)).toBeUndefined();
    expect(await new NestedQuota(dataRoot(), btrfs.run).release('d'.repeat(64))).toBeUndefined();
  });

  test('ids are checked before any path is made of them', async () => {
    const btrfs = fakeBtrfs('-');
    await expect(new NestedQuota(dataRoot(), btrfs.run).bound('../../etc', 1)).rejects.toThrow(/not a container id/);
    writeFileSync(join(root, 'image/btrfs/layerdb/mounts', CONTAINER, 'mount-id'), '../../../x');
    await expect(new NestedQuota(root, btrfs.run).bound(CONTAINER, 1)).rejects.toThrow(/no layer id/);
    expect(btrfs.calls).toEqual([]);
  });
});
