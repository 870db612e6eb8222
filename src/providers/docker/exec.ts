import { Duplex, PassThrough } from 'node:stream';
import type Dockerode from 'dockerode';
import { EnvironmentError, TimeoutError, errorMessage } from '../../util/errors.js';
import type { EngineCommand, EngineCommandResult } from '../types.js';

/**
 * Runs a program in a container through the engine's exec API: an argv, no
 * shell; stdin written then closed; stdout and stderr read from the engine's
 * multiplexed stream, never more than the cap, never longer than the time
 * limit. What the container does cannot stall or flood the caller.
 */
export async function execInContainer(container: Dockerode.Container, command: EngineCommand): Promise<EngineCommandResult> {
  const exec = await container.exec({
    Cmd: [...command.argv],
    AttachStdin: command.stdin !== undefined,
    AttachStdout: true,
    AttachStderr: true,
    Tty: false,
    User: 'root',
    WorkingDir: '/',
    // Nothing of the container's own environment is relied upon.
    Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'LC_ALL=C'],
  });
  const stream = (await exec.start({ hijack: true, stdin: command.stdin !== undefined })) as Duplex;
  const output = await readMultiplexed(stream, command);
  const { ExitCode: exitCode } = await exec.inspect();
  if (exitCode === null || exitCode === undefined) throw new EnvironmentError(`${command.argv[0]} ended without an exit status`);
  return { exitCode, ...output };
}

/** Frames of the engine's stream: 8 bytes (stream type, 3 zeros, big-endian length), then the payload. */
function readMultiplexed(stream: Duplex, command: EngineCommand): Promise<{ stdout: Buffer; stderr: Buffer }> {
  return new Promise((resolve, reject) => {
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    let pending = Buffer.alloc(0);
    let total = 0;
    let settled = false;
    const finish = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        stream.destroy();
        reject(err);
      } else resolve({ stdout: Buffer.concat(stdout), stderr: Buffer.concat(stderr) });
    };
    const timer = setTimeout(() => finish(new TimeoutError(`${command.argv[0]} did not finish within ${command.timeoutMs} ms`)), command.timeoutMs);
    stream.on('data', (chunk: Buffer) => {
      total += chunk.length;
      if (total > command.maxOutputBytes + 8 * 1024) return finish(new EnvironmentError(`${command.argv[0]} wrote more than ${command.maxOutputBytes} bytes`));
      pending = Buffer.concat([pending, chunk]);
      while (pending.length >= 8) {
        const size = pending.readUInt32BE(4);
        if (pending.length < 8 + size) break;
        const payload = pending.subarray(8, 8 + size);
        if (pending[0] === 2) stderr.push(payload);
        else stdout.push(payload);
        pending = pending.subarray(8 + size);
      }
    });
    stream.on('end', () => finish(pending.length ? new EnvironmentError('the engine\'s output ended in the middle of a frame') : undefined));
    stream.on('close', () => finish(pending.length ? new EnvironmentError('the engine\'s output ended in the middle of a frame') : undefined));
    stream.on('error', (err) => finish(new EnvironmentError(`the engine's stream broke: ${errorMessage(err)}`)));
    if (command.stdin !== undefined) stream.end(command.stdin);
  });
}

/**
 * A byte stream through a program started in the container (the probe's
 * relay): what is written goes to its stdin, its stdout is what is read.
 * Its stderr is kept for the error when it ends early.
 */
export async function streamThroughContainer(container: Dockerode.Container, argv: readonly string[]): Promise<Duplex> {
  const exec = await container.exec({ Cmd: [...argv], AttachStdin: true, AttachStdout: true, AttachStderr: true, Tty: false, User: 'root', WorkingDir: '/' });
  const stream = (await exec.start({ hijack: true, stdin: true })) as Duplex;
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  container.modem.demuxStream(stream, stdout, stderr);
  stderr.resume();
  stream.on('end', () => stdout.end());
  stream.on('close', () => stdout.end());
  stream.on('error', (err) => stdout.destroy(err));
  const duplex = Duplex.from({ readable: stdout, writable: stream });
  // Closing our side ends the program's stdin, then the hijacked connection.
  duplex.on('close', () => stream.destroy());
  return duplex;
}
