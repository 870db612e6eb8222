import type { BuiltImage, ImageBuilder } from '../../images/index.js';
import type { DockerImageBuilder } from './image-builder.js';

/** Docker images as labs use them: a tag, and what the container needs to run it. */
export function dockerImages(builder: DockerImageBuilder): ImageBuilder {
  return {
    async ensure(image, options): Promise<BuiltImage> {
      await builder.ensure(image, options);
      return { ref: image.tag, systemd: image.runtime.systemd, capabilities: image.runtime.capabilities, bootable: false };
    },
    isBuilt: (image) => builder.isPresent(image.tag),
  };
}
