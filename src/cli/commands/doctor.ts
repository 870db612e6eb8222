import type { Command } from 'commander';

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('What this host can hold: for each scenario, how many more labs fit, resource by resource (memory, lab networks, inotify, disk), and which one sets the limit')
    .argument('[scenarios...]', 'scenario files (default: every scenario of the scenarios folder)')
    .option('--json', 'print as JSON')
    .action(async (files: string[], opts: { json?: boolean }) => (await import('../actions/doctor.js')).doctor(program, files, opts));
}
