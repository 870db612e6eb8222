import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import Dockerode from 'dockerode';
import { loadConfig } from '../../src/daemon/config.js';
import { tarOf } from '../../src/providers/docker/tar.js';
import { errorMessage } from '../../src/util/errors.js';
import { retryUntil, withTimeout } from '../../src/util/retry.js';
import { ensureLabHostImage, ensureVmHostImage } from './lab-host-image.js';
import { createCertificateAuthority, createSshKeyPair, issueClientCertificate, issueServerCertificate, type CertificateAuthority } from './pki.js';

/**
 * Lab hosts: Docker engines on machines of their own, for tests of examlab
 * driving a remote engine. Each host is a container of the local engine
 * (Docker in Docker) on a network of the run's own, at a fixed address, with
 *
 * - dockerd on tcp://IP:2376, TLS, client certificates required (a CA, the
 *   server's and a client's certificate are made per run);
 * - sshd for root with a key made per run, so `ssh://root@IP` works (the
 *   docker CLI there answers `docker system dial-stdio`);
 * - its own cgroup subtree (the engine's containers stay inside the host's
 *   cgroup) and its own engine store (a volume).
 *
 * With `vm`, a host also runs libvirtd and QEMU (guests under TCG), reached
 * as `qemu+ssh://root@IP/system`: VMs join the lab bridges of its engine.
 *
 * Everything made carries the label examlab.test=lab-host and its owner
 * (process id and start time): `close()` removes a run's objects, and the
 * next run removes whatever a killed run left.
 */

export const LAB_HOST_LABEL = { key: 'examlab.test', value: 'lab-host' } as const;
/** Who made an object (`<pid>:<start time>`), and the run's folder of files. */
export const OWNER_LABEL = 'examlab.lab-host.owner';
export const DIR_LABEL = 'examlab.lab-host.dir';
/** The run's folder: `<tmpdir>/examlab-lab-hosts-XXXXXX`. */
export const DIR_PREFIX = 'examlab-lab-hosts-';
/** In the run's folder: its owner, as in OWNER_LABEL. */
export const OWNER_FILE = 'owner';
const ENGINE_PORT = 2376;
const SSH_PORT = 22;
/** First host address in the run's /24 (.1 is the bridge). */
const FIRST_HOST = 10;

export type Transport = 'tls' | 'ssh';

export interface LabHostOptions {
  /** Prefix of the hosts' names (containers, certificate names): `<name>-<run>-<n>`. */
  name?: string;
  /** A /16 from which the run's network takes a free /24 (fixed addresses: a restarted host keeps its own). */
  subnetPool?: string;
  /** Bound on a host's engine answering on both transports after a start. */
  readyTimeoutMs?: number;
  /** The local engine that runs the hosts. */
  docker?: Dockerode;
  /** The hosts also run libvirtd and QEMU (image vm-host): a lab's VMs can run there. */
  vm?: boolean;
}

/** How a client reaches a host's engine. */
export interface LabHostAccess {
  /** `tcp://IP:2376` */
  tcp: string;
  /** The run's CA, the client certificate and its key (PEM). */
  ca: string;
  cert: string;
  key: string;
  /** The same as files, laid out as DOCKER_CERT_PATH wants them (ca.pem, cert.pem, key.pem). */
  certDir: string;
  /** `ssh://root@IP` */
  ssh: string;
  /** OpenSSH private key for root (ed25519), and its file. */
  sshPrivateKey: string;
  sshPrivateKeyFile: string;
  /** The host's public SSH key (`ssh-ed25519 AAAA…`), to pin. */
  sshHostKey: string;
  /** `qemu+ssh://root@IP/system`, on a host started with `vm` (same key and host key as `ssh`). */
  libvirt?: string;
}

export interface LabHost {
  /** Container name, hostname, and the DNS name in its server certificate. */
  name: string;
  ip: string;
  docker: LabHostAccess;
  /**
   * A client of the host's engine. `timeoutMs` bounds, over TLS, each
   * request's silences (not its length: leave it out for long streams such
   * as image loads); over SSH, only the SSH handshake (docker-modem cannot
   * time a request on an SSH channel): bound those calls yourself.
   */
  dockerode(via: Transport, options?: { timeoutMs?: number }): Dockerode;
  /** Whether the engine answers a ping over `via` within `timeoutMs`. */
  answers(via: Transport, timeoutMs?: number): Promise<boolean>;
  /**
   * The machine goes down, engine, sshd and labs with it (docker stop; with
   * `kill`, at once, as a power cut). Its address then answers nothing.
   */
  stop(options?: { kill?: boolean }): Promise<void>;
  /** The machine boots again (same address, keys, images); resolves once its engine answers on both transports. */
  start(): Promise<void>;
  /** The machine hangs (docker pause: every process frozen, connections accepted by the kernel and never answered). */
  pause(): Promise<void>;
  unpause(): Promise<void>;
}

export interface LabHosts {
  hosts: LabHost[];
  /** The run's network on the local engine, and its subnet. */
  network: string;
  subnet: string;
  /** The run's files (certificates, keys); removed by close(). */
  dir: string;
  /** The run's authority, e.g. to issue another client certificate. */
  ca: CertificateAuthority;
  /** Removes the hosts, their stores, the network and the files; safe to call twice. */
  close(): Promise<void>;
}

/**
 * Starts `count` lab hosts at once and resolves when every engine answers
 * over TLS and SSH. On any failure, what was made is removed before the
 * error is thrown. The lab host image is built first if missing.
 */
export async function startLabHosts(count: number, options: LabHostOptions = {}): Promise<LabHosts> {
  if (!Number.isInteger(count) || count < 1 || count > 200) throw new Error(`startLabHosts: count ${count} is not between 1 and 200`);
  if (options.name !== undefined && !/^[a-z][a-z0-9-]{0,40}$/.test(options.name)) throw new Error(`startLabHosts: name "${options.name}" is not a host name (lowercase letters, digits, "-")`);
  const docker = options.docker ?? new Dockerode({ socketPath: loadConfig().dockerSocket });
  const readyTimeoutMs = options.readyTimeoutMs ?? 120_000;
  await removeLeftoverLabHosts(docker);
  const image = options.vm ? await ensureVmHostImage(docker) : await ensureLabHostImage(docker);

  const run = randomBytes(3).toString('hex');
  const prefix = `${options.name ?? 'lab-host'}-${run}`;
  const owner = await ownerOf(process.pid);
  const dir = mkdtempSync(join(tmpdir(), DIR_PREFIX));
  // The folder names its owner too: a run killed before it made anything still has it removed.
  writeFileSync(join(dir, OWNER_FILE), owner);
  const labels = { [LAB_HOST_LABEL.key]: LAB_HOST_LABEL.value, [OWNER_LABEL]: owner, [DIR_LABEL]: dir };
  const made = { containers: [] as string[], volumes: [] as string[], network: undefined as string | undefined };
  let closed: Promise<void> | undefined;
  const close = () => (closed ??= removeAll(docker, made, dir));

  try {
    const { network, subnet, prefix24 } = await createNetwork(docker, `${prefix}-net`, options.subnetPool ?? '10.232.0.0/16', labels);
    made.network = network;
    const ca = await createCertificateAuthority(join(dir, 'ca'), `examlab lab hosts ${run}`);
    const certDir = join(dir, 'client');
    const client = await issueClientCertificate(ca, certDir, 'examlab');
    await Promise.all([copyFile(ca.certFile, join(certDir, 'ca.pem')), copyFile(client.certFile, join(certDir, 'cert.pem')), copyFile(client.keyFile, join(certDir, 'key.pem'))]);
    const userKey = await createSshKeyPair(join(certDir, 'id_ed25519'), `examlab-${run}`);

    // Every start settles before a failure is thrown: close() then finds everything that was made.
    const started = await Promise.allSettled(
      Array.from({ length: count }, async (_, i): Promise<LabHost> => {
        const name = `${prefix}-${i + 1}`;
        const ip = `${prefix24}.${FIRST_HOST + i}`;
        const hostDir = join(dir, 'hosts', name);
        await mkdir(hostDir, { recursive: true, mode: 0o700 });
        const server = await issueServerCertificate(ca, hostDir, { name, ip });
        const hostKey = await createSshKeyPair(join(hostDir, 'ssh_host_ed25519_key'), name);
        const volume = `${name}-engine`;
        await docker.createVolume({ Name: volume, Labels: labels });
        made.volumes.push(volume);
        const hostConfig: Dockerode.HostConfig & { CgroupnsMode: 'private' } = {
          NetworkMode: network,
          // What an engine needs to run containers, short of --privileged (refused on this host).
          CapAdd: ['ALL'],
          CapDrop: ['SYS_RESOURCE'],
          SecurityOpt: ['seccomp=unconfined', 'apparmor=unconfined'],
          // A cgroup namespace of its own: lab-host-init makes its subtree writable for the engine.
          CgroupnsMode: 'private',
          // QEMU opens a tap device for each VM's network card.
          ...(options.vm ? { Devices: [{ PathOnHost: '/dev/net/tun', PathInContainer: '/dev/net/tun', CgroupPermissions: 'rwm' }] } : {}),
          Tmpfs: { '/run': 'rw,nosuid,nodev,size=64m' },
          Mounts: [{ Type: 'volume', Source: volume, Target: '/var/lib/docker' }],
          RestartPolicy: { Name: 'no' },
          LogConfig: { Type: 'json-file', Config: { 'max-size': '5m', 'max-file': '1' } },
        };
        const container = await docker.createContainer({
          name,
          Hostname: name,
          Image: image,
          Labels: labels,
          HostConfig: hostConfig,
          NetworkingConfig: { EndpointsConfig: { [network]: { IPAMConfig: { IPv4Address: ip } } } },
        });
        made.containers.push(container.id);
        // Keys go in before the first boot (a copy, not a bind: the engine may not see this process's files).
        await container.putArchive(
          await tarOf([
            { path: 'etc/lab-host', type: 'directory', mode: 0o700 },
            { path: 'etc/lab-host/ca.pem', content: ca.cert, mode: 0o644 },
            { path: 'etc/lab-host/server-cert.pem', content: server.cert, mode: 0o644 },
            { path: 'etc/lab-host/server-key.pem', content: server.key, mode: 0o600 },
            { path: 'etc/lab-host/ssh_host_ed25519_key', content: hostKey.privateKey, mode: 0o600 },
            { path: 'etc/lab-host/ssh_host_ed25519_key.pub', content: `${hostKey.publicKey}\n`, mode: 0o644 },
            { path: 'etc/lab-host/authorized_keys', content: `${userKey.publicKey}\n`, mode: 0o600 },
          ]),
          { path: '/' },
        );
        const host = labHost(docker, container, {
          name,
          ip,
          readyTimeoutMs,
          access: {
            tcp: `tcp://${ip}:${ENGINE_PORT}`,
            ca: ca.cert,
            cert: client.cert,
            key: client.key,
            certDir,
            ssh: `ssh://root@${ip}`,
            sshPrivateKey: userKey.privateKey,
            sshPrivateKeyFile: userKey.privateKeyFile,
            sshHostKey: hostKey.publicKey,
            ...(options.vm ? { libvirt: `qemu+ssh://root@${ip}/system` } : {}),
          },
        });
        await host.start();
        return host;
      }),
    );
    const failed = started.find((s): s is PromiseRejectedResult => s.status === 'rejected');
    if (failed) throw failed.reason;
    const hosts = started.map((s) => (s as PromiseFulfilledResult<LabHost>).value);
    return { hosts, network, subnet, dir, ca, close };
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

function labHost(docker: Dockerode, container: Dockerode.Container, h: { name: string; ip: string; readyTimeoutMs: number; access: LabHostAccess }): LabHost {
  const pinnedHostKey = Buffer.from(h.access.sshHostKey.split(/\s+/)[1] ?? '', 'base64');
  const dockerode = (via: Transport, options: { timeoutMs?: number } = {}): Dockerode => {
    if (via === 'tls') {
      const timeout = options.timeoutMs !== undefined ? { timeout: options.timeoutMs } : {};
      return new Dockerode({ protocol: 'https', host: h.ip, port: ENGINE_PORT, ca: h.access.ca, cert: h.access.cert, key: h.access.key, ...timeout });
    }
    // No `timeout` here: docker-modem would call setTimeout on the ssh2 channel, which has none (an uncaught TypeError).
    // ssh2's readyTimeout bounds the connection; callers bound the rest.
    return new Dockerode({
      protocol: 'ssh',
      host: h.ip,
      port: SSH_PORT,
      username: 'root',
      sshOptions: {
        privateKey: h.access.sshPrivateKey,
        // docker-modem checks no host key by itself: this one is pinned.
        hostVerifier: (key: Buffer) => key.equals(pinnedHostKey),
        readyTimeout: options.timeoutMs ?? 20_000,
      },
    });
  };
  const answers = async (via: Transport, timeoutMs = 5_000): Promise<boolean> => {
    try {
      await withTimeout(dockerode(via, { timeoutMs }).ping(), timeoutMs, `ping ${h.name} over ${via}`);
      return true;
    } catch {
      return false;
    }
  };
  const ready = async () => {
    const deadline = Date.now() + h.readyTimeoutMs;
    if (h.access.libvirt) {
      await retryUntil(() => execIn(container, ['virsh', '-c', 'qemu:///system', 'version']), (code) => code === 0, {
        what: `libvirtd on lab host ${h.name} to answer`,
        timeoutMs: Math.max(1_000, deadline - Date.now()),
        intervalMs: 250,
      }).catch(async (err) => {
        throw new Error(`${errorMessage(err)}\nits log ends with:\n${await logTail(container)}`);
      });
    }
    for (const via of ['tls', 'ssh'] as const) {
      await retryUntil(() => withTimeout(dockerode(via, { timeoutMs: 5_000 }).ping(), 5_000, 'ping'), () => true, {
        what: `the engine of lab host ${h.name} to answer over ${via === 'tls' ? h.access.tcp : h.access.ssh}`,
        timeoutMs: Math.max(1_000, deadline - Date.now()),
        intervalMs: 250,
      }).catch(async (err) => {
        throw new Error(`${errorMessage(err)}\nits log ends with:\n${await logTail(container)}`);
      });
    }
  };
  return {
    name: h.name,
    ip: h.ip,
    docker: h.access,
    dockerode,
    answers,
    async stop(options = {}) {
      if (options.kill) {
        await ignoreStatus(container.kill(), 409); // not running
        await container.wait({ condition: 'not-running' });
      } else await ignoreStatus(container.stop({ t: 10 }), 304);
    },
    async start() {
      await ignoreStatus(container.start(), 304);
      await ready();
    },
    pause: () => container.pause(),
    unpause: () => container.unpause(),
  };
}

/** Runs a command in a host's container through the local engine (not through the host's own sshd); its exit code. */
async function execIn(container: Dockerode.Container, argv: string[]): Promise<number> {
  const exec = await container.exec({ Cmd: argv, AttachStdout: true, AttachStderr: true });
  const stream = await exec.start({ hijack: true, stdin: false });
  await new Promise<void>((resolve, reject) => {
    stream.on('end', () => resolve());
    stream.on('error', reject);
    stream.resume();
  });
  return (await exec.inspect()).ExitCode ?? -1;
}

async function ignoreStatus(call: Promise<unknown>, status: number): Promise<void> {
  try {
    await call;
  } catch (err) {
    if ((err as { statusCode?: number }).statusCode !== status) throw err;
  }
}

async function logTail(container: Dockerode.Container): Promise<string> {
  try {
    const log = (await container.logs({ stdout: true, stderr: true, tail: 15 })) as unknown as Buffer;
    // Multiplexed frames: an 8-byte header before each chunk.
    const lines: string[] = [];
    for (let at = 0; at + 8 <= log.length; ) {
      const size = log.readUInt32BE(at + 4);
      lines.push(log.subarray(at + 8, at + 8 + size).toString('utf8'));
      at += 8 + size;
    }
    return lines.join('').trimEnd() || '(empty)';
  } catch (err) {
    return `(no log: ${errorMessage(err)})`;
  }
}

/** A network of the run's own: internal (the hosts reach nothing but each other and this machine), a free /24 of the pool. */
async function createNetwork(docker: Dockerode, name: string, pool: string, labels: Record<string, string>): Promise<{ network: string; subnet: string; prefix24: string }> {
  const m = /^(\d+)\.(\d+)\.0\.0\/16$/.exec(pool);
  if (!m) throw new Error(`lab hosts: subnet pool ${pool} is not a /16 like 10.232.0.0/16`);
  const tried = new Set<number>();
  let last = '';
  while (tried.size < 256) {
    const third = Math.floor(Math.random() * 256);
    if (tried.has(third)) continue;
    tried.add(third);
    const prefix24 = `${m[1]}.${m[2]}.${third}`;
    const subnet = `${prefix24}.0/24`;
    try {
      await docker.createNetwork({ Name: name, Driver: 'bridge', Internal: true, Labels: labels, IPAM: { Config: [{ Subnet: subnet, Gateway: `${prefix24}.1` }] } });
      return { network: name, subnet, prefix24 };
    } catch (err) {
      last = errorMessage(err);
      if (!/overlap/i.test(last)) throw err;
    }
  }
  throw new Error(`lab hosts: no free /24 in ${pool} (${last})`);
}

async function removeAll(docker: Dockerode, made: { containers: string[]; volumes: string[]; network?: string }, dir: string): Promise<void> {
  const problems: string[] = [];
  const attempt = async (what: string, call: () => Promise<unknown>) => {
    try {
      await call();
    } catch (err) {
      if ((err as { statusCode?: number }).statusCode !== 404) problems.push(`${what}: ${errorMessage(err)}`);
    }
  };
  await Promise.all(made.containers.map((id) => attempt(`container ${id.slice(0, 12)}`, () => docker.getContainer(id).remove({ force: true, v: true }))));
  await Promise.all(made.volumes.map((v) => attempt(`volume ${v}`, () => docker.getVolume(v).remove())));
  if (made.network) await attempt(`network ${made.network}`, () => docker.getNetwork(made.network as string).remove());
  await attempt(`folder ${dir}`, () => rm(dir, { recursive: true, force: true }));
  if (problems.length) throw new Error(`lab hosts: some objects were not removed:\n${problems.join('\n')}`);
}

/**
 * Removes the lab hosts of runs whose process is gone (killed before it
 * could clean up): containers, engine stores, networks, files. Runs of live
 * processes (another test file, in another worker) are left alone.
 * Returns how many objects were removed.
 */
export async function removeLeftoverLabHosts(docker: Dockerode = new Dockerode({ socketPath: loadConfig().dockerSocket })): Promise<number> {
  const filters = { label: [`${LAB_HOST_LABEL.key}=${LAB_HOST_LABEL.value}`] };
  const owners = new Map<string, Promise<boolean>>();
  const dirs = new Set<string>();
  const orphans = async <T>(items: T[], labelsOf: (item: T) => Record<string, string> | null | undefined): Promise<T[]> => {
    const found: T[] = [];
    for (const item of items) {
      const labels = labelsOf(item) ?? {};
      const owner = labels[OWNER_LABEL] ?? '';
      if (!owners.has(owner)) owners.set(owner, isAlive(owner));
      if (await owners.get(owner)) continue;
      found.push(item);
      if (labels[DIR_LABEL]) dirs.add(labels[DIR_LABEL]);
    }
    return found;
  };
  let removed = 0;
  const remove = (call: () => Promise<unknown>) =>
    call().then(
      () => void removed++,
      (err: { statusCode?: number }) => {
        if (err.statusCode !== 404) throw err;
      },
    );

  // Containers first (with their engine stores), then what they were attached to.
  const containers = await orphans(await docker.listContainers({ all: true, filters }), (c) => c.Labels);
  await Promise.all(containers.map((c) => remove(() => docker.getContainer(c.Id).remove({ force: true, v: true }))));
  const volumes = await orphans((await docker.listVolumes({ filters })).Volumes ?? [], (v) => v.Labels);
  await Promise.all(volumes.map((v) => remove(() => docker.getVolume(v.Name).remove())));
  const networks = await orphans(await docker.listNetworks({ filters }), (n) => n.Labels);
  await Promise.all(networks.map((n) => remove(() => docker.getNetwork(n.Id).remove())));
  // The folders named by those objects, and any other of a dead owner.
  for (const entry of await readdir(tmpdir())) {
    if (!entry.startsWith(DIR_PREFIX)) continue;
    const d = join(tmpdir(), entry);
    const owner = await readFile(join(d, OWNER_FILE), 'utf8').catch(() => undefined);
    if (owner !== undefined && !(await isAlive(owner))) dirs.add(d);
  }
  for (const d of dirs) {
    // Only a folder this helper would have made.
    if (dirname(d) === tmpdir() && basename(d).startsWith(DIR_PREFIX) && existsSync(d)) {
      await rm(d, { recursive: true, force: true });
      removed++;
    }
  }
  return removed;
}

/** A process, named so that a reused process id is not mistaken for it: `<pid>:<start time in clock ticks since boot>`. */
export async function ownerOf(pid: number): Promise<string> {
  return `${pid}:${await startTime(pid)}`;
}

async function startTime(pid: number): Promise<string | undefined> {
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command (which may hold spaces), from field 3 on: start time is field 22.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}

async function isAlive(owner: string): Promise<boolean> {
  const [pid, start] = owner.split(':');
  if (!pid || !start || !/^\d+$/.test(pid)) return false;
  return (await startTime(Number(pid))) === start;
}
