import { Command, CommanderError } from 'commander';
import { InputError } from '../util/errors.js';
import { EXIT, Exit, printError } from './context.js';
import { registerImageCommands } from './commands/images.js';
import { registerLabCommands } from './commands/lab.js';
import { registerConsoleCommand } from './commands/console.js';
import { registerVmCommands } from './commands/vm.js';
import { registerDoctorCommand } from './commands/doctor.js';
import { registerScenarioCommands } from './commands/scenario.js';
import { registerDemoCommand } from './commands/demo.js';
import { registerServeCommand } from './commands/serve.js';
import { registerRosterCommands } from './commands/roster.js';

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
  registerDoctorCommand(program);
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
