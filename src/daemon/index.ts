export * from './app.js';
export * from './compose.js';
export * from './config.js';
export * from './daemon.js';
export * from './demo.js';
export * from './records.js';
export * from './settings.js';
