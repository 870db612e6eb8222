import type { Logger } from 'pino';
import type { Provider } from '../types.js';
import type { LibvirtProviderOptions } from './libvirt-provider.js';

export { detectAcceleration, probeKernelOf, rememberedAcceleration, type Acceleration } from './accel.js';
export { VmImageBuilder, type VmImage, type VmBuilderOptions } from './image-builder.js';
export { vmImages } from './images.js';
export type { LibvirtProviderOptions } from './libvirt-provider.js';

/** Connects to libvirtd. The native binding is loaded only now: a Docker-only lab never needs libvirtd. */
export async function startLibvirtProvider(log: Logger, options: LibvirtProviderOptions): Promise<Provider> {
  const { LibvirtProvider } = await import('./libvirt-provider.js');
  return LibvirtProvider.start(log, options);
}
