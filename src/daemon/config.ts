import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Where examlab's own files are (the folder holding package.json). */
export const PACKAGE_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

/** Where a Docker engine answers (see providers/docker/engine-address.ts). */
export interface DockerEngineConfig {
  url: string;
  tls?: { ca: string; cert: string; key: string };
  sshKey?: string;
  sshHostKey?: string;
}

/** A lab host of the daemon's `hosts:`: its Docker engine, and its libvirt when its labs may have VMs. */
export interface LabHostConfig {
  name: string;
  engine: DockerEngineConfig;
  /** libvirt on that host: `qemu:///system` (this host's) or `qemu+ssh://user@host[:port]/system`, logged in to with the key and pinned host key given. */
  libvirt?: { url: string; sshKey?: string; sshHostKey?: string };
  capacity?: number;
  /** What the centre says of the host (`kvm: "true"`, `room: "B12"`): scenarios may require labels (hostLabels). */
  labels: Record<string, string>;
}

export interface Config {
  /** Private data: the SQLite store, lab keys. Mode 0700. */
  dataDir: string;
  imagesDir: string;
  scenariosDir: string;
  /** Built artefacts: the grader's toolbox, scratch space for images. */
  buildDir: string;
  /** Lab subnets are /24s carved from this pool. */
  subnetPool: string;
  debianMirror: string;
  /** This host's Docker engine: images are built on it (and shipped to an engine elsewhere). */
  dockerSocket: string;
  /** The engine labs run on: this host's (unix://), or another host's over TLS (tcp://, `tls` a folder of ca.pem, cert.pem, key.pem) or SSH (ssh://user@host, `sshKey` a private key file). */
  dockerEngine: DockerEngineConfig;
  /** Lab hosts (the daemon's `hosts:`): each a Docker engine of its own; labs are placed on them. None: `dockerEngine` only. */
  labHosts: LabHostConfig[];
  /** This host's libvirtd, for VMs of labs built here (a lab host's is in `labHosts`). */
  libvirtUri: string;
  /** VM files: built images in images/, per-lab overlays and sockets in labs/. Must be reachable by the QEMU user. */
  vmDir: string;
  logLevel: string;
}

/** Defaults, overridden by EXAMLAB_* environment variables, then by explicit options. */
export function loadConfig(overrides: Partial<Config> = {}): Config {
  const env = process.env;
  const defaultData = process.getuid?.() === 0 ? '/var/lib/examlab' : join(env.XDG_DATA_HOME ?? join(homedir(), '.local/share'), 'examlab');
  return {
    dataDir: env.EXAMLAB_DATA ?? defaultData,
    imagesDir: env.EXAMLAB_IMAGES ?? join(PACKAGE_ROOT, 'images'),
    scenariosDir: join(PACKAGE_ROOT, 'scenarios'),
    buildDir: env.EXAMLAB_BUILD ?? join(PACKAGE_ROOT, 'build'),
    subnetPool: env.EXAMLAB_SUBNET_POOL ?? '10.231.0.0/16',
    debianMirror: env.EXAMLAB_DEBIAN_MIRROR ?? 'http://deb.debian.org/debian',
    dockerSocket: env.DOCKER_SOCKET ?? '/var/run/docker.sock',
    dockerEngine: {
      url: env.EXAMLAB_DOCKER ?? `unix://${env.DOCKER_SOCKET ?? '/var/run/docker.sock'}`,
      ...(env.EXAMLAB_DOCKER_TLS ? { tls: { ca: join(env.EXAMLAB_DOCKER_TLS, 'ca.pem'), cert: join(env.EXAMLAB_DOCKER_TLS, 'cert.pem'), key: join(env.EXAMLAB_DOCKER_TLS, 'key.pem') } } : {}),
      ...(env.EXAMLAB_DOCKER_SSH_KEY ? { sshKey: env.EXAMLAB_DOCKER_SSH_KEY, sshHostKey: env.EXAMLAB_DOCKER_SSH_HOST_KEY } : {}),
    },
    labHosts: [],
    libvirtUri: env.EXAMLAB_LIBVIRT_URI ?? 'qemu:///system',
    vmDir: env.EXAMLAB_VM_DIR ?? '/var/lib/libvirt/images/examlab',
    logLevel: env.EXAMLAB_LOG_LEVEL ?? 'info',
    ...Object.fromEntries(Object.entries(overrides).filter(([, v]) => v !== undefined)),
  };
}

/** The SQLite store: labs, exams, tokens, audit log. */
export function storeFile(config: Config): string {
  return join(config.dataDir, 'examlab.db');
}

/** The audit chain's anchor: its key and its lines, beside the store (never inside it: see SECURITY.md). */
export function auditAnchorFiles(config: Config): { keyFile: string; anchorFile: string } {
  return { keyFile: join(config.dataDir, 'audit.key'), anchorFile: join(config.dataDir, 'audit.anchor') };
}
