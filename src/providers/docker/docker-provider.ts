import Dockerode from 'dockerode';
import type { Logger } from 'pino';
import { EnvironmentError, errorMessage } from '../../util/errors.js';
import { Mutex } from '../../util/concurrency.js';
import { sha256 } from '../../util/ids.js';
import { retryUntil } from '../../util/retry.js';
import { GRADER_TOOLS_DIR, type EngineCommand, type EngineCommandResult, type HostCapacity, type LabNetwork, type LabRef, type MachineInstance, type MachineRunState, type MachineSpec, type NetworkProvider, type Provider, type StoppedMachine } from '../index.js';
import { CgroupIsolation } from './cgroups.js';
import { dockerCapacity } from './capacity.js';
import { DEFAULT_CONTAINER_DISK, diskQuotaOf, storageOptFor, type DiskQuota } from './disk-quota.js';
import type { Duplex } from 'node:stream';
import { dockerConnection, type DockerEngineAddress } from './engine-address.js';
import { execInContainer, streamThroughContainer } from './exec.js';
import { GraderVolume, type GraderTools } from './grader-volume.js';
import { engineHostFirewall, ensureHostIsolation } from './host-firewall.js';
import { LABEL, labLabels, objectName } from '../index.js';
import { freeSubnet, hostAddress } from '../index.js';
import { LAB_SECCOMP_PROFILE } from './seccomp.js';
import { tarOf } from './tar.js';
import { clearLayer, isPathTooLong } from './too-deep.js';

/** Subnets tried when other processes keep taking the free one first. */
const SUBNET_ATTEMPTS = 8;

export interface DockerProviderOptions {
  /** Where lab subnets are carved from, one /24 per network. */
  subnetPool: string;
  /** The engine; this host's socket when absent. */
  engine?: DockerEngineAddress;
  /** The engine images are built on (this host's), when `engine` is another host's: images are shipped from it. */
  imageSource?: () => Promise<Dockerode>;
  /** The grader's probe, mounted read-only into every container. */
  graderTools: () => Promise<GraderTools>;
}

/**
 * Labs as Docker containers on internal bridge networks.
 *
 * Each container is unprivileged, keeps only the capabilities its image
 * declares (plus what the scenario asks for from a short allowlist), has
 * memory, CPU, PID and (where the engine's storage can) disk limits, no Docker socket, and is labelled with its lab,
 * exam, candidate and machine so nothing it leaves is ever anonymous.
 */
export class DockerProvider implements Provider, NetworkProvider {
  readonly name = 'docker' as const;
  private readonly subnetLock = new Mutex();
  private readonly graderVolume: GraderVolume;
  /** Whether systemd containers get only their own cgroup (a local cgroup v1 host). */
  private readonly isolateCgroups: boolean;
  /** Images shipped to a remote engine, by tag (each once, even when labs ask at the same time). */
  private readonly shipped = new Map<string, Promise<void>>();
  /** A remote engine's host firewall, installed with the first image it has. */
  private remoteIsolation?: Promise<void>;
  /** How the engine bounds a machine's disk; asked once. */
  private diskQuota?: Promise<DiskQuota>;

  private constructor(
    readonly docker: Dockerode,
    private readonly log: Logger,
    private readonly options: DockerProviderOptions,
    /** The engine runs on this host (a Unix socket): its kernel, files and firewall are read and set here. */
    readonly local: boolean,
    private readonly label: string,
  ) {
    this.graderVolume = new GraderVolume(docker, options.graderTools);
    this.isolateCgroups = local && CgroupIsolation.available();
  }

  /** Connects, checks the engine and installs the host isolation rule (a remote host's, with its first image). */
  static async start(log: Logger, options: DockerProviderOptions): Promise<DockerProvider> {
    const connection = dockerConnection(options.engine ?? { url: 'unix:///var/run/docker.sock' });
    const provider = new DockerProvider(new Dockerode(connection.options), log, options, connection.local, connection.label);
    await provider.ping();
    if (connection.local) for (const warning of await ensureHostIsolation()) log.warn(warning);
    else log.warn(`the Docker engine at ${connection.label} is on another host: its systemd containers see that host's cgroups (the per-container cgroup needs the host's files)`);
    return provider;
  }

  async ping(): Promise<string> {
    try {
      const version = await this.docker.version();
      return `Docker ${version.Version}`;
    } catch (err) {
      throw new EnvironmentError(this.local ? `the Docker engine does not answer (${errorMessage(err)}); start it with \`make engines\`` : `the Docker engine at ${this.label} does not answer (${errorMessage(err)})`);
    }
  }

  async createNetwork(lab: LabRef, name: string): Promise<LabNetwork> {
    // Interface names hold 15 characters; the host firewall matches the exl prefix.
    const bridge = `exl${sha256(`${lab.labId}/${name}`).slice(0, 12)}`;
    // Picking a free subnet and creating the network must not interleave with another lab's of this
    // process; another process (a CLI beside the daemon) may still take the same one first: the
    // engine then refuses it as overlapping, and the next free one is tried.
    return this.subnetLock.run(async () => {
      const taken = await this.subnetsInUse();
      for (let attempt = 1; ; attempt++) {
        const subnet = freeSubnet(this.options.subnetPool, taken);
        if (!subnet) throw new EnvironmentError(`no free /24 left in the lab subnet pool ${this.options.subnetPool}`);
        const gateway = hostAddress(subnet, 1);
        try {
          await this.docker.createNetwork({
            Name: objectName(lab, name),
            Driver: 'bridge',
            Internal: true,
            CheckDuplicate: true,
            IPAM: { Driver: 'default', Config: [{ Subnet: subnet, Gateway: gateway }] },
            Options: { 'com.docker.network.bridge.name': bridge, 'com.docker.network.bridge.enable_icc': 'true' },
            Labels: { ...labLabels(lab), [LABEL.network]: name },
          });
          return { name, subnet, gateway, bridge };
        } catch (err) {
          if (attempt >= SUBNET_ATTEMPTS || !/overlap/i.test(errorMessage(err))) throw err;
          this.log.info({ subnet, attempt }, 'lab subnet taken meanwhile by another process; trying the next one');
          taken.push(subnet);
        }
      }
    });
  }

  private async subnetsInUse(): Promise<string[]> {
    const networks = await this.docker.listNetworks();
    return networks.flatMap((n) => (n.IPAM?.Config ?? []).map((c) => c.Subnet).filter((s): s is string => Boolean(s && s.includes('.'))));
  }

  async destroyNetworks(lab: LabRef): Promise<void> {
    const networks = await this.docker.listNetworks({ filters: { label: [`${LABEL.lab}=${lab.labId}`] } });
    for (const n of networks) {
      await this.docker
        .getNetwork(n.Id)
        .remove()
        .catch((err: { statusCode?: number }) => {
          if (err.statusCode !== 404) throw err;
        });
    }
  }

  async createMachine(lab: LabRef, spec: MachineSpec): Promise<MachineInstance> {
    const [first, ...others] = spec.attachments;
    if (!first) throw new EnvironmentError(`machine ${spec.name} has no network`);
    const { image } = spec;
    if (image === undefined) throw new EnvironmentError(`machine ${spec.name} has no image: a container runs one`);
    const name = objectName(lab, spec.name);
    const tmpfs: Record<string, string> = {};
    if (spec.systemd) Object.assign(tmpfs, { '/run': 'rw,nosuid,nodev,size=64m', '/run/lock': 'rw,nosuid,nodev,noexec,size=8m' });
    for (const t of spec.tmpfs) tmpfs[t.path] = `rw,nosuid,nodev,size=${t.sizeBytes}`;
    let container: Dockerode.Container | undefined;
    try {
      if (!this.local) await this.prepareRemote(image);
      const graderVolume = await this.graderVolume.ensure(image);
      const storageOpt = await this.storageOpt(spec, image);
      const cgroups = spec.systemd && this.isolateCgroups ? CgroupIsolation.hostConfig(name) : undefined;
      if (spec.systemd && !cgroups) this.log.warn({ machine: spec.name }, 'this host has no cgroup v1 systemd hierarchy: the container sees the host\'s cgroups');
      container = await this.docker.createContainer({
        name,
        Hostname: spec.hostname,
        Image: image,
        Labels: { ...labLabels(lab), [LABEL.machine]: spec.name },
        Env: spec.systemd ? ['container=docker'] : [],
        HostConfig: {
          NetworkMode: objectName(lab, first.network.name),
          Memory: spec.resources.memoryBytes,
          MemorySwap: spec.resources.memoryBytes,
          NanoCpus: Math.round(spec.resources.cpus * 1e9),
          PidsLimit: spec.resources.pids,
          ...(storageOpt ? { StorageOpt: storageOpt } : {}),
          // The engine's embedded DNS (127.0.0.11) answers for the containers of the lab's own networks
          // and forwards every other name to the container's DNS servers. Left to the engine, those are
          // the host's, and one on the host's loopback (a local caching or stub resolver) is asked from
          // the host's own network, past every firewall: outside names resolve, and a name can carry
          // data out. Given explicitly, 127.0.0.1 is the container's own loopback (later engines read any
          // other 127.x given so as the host's): the engine asks the machine itself, nothing outside.
          Dns: ['127.0.0.1'],
          CapDrop: ['ALL'],
          CapAdd: spec.capabilities,
          SecurityOpt: [`seccomp=${LAB_SECCOMP_PROFILE}`],
          Devices: spec.devices.map((d) => ({ PathOnHost: d, PathInContainer: d, CgroupPermissions: 'rwm' })),
          Tmpfs: { ...tmpfs, ...cgroups?.Tmpfs },
          Binds: cgroups ? cgroups.Binds : spec.systemd ? ['/sys/fs/cgroup:/sys/fs/cgroup:ro'] : [],
          Mounts: [{ Type: 'volume', Source: graderVolume, Target: GRADER_TOOLS_DIR, ReadOnly: true }],
          ...(cgroups ? { CgroupnsMode: cgroups.CgroupnsMode, CgroupParent: cgroups.CgroupParent } : {}),
          RestartPolicy: { Name: 'no' },
          LogConfig: { Type: 'json-file', Config: { 'max-size': '1m', 'max-file': '1' } },
        },
        NetworkingConfig: {
          EndpointsConfig: { [objectName(lab, first.network.name)]: { IPAMConfig: { IPv4Address: first.address } } },
        },
      });
      for (const a of others) {
        await this.docker.getNetwork(objectName(lab, a.network.name)).connect({ Container: container.id, EndpointConfig: { IPAMConfig: { IPv4Address: a.address } } });
      }
      // The grader's key goes in before the first boot: the machine is never reachable without it.
      const archive = await tarOf([
        { path: 'root/.ssh', type: 'directory', mode: 0o700 },
        { path: 'root/.ssh/authorized_keys', content: `${spec.rootAuthorizedKeys}\n`, mode: 0o600 },
      ]);
      await container.putArchive(archive, { path: '/' });
      if (cgroups) await CgroupIsolation.prepare(name, container.id);
      await container.start();
      this.log.debug({ lab: lab.labId, machine: spec.name, container: container.id.slice(0, 12) }, 'container started');
      return { name: spec.name, address: first.address, ref: container.id };
    } catch (err) {
      if (container) await container.remove({ force: true, v: true }).catch(() => undefined);
      await CgroupIsolation.release(name);
      throw new EnvironmentError(`cannot create machine ${spec.name} (image ${image}): ${errorMessage(err)}`);
    }
  }

  private async container(lab: LabRef, machine: string): Promise<Dockerode.ContainerInspectInfo | undefined> {
    try {
      return await this.docker.getContainer(objectName(lab, machine)).inspect();
    } catch {
      return undefined;
    }
  }

  async machineState(lab: LabRef, machine: string): Promise<MachineRunState> {
    const info = await this.container(lab, machine);
    if (!info) return 'missing';
    if (info.State.Paused) return 'paused';
    return info.State.Running ? 'running' : 'stopped';
  }

  async pauseMachine(lab: LabRef, machine: string): Promise<void> {
    if ((await this.machineState(lab, machine)) === 'running') await this.docker.getContainer(objectName(lab, machine)).pause();
  }

  async resumeMachine(lab: LabRef, machine: string): Promise<void> {
    const state = await this.machineState(lab, machine);
    const c = this.docker.getContainer(objectName(lab, machine));
    if (state === 'paused') await c.unpause();
    else if (state === 'stopped') {
      // A stopped container's cgroup is gone: made again before it starts.
      if (this.isolateCgroups) await CgroupIsolation.prepare(objectName(lab, machine), (await c.inspect()).Id);
      await c.start();
    }
  }

  async destroyMachines(lab: LabRef): Promise<void> {
    const containers = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL.lab}=${lab.labId}`] } });
    await Promise.all(containers.map((c) => removeContainer(this.docker, this.docker.getContainer(c.Id))));
    await Promise.all(containers.map((c) => CgroupIsolation.release((c.Names[0] ?? '').replace(/^\//, ''))));
    const volumes = await this.docker.listVolumes({ filters: { label: [`${LABEL.lab}=${lab.labId}`] } });
    for (const v of volumes.Volumes ?? []) await this.docker.getVolume(v.Name).remove().catch(() => undefined);
  }

  async exec(lab: LabRef, machine: string, command: EngineCommand): Promise<EngineCommandResult> {
    return execInContainer(this.docker.getContainer(objectName(lab, machine)), command);
  }

  get reachedThroughEngine(): boolean {
    return !this.local;
  }

  async tunnel(lab: LabRef, machine: string, port: number): Promise<Duplex | undefined> {
    // This host routes to its own engine's lab networks; another host's are reached through the engine.
    if (this.local) return undefined;
    return streamThroughContainer(this.docker.getContainer(objectName(lab, machine)), [`${GRADER_TOOLS_DIR}/examlab-probe`, 'relay', String(port)]);
  }

  /** A remote engine gets the image from this host's (by tag, which carries a content hash), then its host's firewall rule. */
  private async prepareRemote(image: string): Promise<void> {
    let shipping = this.shipped.get(image);
    if (!shipping) {
      shipping = this.ship(image);
      this.shipped.set(image, shipping);
      shipping.catch(() => this.shipped.delete(image));
    }
    await shipping;
    this.remoteIsolation ??= ensureHostIsolation(engineHostFirewall(this.docker, image)).then(
      (warnings) => warnings.forEach((w) => this.log.warn(`${this.label}: ${w}`)),
      (err: unknown) => {
        this.remoteIsolation = undefined;
        throw err;
      },
    );
    await this.remoteIsolation;
  }

  private async ship(image: string): Promise<void> {
    const present = await this.docker
      .getImage(image)
      .inspect()
      .then(() => true)
      .catch((err: { statusCode?: number }) => {
        if (err.statusCode === 404) return false;
        throw err;
      });
    if (present) return;
    if (!this.options.imageSource) throw new EnvironmentError(`image ${image} is not on the engine at ${this.label}, and no engine to ship it from`);
    const started = Date.now();
    const source = await this.options.imageSource();
    const archive = (await source.getImage(image).get()) as NodeJS.ReadableStream;
    const loading = (await this.docker.loadImage(archive)) as NodeJS.ReadableStream;
    await new Promise<void>((resolve, reject) => this.docker.modem.followProgress(loading, (err: Error | null) => (err ? reject(err) : resolve())));
    await this.docker.getImage(image).inspect();
    this.log.info({ image, engine: this.label, seconds: (Date.now() - started) / 1000 }, 'image shipped to the engine');
  }

  /** The disk bound of a machine: what the scenario gives it (or 2 GiB) to write on top of its image. */
  private async storageOpt(spec: MachineSpec, image: string): Promise<Record<string, string> | undefined> {
    return storageOptFor(this.docker, await this.quota(), image, spec.resources.diskBytes ?? DEFAULT_CONTAINER_DISK);
  }

  private quota(): Promise<DiskQuota> {
    this.diskQuota ??= diskQuotaOf(this.docker, this.local).then(
      (quota) => {
        if (quota.kind === 'none') this.log.warn(`the disk of lab machines is not bounded (${quota.why}): one candidate filling their disk fills the engine's`);
        return quota;
      },
      (err: unknown) => {
        this.diskQuota = undefined;
        throw err;
      },
    );
    return this.diskQuota;
  }

  async capacity(): Promise<HostCapacity> {
    const quota = await this.quota();
    return { ...(await dockerCapacity(this.docker, this.options.subnetPool, await this.subnetsInUse(), this.local)), machineDiskBound: quota.kind === 'none' ? { bounded: false, detail: quota.why } : { bounded: true, detail: quota.kind === 'btrfs' ? `btrfs quotas, counting what ${quota.counts === 'written' ? 'each machine writes' : 'each machine references, its image included'}` : 'XFS project quotas' } };
  }

  async stoppedMachines(): Promise<StoppedMachine[]> {
    const containers = await this.docker.listContainers({ all: true, filters: { label: [`${LABEL.managed}=true`], status: ['exited', 'created'] } });
    const stopped = await Promise.all(
      containers.map(async (c): Promise<StoppedMachine | undefined> => {
        const labId = c.Labels[LABEL.lab];
        const machine = c.Labels[LABEL.machine];
        if (!labId || !machine) return undefined;
        // Usually none is stopped: when one is, the engine's record of when it stopped is read (a container never started has none).
        const finished = (await this.docker.getContainer(c.Id).inspect().catch(() => undefined))?.State.FinishedAt;
        return { labId, machine, since: finished && !finished.startsWith('0001-') ? finished : undefined };
      }),
    );
    return stopped.filter((m): m is StoppedMachine => m !== undefined);
  }

  async listLabIds(): Promise<string[]> {
    const [containers, networks] = await Promise.all([
      this.docker.listContainers({ all: true, filters: { label: [`${LABEL.managed}=true`] } }),
      this.docker.listNetworks({ filters: { label: [`${LABEL.managed}=true`] } }),
    ]);
    const ids = [...containers.map((c) => c.Labels[LABEL.lab]), ...networks.map((n) => n.Labels?.[LABEL.lab])];
    return [...new Set(ids.filter((id): id is string => Boolean(id)))];
  }
}

/** How long a removal another caller started (a teardown racing the daemon's own) is waited for. */
const REMOVAL_WAIT_MS = 60_000;

/**
 * Removes a container and its anonymous volumes; one already gone, or being
 * removed by another caller, is waited for, not an error. A container whose
 * files nest too deep for the engine to remove has its layer emptied first.
 */
async function removeContainer(docker: Dockerode, container: Dockerode.Container): Promise<void> {
  try {
    await container.remove({ force: true, v: true });
  } catch (err) {
    const { statusCode, message } = err as { statusCode?: number; message?: string };
    if (statusCode === 404) return;
    if (isPathTooLong(err)) {
      await clearLayer(docker, container);
      await container.remove({ force: true, v: true });
      return;
    }
    if (statusCode !== 409 || !/already in progress/.test(message ?? '')) throw err;
    await retryUntil(
      () => container.inspect().then(() => false, (e: { statusCode?: number }) => e.statusCode === 404),
      (gone) => gone,
      { what: `the removal of container ${container.id} that another caller started`, timeoutMs: REMOVAL_WAIT_MS, intervalMs: 250 },
    );
  }
}
