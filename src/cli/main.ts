import { Command, CommanderError } from 'commander';
import { createApp, type App } from '../daemon/index.js';
import { loadConfig } from '../daemon/index.js';
import { EnvironmentError, ExamlabError, InputError } from '../util/errors.js';
import { createLogger } from '../util/log.js';
import { registerImageCommands } from './commands/images.js';
import { registerLabCommands } from './commands/lab.js';
import { registerConsoleCommand } from './commands/console.js';
import { registerVmCommands } from './commands/vm.js';
import { registerScenarioCommands } from './commands/scenario.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerServeCommand } from './commands/serve.js';
import { registerRosterCommands } from './commands/roster.js';

/**
 * Exit codes: 0 all good; 1 checks failed or input is invalid (a scenario, a
 * score under the pass mark); 2 usage or environment error (bad flag, engine
 * down, unknown lab).
 */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Thrown by commands to end with a given code after printing their own output. */
export class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

export interface GlobalOptions {
  data?: string;
  verbose?: boolean;
}

/** Makes the App for a command, from the global options. */
export function appFor(program: Command): App {
  const opts = program.opts<GlobalOptions>();
  const config = loadConfig({ dataDir: opts.data, logLevel: opts.verbose ? 'debug' : undefined });
  const log = createLogger({ level: opts.verbose ? 'debug' : (process.env.EXAMLAB_LOG_LEVEL ?? 'warn'), pretty: process.stderr.isTTY });
  return createApp(config, log);
}

export function buildProgram(): Command {
  const program = new Command('examlab')
    .description('Real labs for hands-on IT exams: provisioned, broken on purpose, graded over SSH.')
    .option('--data <dir>', 'data directory (store, lab keys); default /var/lib/examlab as root, or $EXAMLAB_DATA')
    .option('-v, --verbose', 'log what happens (to stderr)')
    .showHelpAfterError()
    .exitOverride();
  registerScenarioCommands(program);
  registerLabCommands(program);
  registerConsoleCommand(program);
  registerVmCommands(program);
  registerImageCommands(program);
  registerDemoCommand(program);
  registerServeCommand(program);
  registerRosterCommands(program);
  program.commands.forEach((c) => c.exitOverride());
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return EXIT.ok;
  } catch (err) {
    if (err instanceof Exit) return err.code;
    if (err instanceof CommanderError) {
      return err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    printError(err);
    return err instanceof InputError ? EXIT.failed : EXIT.usage;
  }
}

export function printError(err: unknown): void {
  if (err instanceof ExamlabError) {
    process.stderr.write(`error: ${err.message}\n`);
    for (const d of err.details) process.stderr.write(`  ${d.where ? `${d.where}: ` : ''}${d.message}\n`);
    if (err instanceof EnvironmentError) process.stderr.write('(environment problem: see README, "Requirements")\n');
  } else {
    process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
}
