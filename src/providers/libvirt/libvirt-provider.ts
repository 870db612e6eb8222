import { chmod, mkdir, readdir, rm } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Hypervisor, DomainState, type Domain } from '@unraid/libvirt';
import type { Logger } from 'pino';
import { EnvironmentError, errorMessage } from '../../util/errors.js';
import { generateKeyPair } from '../../remote/index.js';
import { objectName } from '../index.js';
import { parseCidr, vmMacAddress } from '../index.js';
import type { LabRef, MachineConsole, MachineInstance, MachineRunState, MachineSpec, Provider } from '../index.js';
import { probeKernelOf, rememberedAcceleration, type Acceleration } from './accel.js';
import { bootFailureReport } from './boot-report.js';
import { LibvirtConnection } from './connection.js';
import { createBlankDisk, createOverlay, virtualSize } from './disks.js';
import { domainOwner, domainXml, type DomainPlan } from './domain-xml.js';
import { writeSeedIso } from './seed.js';

export interface LibvirtProviderOptions {
  /** qemu:///system, or qemu+ssh://host/system (the lab files and bridges must then be on that host too). */
  uri: string;
  /** Per-lab files (disk overlays, seeds, sockets): <labsDir>/<lab>/. Must be reachable by the QEMU user. */
  labsDir: string;
  /** Where the KVM probe's answer is remembered (see accel.ts). */
  accelerationCache: string;
  /** Where VM images are built: the newest one's kernel probes KVM. */
  imagesDir: string;
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
 */
export class LibvirtProvider implements Provider {
  readonly name = 'libvirt' as const;
  /** A TCG boot of a Debian guest takes about 20 s alone; parallel labs on two cores take longer. */
  readonly bootTimeoutMs = 240_000;

  private constructor(
    private readonly libvirt: LibvirtConnection<Hypervisor>,
    private readonly log: Logger,
    private readonly options: LibvirtProviderOptions,
    readonly acceleration: Acceleration,
  ) {}

  /** Connects to libvirtd and decides, once, whether guests run under KVM or TCG. */
  static async start(log: Logger, options: LibvirtProviderOptions): Promise<LibvirtProvider> {
    // Every call goes through this connection: it is opened again when libvirtd restarts, and no call waits forever.
    const libvirt = new LibvirtConnection({ uri: options.uri, handle: () => new Hypervisor({ uri: options.uri }), log });
    await libvirt.run('connect', (h) => h.connectGetHostname());
    await mkdir(options.labsDir, { recursive: true, mode: 0o711 });
    const acceleration = await rememberedAcceleration(options.accelerationCache, await probeKernelOf(options.imagesDir));
    log.info({ uri: options.uri, domainType: acceleration.domainType, reason: acceleration.reason }, 'libvirt provider ready');
    return new LibvirtProvider(libvirt, log, options, acceleration);
  }

  async ping(): Promise<string> {
    const host = await this.libvirt.run('ping', (h) => h.connectGetHostname(), { timeoutMs: 10_000 });
    return `libvirt at ${this.options.uri} on ${host}, domain type ${this.acceleration.domainType} (${this.acceleration.reason})`;
  }

  /** Where the files of one lab live. */
  labDir(lab: LabRef): string {
    return join(this.options.labsDir, lab.labId);
  }

  /** The domain XML for a machine, and the files it refers to (made by `createMachine`). */
  plan(lab: LabRef, spec: MachineSpec): DomainPlan {
    const dir = this.labDir(lab);
    const file = (suffix: string) => join(dir, `${spec.name}${suffix}`);
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
      console: { socket: file('.console.sock'), log: spec.consoleLog ?? file('.console.log') },
      agentSocket: file('.agent.sock'),
    };
  }

  async createMachine(lab: LabRef, spec: MachineSpec): Promise<MachineInstance> {
    const [first] = spec.attachments;
    if (!first) throw new EnvironmentError(`machine ${spec.name} has no network`);
    const plan = this.plan(lab, spec);
    const [root, ...extra] = plan.disks as [DomainPlan['disks'][number], ...DomainPlan['disks']];
    try {
      await mkdir(this.labDir(lab), { recursive: true, mode: 0o711 });
      await chmod(this.labDir(lab), 0o711); // QEMU runs as its own user and must reach the overlays
      await mkdir(dirname(plan.console.log), { recursive: true });
      await this.createRootDisk(spec, root.path);
      await Promise.all(extra.map((d, i) => createBlankDisk(d.path, spec.disks?.[i]?.sizeBytes as number)));
      if (plan.seed !== undefined) await writeSeedIso(plan.seed, {
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
      });
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
      this.log.debug({ lab: lab.labId, machine: spec.name, domain: plan.name, type: plan.type, started: !spec.poweredOff }, 'domain defined');
      return {
        name: spec.name,
        address: first.address,
        ref: plan.name,
        console: { socket: plan.console.socket, log: plan.console.log, agent: plan.agentSocket },
      };
    } catch (err) {
      await this.libvirt.run(`remove domain ${plan.name}`, (h) => this.removeDomainNamed(h, plan.name), { timeoutMs: 60_000 }).catch(() => undefined);
      await removeMachineFiles(plan);
      throw new EnvironmentError(`cannot create machine ${spec.name}: ${errorMessage(err)}`, [], { cause: err });
    }
  }

  /** The root disk: a linked clone of the image, or an empty disk for a machine that boots from the network. */
  private async createRootDisk(spec: MachineSpec, path: string): Promise<void> {
    const diskBytes = spec.resources.diskBytes;
    if (spec.boot?.mode === 'network') {
      if (diskBytes === undefined) throw new Error('a machine that boots from the network needs resources.disk: the size of its blank disk');
      return createBlankDisk(path, diskBytes);
    }
    if (spec.image === undefined) throw new Error('it has no image');
    const image = spec.image;
    const baseSize = await virtualSize(image).catch((err) => {
      throw new Error(`its image ${image} is not a readable disk image: ${errorMessage(err)}`);
    });
    if (diskBytes !== undefined && diskBytes < baseSize) {
      throw new Error(`resources.disk (${diskBytes} bytes) is smaller than its image's disk (${baseSize} bytes)`);
    }
    await createOverlay(path, image, diskBytes);
  }

  /** A fresh first boot: the machine's domain and files are removed, then made again from its image. */
  async recreateMachine(lab: LabRef, spec: MachineSpec): Promise<MachineInstance> {
    const name = objectName(lab, spec.name);
    await this.libvirt.run(`remove domain ${name}`, (h) => this.removeDomainNamed(h, name), { timeoutMs: 60_000 });
    await removeMachineFiles(this.plan(lab, spec));
    return this.createMachine(lab, spec);
  }

  bootFailureReport(console: MachineConsole): Promise<string> {
    return bootFailureReport(console);
  }

  /** The lab's domains, found by the owner in their metadata (names alone could be anyone's). */
  private async domainsOf(h: Hypervisor, labId?: string): Promise<{ domain: Domain; owner: NonNullable<ReturnType<typeof domainOwner>> }[]> {
    const found = [];
    for (const domain of await h.connectListAllDomains()) {
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
    await rm(this.labDir(lab), { recursive: true, force: true });
  }

  /** Stops and undefines the domain of that name, if there is one. */
  private async removeDomainNamed(h: Hypervisor, name: string): Promise<void> {
    const domain = await this.domain(h, name);
    if (domain) await removeDomain(h, domain);
  }

  async listLabIds(): Promise<string[]> {
    const fromDomains = (await this.libvirt.run('list domains', (h) => this.domainsOf(h))).map((d) => d.owner.labId);
    // A lab folder without a domain is what an interrupted teardown leaves: it is a lab here too.
    const fromFiles = await readdir(this.options.labsDir).catch(() => [] as string[]);
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

/** The files of one machine in its lab's folder (the console log, kept with the lab record, stays). */
async function removeMachineFiles(plan: DomainPlan): Promise<void> {
  await Promise.all([...plan.disks.map((d) => d.path), ...(plan.seed === undefined ? [] : [plan.seed]), plan.console.socket, plan.agentSocket].map((f) => rm(f, { force: true })));
}

/** A stable, locally administered MAC per lab, machine and network: the one scenarios know (`machines.<m>.mac`). */
export function macAddress(lab: LabRef, machine: string, network: string): string {
  return vmMacAddress(lab.labId, machine, network);
}
