export { DockerProvider, type DockerProviderOptions } from './docker-provider.js';
export { DockerImageBuilder, type BuilderOptions } from './image-builder.js';
export { dockerImages } from './images.js';
export type { GraderTools } from './grader-volume.js';
export { dockerConnection, localEngine, type DockerEngineAddress } from './engine-address.js';
