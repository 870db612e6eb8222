import { createConnection } from 'node:net';
import type { Command } from 'commander';
import { InputError, NotFoundError } from '../../util/errors.js';
import { consoleTail } from '../../labs/index.js';
import { appFor } from '../context.js';

const DETACH = 0x1d; // Ctrl-]

export async function labConsole(program: Command, labId: string, machineName: string, opts: { log?: boolean | string }): Promise<void> {
  const app = await appFor(program);
  let socket: string;
  let log: string;
  try {
    const record = app.labs.get(labId);
    const machine = record.topology?.machines.find((m) => m.name === machineName);
    if (!machine) throw new NotFoundError(`lab ${labId} has no machine ${machineName}; machines: ${(record.topology?.machines ?? []).map((m) => m.name).join(', ') || '(none yet)'}`);
    if (!machine.console) throw new InputError(`machine ${machineName} is a container, which has no serial console: reach it with SSH (see \`examlab lab up\` output)`);
    ({ socket, log } = machine.console);
  } finally {
    app.close();
  }
  if (opts.log !== undefined) {
    const lines = typeof opts.log === 'string' ? Number(opts.log) : 200;
    if (!Number.isInteger(lines) || lines <= 0) throw new InputError(`--log takes a number of lines, got "${String(opts.log)}"`);
    process.stdout.write(`${await consoleTail(log, lines)}\n`);
    return;
  }
  await attach(socket, machineName);
}

async function attach(path: string, machine: string): Promise<void> {
  const socket = await new Promise<ReturnType<typeof createConnection>>((resolve, reject) => {
    const s = createConnection(path);
    s.once('connect', () => resolve(s));
    s.once('error', (err) => reject(new NotFoundError(`the console of ${machine} is not available (${err.message}): is the machine running?`)));
  });
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
