export * from './grader.js';
export * from './results.js';
export * from './scoring.js';
export * from './toolbox.js';
