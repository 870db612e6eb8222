import { chmod, mkdir, mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { HostConnection } from '../../remote/index.js';
import { runCommand } from '../../util/command.js';
import { connectUnixSocket } from '../../util/unix-socket.js';

/**
 * The host whose libvirtd runs a provider's VMs, as the provider uses its
 * files: this host (node's fs, programs run here), or a lab host reached
 * over SSH. Every path is that host's.
 */
export interface VmHost {
  /** The VMs run on this host. */
  readonly local: boolean;
  /** How it is named in messages. */
  readonly label: string;
  /** Runs a program there (qemu-img) and returns its stdout; a failure is an EnvironmentError carrying its output. */
  run(program: string, args: readonly string[]): Promise<string>;
  /** Makes a folder and its parents; `mode` is given to the folders it makes. */
  mkdir(path: string, mode?: number): Promise<void>;
  chmod(path: string, mode: number): Promise<void>;
  /** Removes files and folders; what is not there is fine. */
  remove(paths: readonly string[]): Promise<void>;
  /** The names in a folder; none when it does not exist. */
  list(dir: string): Promise<string[]>;
  /** Puts at `path` a file that `make` writes on this host (at the local path it is given). */
  place(path: string, make: (localPath: string) => Promise<void>): Promise<void>;
  /** A file (on a lab host, at most its last 16 MiB: a console log can grow); undefined when it does not exist. */
  readFile(path: string): Promise<Buffer | undefined>;
  /** A stream to a unix socket (a VM's console or guest agent). */
  openSocket(path: string, timeoutMs: number): Promise<Duplex>;
}

/** This host: what the provider did before lab hosts, unchanged. */
export const localVmHost: VmHost = {
  local: true,
  label: 'this host',
  run: (program, args) => runCommand(program, args),
  mkdir: async (path, mode) => void (await mkdir(path, { recursive: true, mode })),
  chmod: (path, mode) => chmod(path, mode),
  remove: async (paths) => void (await Promise.all(paths.map((p) => rm(p, { recursive: true, force: true })))),
  list: (dir) => readdir(dir).catch(() => [] as string[]),
  place: (path, make) => make(path),
  readFile: (path) => readFile(path).catch(() => undefined),
  openSocket: (path, timeoutMs) => connectUnixSocket(path, timeoutMs),
};

/** Time for a file operation on a lab host (a few commands over SSH). */
const FILE_TIMEOUT_MS = 60_000;
/** A program run there (qemu-img on an overlay: instant; `info` on a base: reads its header). */
const PROGRAM_TIMEOUT_MS = 120_000;
const MAX_READ_BYTES = 16 << 20;

/** A lab host's files and programs, through its SSH connection. */
export function remoteVmHost(connection: HostConnection): VmHost {
  return {
    local: false,
    label: connection.label,
    run: (program, args) => connection.run([program, ...args], { timeoutMs: PROGRAM_TIMEOUT_MS }),
    mkdir: async (path, mode) => void (await connection.run(['mkdir', '-p', ...(mode === undefined ? [] : ['-m', mode.toString(8)]), '--', path], { timeoutMs: FILE_TIMEOUT_MS })),
    chmod: async (path, mode) => void (await connection.run(['chmod', mode.toString(8), '--', path], { timeoutMs: FILE_TIMEOUT_MS })),
    remove: (paths) => connection.rm(paths, FILE_TIMEOUT_MS),
    list: (dir) => connection.list(dir, FILE_TIMEOUT_MS),
    async place(path, make) {
      const dir = await mkdtemp(join(tmpdir(), 'examlab-vm-file-'));
      try {
        const local = join(dir, 'file');
        await make(local);
        // Readable by QEMU's user, as a file made there by the same program would be.
        await connection.upload(local, path, { mode: 0o644, timeoutMs: FILE_TIMEOUT_MS });
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    readFile: (path) => connection.readTail(path, { maxBytes: MAX_READ_BYTES, timeoutMs: FILE_TIMEOUT_MS }),
    openSocket: (path, timeoutMs) => connection.openUnixSocket(path, timeoutMs),
  };
}
