import type Dockerode from 'dockerode';
import { EnvironmentError, errorMessage } from '../../util/errors.js';
import { runOnce } from './one-shot.js';

/**
 * Root in a container can nest directories past the kernel's path limit
 * (4096 bytes). Docker's btrfs driver walks a layer by full path before it
 * deletes it, so it then cannot remove the container ("file name too long")
 * and the layer stays on the engine's disk for good. That layer is emptied
 * here, on the engine's own host, by a one-shot container that mounts the
 * engine's data root: GNU rm walks by directory descriptor, at any depth.
 * Then the removal can go through.
 */

/** Whether a removal failed on a path too long for the engine to walk. */
export function isPathTooLong(err: unknown): boolean {
  return /file name too long/i.test(errorMessage(err));
}

/** The storage drivers whose writable layer the helper knows how to find (SCRIPT). */
const DRIVERS = ['btrfs', 'overlay2'];

/** Emptying a layer of a few GiB of small files takes a while on a busy disk; a bound all the same. */
const CLEAR_TIMEOUT_MS = 300_000;

/**
 * The helper's script: the layer's directory from the engine's own record
 * of the container ($1: container id, $2: driver), checked to be a layer
 * id, then everything in it removed. Nested btrfs subvolumes (unprivileged
 * root may make them) are emptied too; the engine deletes them once it can
 * walk them, so rm's complaint about their roots is not a failure.
 */
const SCRIPT = `set -eu
id=$(cat "/engine/image/$2/layerdb/mounts/$1/mount-id")
case "$id" in *[!0-9a-f]*|'') echo "not a layer id: $id" >&2; exit 3 ;; esac
[ \${#id} -eq 64 ] || { echo "not a layer id: $id" >&2; exit 3; }
case "$2" in
  btrfs) dir=/engine/btrfs/subvolumes/$id ;;
  overlay2) dir=/engine/overlay2/$id/diff ;;
  *) echo "unknown storage driver $2" >&2; exit 3 ;;
esac
[ -d "$dir" ] || { echo "no layer at $dir" >&2; exit 3; }
find "$dir" -mindepth 1 -maxdepth 1 -exec rm -rf -- {} + || true
`;

/** Empties the writable layer of `container` (stopped or dead), so that the engine can remove it. */
export async function clearLayer(docker: Dockerode, container: Dockerode.Container): Promise<void> {
  const [info, inspected] = await Promise.all([docker.info() as Promise<{ DockerRootDir?: string; Driver?: string }>, container.inspect()]);
  const root = info.DockerRootDir;
  const driver = info.Driver ?? '';
  if (!root || !DRIVERS.includes(driver)) throw new EnvironmentError(`container ${inspected.Id} holds paths too long for the engine to remove, and examlab cannot empty a layer of the "${driver}" storage driver`);
  // The container's own image: one of examlab's, Debian-based (GNU find and rm), present on that engine.
  await runOnce(
    docker,
    {
      Image: inspected.Image,
      Entrypoint: ['/bin/sh', '-c', SCRIPT, 'clear-layer'],
      Cmd: [inspected.Id, driver],
      User: '0:0',
      Labels: { 'examlab.managed': 'true', 'examlab.role': 'clear-layer' },
      HostConfig: { Binds: [`${root}:/engine`], NetworkMode: 'none', CapDrop: ['ALL'], CapAdd: ['DAC_OVERRIDE', 'FOWNER', 'DAC_READ_SEARCH'] },
    },
    `emptying the layer of container ${inspected.Id}`,
    CLEAR_TIMEOUT_MS,
  );
}
