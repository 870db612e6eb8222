export * from './grader.js';
export * from './results.js';
export * from './scoring.js';
export * from './toolbox.js';
export { runOnMachine, type FragmentRun, type MachineFragment } from './machine-run.js';
export { runPowershellChecks } from './powershell-run.js';
