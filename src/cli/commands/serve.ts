import type { Command } from 'commander';
import type { ServeOptions } from '../actions/serve.js';

/**
 * `examlab serve`: the exam daemon in the foreground until SIGTERM or
 * SIGINT (graceful: labs keep running, work in progress is finished or
 * left for the next start to redo).
 */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('Run the exam daemon: HTTP API and pages, SSH gateway for candidates, exam clock')
    .option('--port <n>', 'HTTP port (default 8080, or the configuration)')
    .option('--ssh-port <n>', 'SSH gateway port (default 2222, or the configuration)')
    .option('--host <address>', 'address to listen on, HTTP and SSH (default 0.0.0.0)')
    .option('--config <file>', 'daemon configuration, YAML or JSON (default /etc/examlab/daemon.yaml when present)')
    .option('--demo', 'also run a demo exam (three candidates, the default scenario) and print how each candidate connects')
    .action(async (opts: ServeOptions) => (await import('../actions/serve.js')).serve(program, opts));
}
