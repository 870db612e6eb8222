import type { Command } from 'commander';

export function registerDoctorCommand(program: Command): void {
  program
    .command('doctor')
    .description('What this host (or the lab hosts of the daemon\'s configuration) can hold: for each scenario, how many more labs fit, resource by resource (memory, lab networks, inotify, disk) or host by host, and what sets the limit')
    .argument('[scenarios...]', 'scenario files (default: every scenario of the scenarios folder)')
    .option('--json', 'print as JSON')
    .option('--config <file>', 'daemon configuration whose lab hosts are counted (default /etc/examlab/daemon.yaml when present)')
    .action(async (files: string[], opts: { json?: boolean; config?: string }) => (await import('../actions/doctor.js')).doctor(program, files, opts));
}
