import type { BuiltImage, ImageBuilder } from '../../images/index.js';
import type { VmImageBuilder } from './image-builder.js';

/** VM images as labs use them: a base disk that boots, with its kernel for direct boot when it has one. */
export function vmImages(builder: VmImageBuilder): ImageBuilder {
  return {
    async ensure(wanted, options): Promise<BuiltImage> {
      const image = await builder.ensure(wanted, options);
      return { ref: image.disk, systemd: true, capabilities: [], bootable: true, kernel: image.kernel };
    },
    isBuilt: async (image) => Boolean(await builder.find(image)),
    exportDisk: (image, dest) => builder.exportDisk(image, dest),
  };
}
