export * from './deps.js';
export * from './http-app.js';
export * from './sockets.js';
export * from './metrics.js';
