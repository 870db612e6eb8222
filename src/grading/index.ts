export * from './grader.js';
export * from './results.js';
export * from './scoring.js';
export * from './toolbox.js';
export { runMachine, MAX_MACHINE_RUN_MS, type MachineAnswer, type MachineItem, type MachineRunner } from './machine-run.js';
export { decodeAnswers, encodeWork, MAX_PROBE_OUTPUT } from './probe-protocol.js';
export { sessionRunner } from './session-runner.js';
export { runPowershellScripts } from './powershell-run.js';
