export * from './addressing.js';
export * from './labels.js';
export * from './registry.js';
export * from './types.js';
