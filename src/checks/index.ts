export * from './registry.js';
export { fieldPattern } from './fields.js';
export { unitCgroup, unitName } from './kinds/service.js';
export { parseProcessLines, type ProbeProcess } from './kinds/processes.js';
