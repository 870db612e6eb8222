import type { Logger } from 'pino';
import type { Provider } from '../types.js';
import type { LibvirtProviderOptions } from './libvirt-provider.js';

export { detectAcceleration, probeKernelOf, rememberedAcceleration, type Acceleration } from './accel.js';
export { VmImageBuilder, type VmImage, type VmBuilderOptions } from './image-builder.js';
export { vmImages } from './images.js';
export type { LabHostLibvirtOptions } from './lab-host.js';
export type { LibvirtProviderOptions } from './libvirt-provider.js';

/**
 * Connects to libvirtd. The native binding is loaded only now: a Docker-only lab never needs libvirtd.
 *
 * This host's: `{ uri: 'qemu:///system', labsDir, imagesDir, accelerationCache }`.
 * A lab host's: `uri` is `qemu+ssh://user@host[:port]/system` and `labHost`
 * gives its SSH key file, its pinned host key and a private folder of this
 * host for libvirtd's forwarded socket; `labsDir` is then that host's
 * folder, `imagesDir` still this host's (images are copied from it), and
 * `accelerationCache` a file of this host of the lab host's own.
 */
export async function startLibvirtProvider(log: Logger, options: LibvirtProviderOptions): Promise<Provider> {
  const { LibvirtProvider } = await import('./libvirt-provider.js');
  return LibvirtProvider.start(log, options);
}
