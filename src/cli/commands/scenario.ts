import type { Command } from 'commander';

/** What the scenario commands do, loaded when one runs. */
const actions = () => import('../actions/scenario.js');

export function registerScenarioCommands(program: Command): void {
  const scenario = program.command('scenario').description('Write and prove scenarios');

  scenario
    .command('validate')
    .description('Check scenario files: every problem of a file at once, as FILE:LINE:COL path: message')
    .argument('<files...>', 'scenario YAML files')
    .option('--json', 'print the result as JSON')
    .action(async (files: string[], opts: { json?: boolean }) => (await actions()).scenarioValidate(program, files, opts));

  scenario
    .command('test')
    .description('Prove a scenario on the real engines: the faults break every check, the solution repairs them all')
    .argument('<file>', 'scenario YAML file')
    .option('--keep', 'on failure, leave the lab up and print how to get in (remove it with lab down)')
    .option('--json', 'print the report as JSON')
    .action(async (file: string, opts: { json?: boolean; keep?: boolean }) => (await actions()).scenarioTest(program, file, opts));

  scenario
    .command('new')
    .description('Start a scenario in a new folder from the template: the scenario, an image of its own, a file it uploads; it passes its test as is')
    .argument('<folder>', 'a new (or empty) folder')
    .option('--id <id>', 'the scenario id (default: the folder name)')
    .action(async (folder: string, opts: { id?: string }) => (await actions()).scenarioNew(folder, opts));

  scenario
    .command('schema')
    .description('Print the JSON Schema of the scenario format (for editors)')
    .action(async () => (await actions()).scenarioSchema());
}
