export * from './audit-log.js';
export * from './anchor.js';
