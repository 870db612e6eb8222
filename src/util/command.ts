import { spawn } from 'node:child_process';
import { EnvironmentError, errorMessage } from './errors.js';

/**
 * Runs a program to completion. A missing program or a non-zero exit is an
 * EnvironmentError carrying the command and the tail of its output; the
 * output is returned on success.
 */
export function runCommand(command: string, args: readonly string[], options: { stdin?: string; cwd?: string } = {}): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: [options.stdin === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'], cwd: options.cwd });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout?.on('data', (chunk: Buffer) => out.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => err.push(chunk));
    child.on('error', (e) => reject(new EnvironmentError(`cannot run ${command}: ${errorMessage(e)} (is it installed? \`make deps\` installs it)`)));
    child.on('close', (code) => {
      const stdout = Buffer.concat(out).toString();
      if (code === 0) return resolve(stdout);
      const tail = `${Buffer.concat(err).toString()}${stdout}`.trim().slice(-2000);
      reject(new EnvironmentError(`${command} ${args.join(' ')} exited ${code}${tail ? `:\n${tail}` : ''}`));
    });
    if (child.stdin) {
      child.stdin.on('error', () => undefined); // a program that exits without reading its input says why by its exit
      child.stdin.end(options.stdin);
    }
  });
}
