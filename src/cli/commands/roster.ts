import type { Command } from 'commander';

export function registerRosterCommands(program: Command): void {
  const roster = program.command('roster').description("Candidates' rosters, as the centres' systems export them");

  roster
    .command('check')
    .description('Read a roster file as the daemon will: the candidates, the column each came from, every row left out and why; exit 1 when a row is left out')
    .argument('<file>', 'CSV (UTF-8 or Windows-1252; ";", "," or tab) or XLSX')
    .option('--json', 'print the result as JSON')
    .action(async (file: string, opts: { json?: boolean }) => (await import('../actions/roster.js')).rosterCheck(file, opts));
}
