import type { Command } from 'commander';

/** What the lab commands do, loaded when one runs. */
const actions = () => import('../actions/lab.js');

export function registerLabCommands(program: Command): void {
  const lab = program.command('lab').description('Run single labs by hand');

  lab
    .command('up')
    .description('Provision a lab from a scenario: machines, setup, faults; prints how to connect')
    .argument('<file>', 'scenario YAML file')
    .option('--candidate <id>', 'candidate id (varies the per-candidate values)')
    .option('--fault <pool=option>', 'the option of a fault pool, instead of a draw (repeatable)', (value: string, previous: string[] = []) => [...previous, value])
    .option('--json', 'print the lab as JSON')
    .action(async (file: string, opts: { candidate?: string; fault?: string[]; json?: boolean }) => (await actions()).labUp(program, file, opts));

  lab
    .command('ls')
    .description('List labs')
    .option('--all', 'include destroyed labs')
    .option('--json', 'print as JSON')
    .action(async (opts: { all?: boolean; json?: boolean }) => (await actions()).labLs(program, opts));

  lab
    .command('show')
    .description('Show a lab: state, machines, how the candidate connects, and the instructions as the candidate reads them')
    .argument('<id>', 'lab id')
    .option('--lang <language>', 'language of the instructions (fr, en)')
    .option('--json', 'print as JSON')
    .action(async (id: string, opts: { lang?: string; json?: boolean }) => (await actions()).labShow(program, id, opts));

  lab
    .command('grade')
    .description('Grade a lab now; exit 1 when the score is under the pass mark or a check could not be decided')
    .argument('<id>', 'lab id')
    .option('--json', 'print the run as JSON')
    .action(async (id: string, opts: { json?: boolean }) => (await actions()).labGrade(program, id, opts));

  lab
    .command('down')
    .description('Destroy a lab: no container, network or volume of it survives')
    .argument('<id>', 'lab id')
    .action(async (id: string) => (await actions()).labDown(program, id));
}
