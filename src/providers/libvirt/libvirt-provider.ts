import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import { Hypervisor, DomainState, ConnectListAllDomainsFlags, type Domain } from '@unraid/libvirt';
import type { Logger } from 'pino';
import { EnvironmentError, errorMessage } from '../../util/errors.js';
import { generateKeyPair } from '../../remote/index.js';
import { objectName } from '../index.js';
import { parseCidr, vmMacAddress } from '../index.js';
import type { LabRef, MachineBoot, MachineConsole, MachineInstance, MachineRunState, MachineSpec, Provider, StoppedMachine } from '../index.js';
import { probeKernelOf, rememberedAcceleration, rememberedRemoteAcceleration, type Acceleration } from './accel.js';
import { bootFailureReport } from './boot-report.js';
import { LibvirtConnection } from './connection.js';
import { createBlankDisk, createOverlay, virtualSize } from './disks.js';
import { domainAddress, domainOwner, domainXml, type DomainPlan } from './domain-xml.js';
import { openLabHostLibvirt, type LabHostLibvirt, type LabHostLibvirtOptions } from './lab-host.js';
import { writeSeedIso } from './seed.js';
import { localVmHost, type VmHost } from './vm-host.js';

export interface LibvirtProviderOptions {
  /** qemu:///system (this host's libvirtd), or qemu+ssh://user@host[:port]/system with `labHost` (a lab host's). */
  uri: string;
  /** Per-lab files (disk overlays, seeds, sockets), on the host libvirtd runs on: <labsDir>/<lab>/. Must be reachable by the QEMU user. */
  labsDir: string;
  /** Where the KVM probe's answer is remembered, on this host (see accel.ts); one file per libvirtd. */
  accelerationCache: string;
  /** Where VM images are built, on this host: the newest one's kernel probes KVM, and a lab host gets copies of them. */
  imagesDir: string;
  /**
   * libvirtd runs on a lab host (`uri` is qemu+ssh): the VMs, their files
   * and the lab bridges they join (made by that host's Docker engine) are
   * there, reached over one SSH connection (see lab-host.ts).
   */
  labHost?: LabHostLibvirtOptions;
}

/**
 * Labs as libvirt/QEMU virtual machines, on the lab networks the Docker
 * provider made (a VM's NIC joins the lab's bridge), so one lab can mix
 * containers and VMs.
 *
 * Each VM boots from a qcow2 overlay on its image's read-only base (a linked
 * clone: nothing big is copied), with a seed CD carrying its addresses and
 * the grader's key. Everything of a lab lives in <labsDir>/<lab>/ and in
 * domains named exl-<lab>-<machine> whose metadata names the lab; teardown
 * removes both. A failed create removes what it made.
 *
 * The libvirtd may be a lab host's (`labHost`): then the lab's networks are
 * that host's engine's, its files are there, the image's files are copied
 * there first (once per image), and the VMs are reached through the host's
 * SSH connection only (tunnel, console, guest agent, console log).
 */
export class LibvirtProvider implements Provider {
  readonly name = 'libvirt' as const;
  /** A TCG boot of a Debian guest takes about 20 s alone; parallel labs on two cores take longer. */
  readonly bootTimeoutMs = 240_000;
  /** The grader's address of each VM this process made or looked up, by domain name (a lab host's VMs are reached by it). */
  private readonly addresses = new Map<string, string>();

  private constructor(
    private readonly libvirt: LibvirtConnection<Hypervisor>,
    private readonly log: Logger,
    private readonly options: LibvirtProviderOptions,
    readonly acceleration: Acceleration,
    /** Where the VMs and their files are: this host, or a lab host. */
    private readonly host: VmHost,
    private readonly labHost?: LabHostLibvirt,
  ) {}

  /** Connects to libvirtd (a lab host's through SSH) and decides, once, whether guests run under KVM or TCG. */
  static async start(log: Logger, options: LibvirtProviderOptions): Promise<LibvirtProvider> {
    if (options.uri.startsWith('qemu+ssh:') !== (options.labHost !== undefined)) {
      throw new EnvironmentError(`libvirt at ${options.uri}: ${options.labHost ? 'a lab host\'s libvirt is qemu+ssh://user@host/system' : 'qemu+ssh:// is a lab host\'s libvirt, which needs its SSH key and host key (labHost)'}`);
    }
    const labHost = options.labHost ? await openLabHostLibvirt(options.uri, { labsDir: options.labsDir, localImagesDir: options.imagesDir }, options.labHost, log) : undefined;
    try {
      const clientUri = labHost?.clientUri ?? options.uri;
      // Every call goes through this connection: it is opened again when libvirtd restarts, and no call waits forever.
      const libvirt = new LibvirtConnection({
        uri: options.uri,
        handle: () => new Hypervisor({ uri: clientUri }),
        log,
        ...(labHost ? { hint: `is ${labHost.connection.label} up, with libvirtd running there?` } : {}),
      });
      await libvirt.run('connect', (h) => h.connectGetHostname());
      const host = labHost?.host ?? localVmHost;
      await host.mkdir(options.labsDir, 0o711);
      const kernel = await probeKernelOf(options.imagesDir);
      const acceleration = !labHost
        ? await rememberedAcceleration(options.accelerationCache, kernel)
        : options.labHost?.kvm !== undefined
          ? { domainType: options.labHost.kvm ? ('kvm' as const) : ('qemu' as const), reason: `the lab host's configuration says guests run ${options.labHost.kvm ? 'under KVM' : 'under TCG (emulation)'}` }
          : await rememberedRemoteAcceleration(options.accelerationCache, labHost.connection, { scratch: dirname(options.labsDir), kernel });
      log.info({ uri: options.uri, domainType: acceleration.domainType, reason: acceleration.reason }, 'libvirt provider ready');
      return new LibvirtProvider(libvirt, log, options, acceleration, host, labHost);
    } catch (err) {
      await labHost?.close();
      throw err;
    }
  }

  async ping(): Promise<string> {
    const host = await this.libvirt.run('ping', (h) => h.connectGetHostname(), { timeoutMs: 10_000 });
    return `libvirt at ${this.options.uri}${this.labHost ? ' (its socket carried over SSH)' : ''} on ${host}, domain type ${this.acceleration.domainType} (${this.acceleration.reason})`;
  }

  /** A lab host's VMs are reached through its SSH connection only: while it is down, nobody reaches them. */
  get reachedThroughEngine(): boolean {
    return !this.host.local;
  }

  /** Closes the connection to libvirtd, and a lab host's SSH connection with it. */
  async close(): Promise<void> {
    this.libvirt.close();
    await this.labHost?.close();
  }

  /** Where the files of one lab live. */
  labDir(lab: LabRef): string {
    return join(this.options.labsDir, lab.labId);
  }

  /** The files of a machine in its lab's folder that are reached while it runs (its console log, unless kept elsewhere). */
  private machineFiles(lab: LabRef, machine: string): { console: string; agent: string; log: string } {
    const file = (suffix: string) => join(this.labDir(lab), `${machine}${suffix}`);
    return { console: file('.console.sock'), agent: file('.agent.sock'), log: file('.console.log') };
  }

  /** The domain XML for a machine, and the files it refers to (made by `createMachine`). */
  plan(lab: LabRef, spec: MachineSpec): DomainPlan {
    const dir = this.labDir(lab);
    const file = (suffix: string) => join(dir, `${spec.name}${suffix}`);
    const files = this.machineFiles(lab, spec.name);
    return {
      name: objectName(lab, spec.name),
      type: this.acceleration.domainType,
      owner: { labId: lab.labId, examId: lab.examId, candidateId: lab.candidateId, machine: spec.name },
      vcpus: Math.max(1, Math.ceil(spec.resources.cpus)),
      memoryBytes: spec.resources.memoryBytes,
      boot: spec.boot ?? { mode: 'disk' },
      disks: [
        { path: file('.qcow2'), serial: 'root' },
        ...(spec.disks ?? []).map((_, i) => ({ path: file(`-disk${i + 1}.qcow2`), serial: `disk${i + 1}` })),
      ],
      // A machine that boots from the network is blank: examlab gives it nothing, its deployment does.
      seed: spec.boot?.mode === 'network' ? undefined : file('-seed.iso'),
      interfaces: spec.attachments.map((a) => ({ bridge: a.network.bridge, mac: macAddress(lab, spec.name, a.network.name) })),
      console: { socket: files.console, log: spec.consoleLog ?? files.log },
      agentSocket: files.agent,
      // Recorded on a lab host only: its VMs are reached by their address through the host (see tunnel).
      address: this.host.local ? undefined : spec.attachments[0]?.address,
    };
  }

  async createMachine(lab: LabRef, given: MachineSpec): Promise<MachineInstance> {
    const [first] = given.attachments;
    if (!first) throw new EnvironmentError(`machine ${given.name} has no network`);
    let plan = this.plan(lab, given);
    try {
      const spec = await this.onHost(given);
      plan = this.plan(lab, spec);
      const [root, ...extra] = plan.disks as [DomainPlan['disks'][number], ...DomainPlan['disks']];
      await this.host.mkdir(this.labDir(lab), 0o711);
      await this.host.chmod(this.labDir(lab), 0o711); // QEMU runs as its own user and must reach the overlays
      await this.host.mkdir(dirname(plan.console.log));
      await this.createRootDisk(spec, root.path);
      await Promise.all(extra.map((d, i) => createBlankDisk(this.host, d.path, spec.disks?.[i]?.sizeBytes as number)));
      const seed = plan.seed;
      if (seed !== undefined) {
        await this.host.place(seed, (path) =>
          writeSeedIso(path, {
            instanceId: `${plan.name}-${Date.now()}`,
            hostname: spec.hostname,
            authorizedKeys: spec.rootAuthorizedKeys,
            hostKey: generateKeyPair(`root@${spec.hostname}`),
            interfaces: spec.attachments.map((a, i) => ({
              mac: plan.interfaces[i]?.mac as string,
              address: a.address,
              prefix: parseCidr(a.network.subnet).bits,
              gateway: i === 0 ? a.network.gateway : undefined,
            })),
          }),
        );
      }
      // Not tried twice: a second define could meet the first one's domain. A machine powered on later (after the faults) is only defined.
      await this.libvirt.run(
        `define${spec.poweredOff ? '' : ' and start'} domain ${plan.name}`,
        async (h) => {
          const defined = await h.domainDefineXML(domainXml(plan));
          if (!spec.poweredOff) await h.domainCreate(defined);
        },
        // libvirtd probes QEMU at a domain's start: about 52 s where /dev/kvm is there but unusable (see scripts/engines.sh).
        { timeoutMs: 180_000, retry: false },
      );
      this.addresses.set(plan.name, first.address);
      this.log.debug({ lab: lab.labId, machine: spec.name, domain: plan.name, type: plan.type, started: !spec.poweredOff }, 'domain defined');
      return {
        name: spec.name,
        address: first.address,
        ref: plan.name,
        console: { socket: plan.console.socket, log: plan.console.log, agent: plan.agentSocket },
      };
    } catch (err) {
      const name = plan.name;
      await this.libvirt.run(`remove domain ${name}`, (h) => this.removeDomainNamed(h, name), { timeoutMs: 60_000 }).catch(() => undefined);
      await this.removeMachineFiles(plan).catch(() => undefined);
      throw new EnvironmentError(`cannot create machine ${given.name}: ${errorMessage(err)}`, [], { cause: err });
    }
  }

  /**
   * The spec as the VM's host sees it. On a lab host: its image's files are
   * the host's copies (made now when missing), and its console log is kept
   * with the lab's files there (a path of this host means nothing there).
   */
  private async onHost(spec: MachineSpec): Promise<MachineSpec> {
    const images = this.labHost?.images;
    if (!images) return spec;
    const boot: MachineBoot | undefined =
      spec.boot?.mode === 'kernel'
        ? { ...spec.boot, kernel: await images.pathOf(spec.boot.kernel), initrd: spec.boot.initrd === undefined ? undefined : await images.pathOf(spec.boot.initrd) }
        : spec.boot;
    return { ...spec, image: spec.image === undefined ? undefined : await images.pathOf(spec.image), boot, consoleLog: undefined };
  }

  /** The root disk: a linked clone of the image, or an empty disk for a machine that boots from the network. */
  private async createRootDisk(spec: MachineSpec, path: string): Promise<void> {
    const diskBytes = spec.resources.diskBytes;
    if (spec.boot?.mode === 'network') {
      if (diskBytes === undefined) throw new Error('a machine that boots from the network needs resources.disk: the size of its blank disk');
      return createBlankDisk(this.host, path, diskBytes);
    }
    if (spec.image === undefined) throw new Error('it has no image');
    const image = spec.image;
    const baseSize = await virtualSize(this.host, image).catch((err) => {
      throw new Error(`its image ${image} is not a readable disk image: ${errorMessage(err)}`);
    });
    if (diskBytes !== undefined && diskBytes < baseSize) {
      throw new Error(`resources.disk (${diskBytes} bytes) is smaller than its image's disk (${baseSize} bytes)`);
    }
    await createOverlay(this.host, path, image, diskBytes);
  }

  /** A fresh first boot: the machine's domain and files are removed, then made again from its image. */
  async recreateMachine(lab: LabRef, spec: MachineSpec): Promise<MachineInstance> {
    const name = objectName(lab, spec.name);
    await this.libvirt.run(`remove domain ${name}`, (h) => this.removeDomainNamed(h, name), { timeoutMs: 60_000 });
    await this.removeMachineFiles(this.plan(lab, spec));
    return this.createMachine(lab, spec);
  }

  bootFailureReport(console: MachineConsole): Promise<string> {
    return bootFailureReport(this.host, console);
  }

  /** A lab host's VM, through the host: its sshd is on that host's bridge, which this host does not route to. */
  async tunnel(lab: LabRef, machine: string, port: number): Promise<Duplex | undefined> {
    if (!this.labHost) return undefined;
    const address = await this.addressOf(objectName(lab, machine));
    return this.labHost.connection.forwardOut(address, port);
  }

  /** A lab host's VM's serial console or guest agent, through the host (this host's are at their paths). */
  async consoleStream(lab: LabRef, machine: string, which: 'console' | 'agent'): Promise<Duplex | undefined> {
    if (!this.labHost) return undefined;
    const files = this.machineFiles(lab, machine);
    return this.host.openSocket(which === 'console' ? files.console : files.agent, 15_000);
  }

  /** The end of a lab host's VM's console log, read there (this host's is read at its path). */
  async consoleLogTail(lab: LabRef, machine: string, maxBytes: number): Promise<Buffer | undefined> {
    if (!this.labHost) return undefined;
    return (await this.labHost.connection.readTail(this.machineFiles(lab, machine).log, { maxBytes, timeoutMs: 30_000 })) ?? Buffer.alloc(0);
  }

  /** The grader's address of a VM, from its domain's metadata when this process did not make it. */
  private async addressOf(name: string): Promise<string> {
    const known = this.addresses.get(name);
    if (known) return known;
    const address = await this.libvirt.run(`address of domain ${name}`, async (h) => {
      const domain = await this.domain(h, name);
      return domain ? domainAddress(await h.domainGetXMLDesc(domain)) : undefined;
    });
    if (!address) throw new EnvironmentError(`domain ${name} is not on ${this.host.label}, or records no address`);
    this.addresses.set(name, address);
    return address;
  }

  /** The lab's domains (or only the shut-off ones), found by the owner in their metadata (names alone could be anyone's). */
  private async domainsOf(h: Hypervisor, labId?: string, which?: ConnectListAllDomainsFlags): Promise<{ domain: Domain; owner: NonNullable<ReturnType<typeof domainOwner>> }[]> {
    const found = [];
    for (const domain of await h.connectListAllDomains(which)) {
      const name = await h.domainGetName(domain);
      if (!name.startsWith('exl-')) continue;
      const owner = domainOwner(await h.domainGetXMLDesc(domain));
      if (owner && (labId === undefined || owner.labId === labId)) found.push({ domain, owner });
    }
    return found;
  }

  private async domain(h: Hypervisor, name: string): Promise<Domain | undefined> {
    try {
      return await h.domainLookupByName(name);
    } catch (err) {
      if (/domain not found/i.test(errorMessage(err))) return undefined;
      throw err;
    }
  }

  async machineState(lab: LabRef, machine: string): Promise<MachineRunState> {
    const name = objectName(lab, machine);
    return this.libvirt.run(`state of domain ${name}`, async (h) => {
      const domain = await this.domain(h, name);
      return domain ? runState(h, domain) : 'missing';
    });
  }

  async pauseMachine(lab: LabRef, machine: string): Promise<void> {
    const name = objectName(lab, machine);
    await this.libvirt.run(`pause domain ${name}`, async (h) => {
      const domain = await this.domain(h, name);
      if (domain && (await runState(h, domain)) === 'running') await h.domainSuspend(domain);
    });
  }

  async resumeMachine(lab: LabRef, machine: string): Promise<void> {
    const name = objectName(lab, machine);
    await this.libvirt.run(`resume domain ${name}`, async (h) => {
      const domain = await this.domain(h, name);
      if (!domain) return;
      const state = await runState(h, domain);
      if (state === 'paused') await h.domainResume(domain);
      else if (state === 'stopped') await h.domainCreate(domain);
    });
  }

  async destroyMachines(lab: LabRef): Promise<void> {
    await this.libvirt.run(
      `remove the domains of lab ${lab.labId}`,
      async (h) => {
        for (const { domain } of await this.domainsOf(h, lab.labId)) await removeDomain(h, domain);
      },
      { timeoutMs: 120_000 },
    );
    for (const name of this.addresses.keys()) if (name.startsWith(`exl-${lab.labId}-`)) this.addresses.delete(name);
    await this.host.remove([this.labDir(lab)]);
  }

  /** The files of one machine in its lab's folder (the console log, kept with the lab record, stays). */
  private async removeMachineFiles(plan: DomainPlan): Promise<void> {
    await this.host.remove([...plan.disks.map((d) => d.path), ...(plan.seed === undefined ? [] : [plan.seed]), plan.console.socket, plan.agentSocket]);
  }

  /** Stops and undefines the domain of that name, if there is one. */
  private async removeDomainNamed(h: Hypervisor, name: string): Promise<void> {
    const domain = await this.domain(h, name);
    if (domain) await removeDomain(h, domain);
  }

  async stoppedMachines(): Promise<StoppedMachine[]> {
    // Shut-off domains only: usually none, so no domain's XML is read.
    const off = await this.libvirt.run('list shut-off domains', (h) => this.domainsOf(h, undefined, ConnectListAllDomainsFlags.INACTIVE));
    return off.map(({ owner }) => ({ labId: owner.labId, machine: owner.machine }));
  }

  async listLabIds(): Promise<string[]> {
    const fromDomains = (await this.libvirt.run('list domains', (h) => this.domainsOf(h))).map((d) => d.owner.labId);
    // A lab folder without a domain is what an interrupted teardown leaves: it is a lab here too.
    const fromFiles = await this.host.list(this.options.labsDir);
    return [...new Set([...fromDomains, ...fromFiles])];
  }
}

/** Stops (if running) and undefines a domain; a domain already gone is fine. */
async function removeDomain(h: Hypervisor, domain: Domain): Promise<void> {
  const gone = (err: unknown) => {
    if (!/domain not found|domain is not running|no domain with matching/i.test(errorMessage(err))) throw err;
  };
  await h.domainDestroy(domain).catch(gone);
  await h.domainUndefine(domain).catch(gone);
}

async function runState(h: Hypervisor, domain: Domain): Promise<MachineRunState> {
  const { state } = await h.domainGetInfo(domain);
  if (state === DomainState.PAUSED || state === DomainState.PMSUSPENDED) return 'paused';
  return state === DomainState.RUNNING || state === DomainState.BLOCKED ? 'running' : 'stopped';
}

/** A stable, locally administered MAC per lab, machine and network: the one scenarios know (`machines.<m>.mac`). */
export function macAddress(lab: LabRef, machine: string, network: string): string {
  return vmMacAddress(lab.labId, machine, network);
}
