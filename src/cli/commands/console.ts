import type { Command } from 'commander';

/**
 * `examlab lab console <lab> <machine>`: the serial console of a VM, as if
 * sitting at it: boot messages, GRUB, the emergency shell, a login prompt.
 * It needs no network in the machine. Ctrl-] leaves.
 */
export function registerConsoleCommand(program: Command): void {
  const lab = program.commands.find((c) => c.name() === 'lab');
  if (!lab) throw new Error('the lab command must be registered before its console subcommand');
  lab
    .command('console')
    .description("Attach to a VM's serial console (Ctrl-] to leave); works when the machine has no network")
    .argument('<lab>', 'lab id')
    .argument('<machine>', 'machine name')
    .option('--log [lines]', 'print what the console showed so far (last 200 lines, or [lines]) instead of attaching')
    .action(async (labId: string, machineName: string, opts: { log?: boolean | string }) => (await import('../actions/console.js')).labConsole(program, labId, machineName, opts));
}
