export * from './docker-provider.js';
export * from './image-builder.js';
