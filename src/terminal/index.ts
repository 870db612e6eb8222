export * from './lab-shell.js';
export * from './recordings.js';
