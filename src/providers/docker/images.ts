import type { BuiltImage, ImageBuilder, ImageCatalog } from '../../images/index.js';
import type { DockerImageBuilder } from './image-builder.js';

/** Docker images as labs use them: a tag, and what the container needs to run it. */
export function dockerImages(builder: DockerImageBuilder, catalog: ImageCatalog): ImageBuilder {
  return {
    async ensure(name, options): Promise<BuiltImage> {
      const image = await builder.ensure(name, options);
      return { ref: image.tag, systemd: image.runtime.systemd, capabilities: image.runtime.capabilities, bootable: false };
    },
    isBuilt: (name) => builder.isPresent(catalog.get(name).tag),
  };
}
