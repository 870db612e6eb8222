export * from './catalog.js';
export * from './image-service.js';
