import type { Command } from 'commander';

/**
 * The end-to-end demo `make run` shows: a real lab from the default
 * scenario, how a candidate connects, the grade of the broken state, the
 * grade after the reference solution, and a clean teardown.
 */
export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('Provision the default scenario, show how to connect, grade it broken and repaired, tear down')
    .argument('[file]', 'scenario YAML file (default: scenarios/broken-workstation.yaml)')
    .action(async (file: string | undefined) => (await import('../actions/demo.js')).demo(program, file));
}
