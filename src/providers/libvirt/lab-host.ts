import { chmod, mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { HostConnection, type SocketForward } from '../../remote/index.js';
import { InputError, errorMessage } from '../../util/errors.js';
import { ImageCopies } from './image-copies.js';
import { remoteVmHost, type VmHost } from './vm-host.js';

/** How the provider reaches a lab host's libvirtd: its SSH login, and where things go. */
export interface LabHostLibvirtOptions {
  /** The private key file examlab logs in to the host with. */
  sshKey: string;
  /** The host's public SSH key as in known_hosts (`ssh-ed25519 AAAA…`): the only one accepted. */
  sshHostKey: string;
  /** Copies of this host's VM images on the lab host, a folder per image; `images` beside the labs' folder when absent. */
  imagesDir?: string;
  /**
   * A folder of this host for the local end of libvirtd's socket (the
   * libvirt client connects there): made private (0700), the socket 0600.
   * Its path must stay short (a unix socket path holds 107 bytes).
   */
  socketDir: string;
  /** Whether guests there run under KVM; probed there when absent. */
  kvm?: boolean;
}

/** A lab host's libvirtd, as the provider uses it. */
export interface LabHostLibvirt {
  connection: HostConnection;
  /** What the libvirt client is given: this host's end of the forwarded socket. */
  clientUri: string;
  host: VmHost;
  images: ImageCopies;
  imagesDir: string;
  close(): Promise<void>;
}

const LIBVIRT_SOCKET = '/var/run/libvirt/libvirt-sock';
const MAX_SOCKET_PATH = 107;

/** `qemu+ssh://user@host[:port]/system[?socket=PATH]`, as libvirt writes it, taken apart. */
export function parseLabHostUri(uri: string): { username: string; host: string; port: number; socket: string } {
  let url: URL;
  try {
    url = new URL(uri);
  } catch {
    throw new InputError(`not a libvirt address: ${uri}`, [{ message: 'expected qemu+ssh://user@host[:port]/system' }]);
  }
  if (url.protocol !== 'qemu+ssh:' || url.pathname !== '/system' || !url.hostname) {
    throw new InputError(`${uri}: a lab host's libvirt is qemu+ssh://user@host[:port]/system`, [{ message: 'the system instance of libvirtd, reached over SSH' }]);
  }
  const socket = url.searchParams.get('socket') ?? LIBVIRT_SOCKET;
  return { username: decodeURIComponent(url.username || 'root'), host: url.hostname.replace(/^\[|\]$/g, ''), port: Number(url.port || 22), socket };
}

/**
 * Opens the way to a lab host's libvirtd. libvirt's own ssh transport is
 * not used: it runs the `ssh` program, which trusts ~/.ssh/known_hosts
 * rather than the host key the configuration pins, and opens a connection
 * of its own. Instead libvirtd's unix socket is carried over examlab's one
 * SSH connection to the host (OpenSSH streamlocal) and served on a private
 * local socket, which the libvirt client opens as `qemu+unix`.
 */
export async function openLabHostLibvirt(uri: string, dirs: { labsDir: string; localImagesDir: string }, options: LabHostLibvirtOptions, log: Logger): Promise<LabHostLibvirt> {
  const target = parseLabHostUri(uri);
  let privateKey: string;
  try {
    privateKey = await readFile(options.sshKey, 'utf8');
  } catch (err) {
    throw new InputError(`${uri}: cannot read the SSH key ${options.sshKey}`, [{ message: errorMessage(err) }]);
  }
  const local = join(options.socketDir, 'libvirt.sock');
  if (Buffer.byteLength(local) > MAX_SOCKET_PATH) throw new InputError(`${uri}: the socket folder ${options.socketDir} is too deep for a unix socket (at most ${MAX_SOCKET_PATH - 'libvirt.sock'.length - 1} bytes)`);
  const connection = new HostConnection({ host: target.host, port: target.port, username: target.username, privateKey, hostKey: options.sshHostKey });
  await mkdir(options.socketDir, { recursive: true, mode: 0o700 });
  // Private whatever made it first: whoever can open the socket is root on the lab host.
  await chmod(options.socketDir, 0o700);
  let forward: SocketForward | undefined;
  try {
    forward = await connection.forwardUnixSocket(target.socket, local);
    const imagesDir = options.imagesDir ?? join(dirname(dirs.labsDir), 'images');
    return {
      connection,
      clientUri: `qemu+unix:///system?socket=${local.replace(/[^A-Za-z0-9/._-]/g, (c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`)}`,
      host: remoteVmHost(connection),
      images: new ImageCopies(connection, dirs.localImagesDir, imagesDir, log),
      imagesDir,
      close: async () => {
        await forward?.close();
        connection.close();
      },
    };
  } catch (err) {
    await forward?.close();
    connection.close();
    throw err;
  }
}
