export * from './registry.js';
export { unitName } from './kinds/service.js';
export { parseProcessLines, type ProbeProcess } from './kinds/processes.js';
