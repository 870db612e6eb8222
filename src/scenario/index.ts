export { loadScenarioFile, parseScenario, scenarioWarnings, type LoadOptions, type LoadedScenario } from './load.js';
export { scenarioSchema, scenarioJsonSchema, SCENARIO_API_VERSION } from './schema.js';
export type { Scenario, Machine, Step, Check, Variable, ManualCriterion } from './schema.js';
export { renderDeep, renderText, findPlaceholders } from '../util/template.js';
export { renderScenario, rosterProblems } from './render.js';
export { resolveVariables } from './variables.js';
export { applyDraw, drawFaults, drawOf, drawVariables, everyOption, type DrawBasis, type FaultDraw } from './fault-pools.js';
export { newScenarioFolder } from './new-scenario.js';
export { ScenarioLibrary, type LibraryEntry } from './library.js';
