import { join } from 'node:path';
import type Dockerode from 'dockerode';
import { PACKAGE_ROOT, loadConfig } from '../../src/daemon/config.js';
import { ImageCatalog } from '../../src/images/index.js';
import { DockerImageBuilder } from '../../src/providers/docker/index.js';
import { createLogger } from '../../src/util/log.js';

/** The test images' own catalog folder: image folders in the project's format, built on its images. */
export const TEST_IMAGES_DIR = join(PACKAGE_ROOT, 'tests', 'hosts', 'images');

/**
 * An image of the project's catalog or of the tests' (`lab-host`), built
 * like the project builds its own: offline, on top of the catalog's current
 * parent, tagged by a hash of the definitions, only when that tag is missing.
 * Returns the tag (`examlab/<name>:<hash12>`).
 */
export async function ensureTestImage(docker: Dockerode, name: string): Promise<string> {
  const config = loadConfig();
  const catalog = await ImageCatalog.load(config.imagesDir, [TEST_IMAGES_DIR]);
  const image = catalog.get(name);
  const log = createLogger({ level: process.env.EXAMLAB_TEST_LOG ?? 'silent' });
  await new DockerImageBuilder(docker, log, { workDir: join(config.buildDir, 'rootfs'), debianMirror: config.debianMirror }).ensure(image);
  return image.tag;
}

/**
 * The lab host image (tests/hosts/images/lab-host on the current `base`).
 * Its first build takes a minute or two (docker.io from Debian's mirror);
 * later runs find it.
 */
export function ensureLabHostImage(docker: Dockerode): Promise<string> {
  return ensureTestImage(docker, 'lab-host');
}

/**
 * The VM host image (tests/hosts/images/vm-host on the lab host image): a
 * lab host with libvirtd and QEMU. About 25 s on top of the lab host's
 * first build (Debian's packages); later runs find it.
 */
export function ensureVmHostImage(docker: Dockerode): Promise<string> {
  return ensureTestImage(docker, 'vm-host');
}
