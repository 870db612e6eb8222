export * from './console.js';
export * from './lab-service.js';
export * from './lab-store.js';
export * from './scenario-test.js';
export * from './states.js';
export * from './topology.js';
export { LabMachineAccess, gradingAccess } from './access.js';
export type { MachineAccess, PlacedMachine } from './machine-access.js';
export * from './capacity.js';
