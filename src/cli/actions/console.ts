import type { Duplex } from 'node:stream';
import type { Command } from 'commander';
import { InputError, NotFoundError, errorMessage } from '../../util/errors.js';
import { appFor } from '../context.js';

const DETACH = 0x1d; // Ctrl-]

export async function labConsole(program: Command, labId: string, machineName: string, opts: { log?: boolean | string }): Promise<void> {
  const app = await appFor(program);
  let socket: Duplex;
  try {
    const record = app.labs.get(labId);
    const machine = record.topology?.machines.find((m) => m.name === machineName);
    if (!machine) throw new NotFoundError(`lab ${labId} has no machine ${machineName}; machines: ${(record.topology?.machines ?? []).map((m) => m.name).join(', ') || '(none yet)'}`);
    if (!machine.console) throw new InputError(`machine ${machineName} is a container, which has no serial console: reach it with SSH (see \`examlab lab up\` output)`);
    if (opts.log !== undefined) {
      const lines = typeof opts.log === 'string' ? Number(opts.log) : 200;
      if (!Number.isInteger(lines) || lines <= 0) throw new InputError(`--log takes a number of lines, got "${String(opts.log)}"`);
      // Read where the machine's host keeps it (a lab host's, through its provider).
      process.stdout.write(`${await app.labs.consoleTail(record, machineName, lines)}\n`);
      return;
    }
    socket = await app.labs.openConsole(record, machineName).catch((err: unknown) => {
      throw new NotFoundError(`the console of ${machineName} is not available (${errorMessage(err)}): is the machine running?`);
    });
  } finally {
    app.close();
  }
  await attach(socket, machineName);
}

async function attach(socket: Duplex, machine: string): Promise<void> {
  const stdin = process.stdin;
  const tty = stdin.isTTY;
  if (tty) {
    process.stderr.write(`Connected to the console of ${machine}. Press Enter for a prompt, Ctrl-] to leave.\r\n`);
    stdin.setRawMode(true);
  }
  await new Promise<void>((resolve) => {
    const done = () => {
      if (tty) stdin.setRawMode(false);
      stdin.pause();
      socket.destroy();
      resolve();
    };
    socket.on('data', (chunk: Buffer) => process.stdout.write(chunk));
    socket.on('close', done);
    socket.on('error', done);
    stdin.on('data', (chunk: Buffer) => {
      const detach = tty ? chunk.indexOf(DETACH) : -1;
      if (detach >= 0) {
        socket.write(chunk.subarray(0, detach));
        done();
      } else socket.write(chunk);
    });
    // Piped input (a script): when it ends, leave time for the last answers to arrive.
    stdin.on('end', () => setTimeout(done, 2000));
    stdin.resume();
  });
  if (tty) process.stderr.write('\r\n(console left)\n');
}
