import type { HostCapacity } from '../providers/index.js';
import type { Scenario } from '../scenario/index.js';

/**
 * How many labs of a scenario a host can hold, and which resource says so.
 * The figures per machine were measured on the project's hosts (see
 * BENCHMARKS.md): a systemd container holds 6 to 8 inotify instances and
 * about 45 MiB of memory once booted; a VM takes its whole memory.
 */
const MIB = 1024 ** 2;
const GIB = 1024 ** 3;
/** Memory a container takes in practice (its limit is a ceiling, rarely reached). */
export const CONTAINER_MEMORY = 64 * MIB;
/** QEMU's own memory beside the guest's. */
const VM_OVERHEAD = 64 * MIB;
/** Left to the host, the engines and the daemon. */
const MEMORY_RESERVE = 2 * GIB;
export const INOTIFY_PER_SYSTEMD_CONTAINER = 8;
const DISK_PER_CONTAINER = 64 * MIB;
const DISK_PER_VM = GIB;
/** Disk kept free for the store and the system: labs count only on what is above it, and the daemon warns as it nears it. */
export const DISK_RESERVE = 2 * GIB;

/** What one lab of a scenario takes. */
export interface LabNeeds {
  containers: number;
  systemdContainers: number;
  vms: number;
  memoryBytes: number;
  networks: number;
  diskBytes: number;
}

/** `systemdImage(name)` says whether an image runs systemd as PID 1. */
export function labNeeds(scenario: Scenario, systemdImage: (image: string) => boolean): LabNeeds {
  const vms = scenario.machines.filter((m) => m.provider !== 'docker');
  const containers = scenario.machines.filter((m) => m.provider === 'docker');
  return {
    containers: containers.length,
    systemdContainers: containers.filter((m) => m.image !== undefined && systemdImage(m.image)).length,
    vms: vms.length,
    memoryBytes: containers.reduce((s, m) => s + Math.min(m.resources.memory, CONTAINER_MEMORY), 0) + vms.reduce((s, m) => s + m.resources.memory + VM_OVERHEAD, 0),
    networks: scenario.networks.length,
    diskBytes: containers.length * DISK_PER_CONTAINER + vms.length * DISK_PER_VM,
  };
}

export interface CapacityLine {
  resource: string;
  perLab: string;
  available: string;
  /** Labs this resource allows; undefined when the host cannot tell (it is then not a limit). */
  labs?: number;
}

export interface CapacityReport {
  /** More labs of this scenario the host can take now. */
  labs: number;
  /** The resource that sets it. */
  limitedBy: string;
  /** Summed over this many lab hosts (a line each); absent for this host alone. */
  hosts?: number;
  lines: CapacityLine[];
}

const gib = (bytes: number) => `${(bytes / GIB).toFixed(1)} GiB`;
const mib = (bytes: number) => `${Math.round(bytes / MIB)} MiB`;

/**
 * Labs that fit, resource by resource, on the hosts that run the scenario's
 * machines. `liveLabs` are the labs already there (counted as this scenario's
 * size: one host, one room).
 */
export function fitLabs(needs: LabNeeds, host: HostCapacity, liveLabs: number): CapacityReport {
  const per = (available: number, need: number) => (need > 0 ? Math.max(0, Math.floor(available / need) - liveLabs) : undefined);
  const lines: CapacityLine[] = [
    { resource: 'memory', perLab: mib(needs.memoryBytes), available: `${gib(host.memoryBytes)} (${gib(MEMORY_RESERVE)} kept for the host)`, labs: per(host.memoryBytes - MEMORY_RESERVE, needs.memoryBytes) },
    { resource: 'lab networks', perLab: String(needs.networks), available: host.freeSubnets === undefined ? 'unknown' : `${host.freeSubnets} free /24 in the pool`, labs: host.freeSubnets === undefined || !needs.networks ? undefined : Math.floor(host.freeSubnets / needs.networks) },
    {
      resource: 'inotify instances',
      perLab: `${needs.systemdContainers * INOTIFY_PER_SYSTEMD_CONTAINER} (${needs.systemdContainers} systemd machines)`,
      available: host.inotifyInstancesFree === undefined ? 'unknown (remote engine)' : `${host.inotifyInstancesFree} free (fs.inotify.max_user_instances)`,
      labs: host.inotifyInstancesFree === undefined || !needs.systemdContainers ? undefined : Math.floor(host.inotifyInstancesFree / (needs.systemdContainers * INOTIFY_PER_SYSTEMD_CONTAINER)),
    },
    // CPU sets how fast labs are built and graded (see provisioning.concurrency), not how many fit: a booted lab idles.
    { resource: 'cpu', perLab: 'idle once built', available: `${host.cpus} cores (build and grading speed, not a limit)` },
    { resource: 'disk', perLab: mib(needs.diskBytes), available: host.diskFreeBytes === undefined ? 'unknown (remote engine)' : `${gib(host.diskFreeBytes)} free (${gib(DISK_RESERVE)} kept)`, labs: host.diskFreeBytes === undefined ? undefined : Math.max(0, Math.floor((host.diskFreeBytes - DISK_RESERVE) / needs.diskBytes)) },
    ...(host.machineDiskBound
      ? [{ resource: 'disk bound per machine', perLab: 'resources.disk of each container (2 GiB by default)', available: host.machineDiskBound.bounded ? `enforced (${host.machineDiskBound.detail})` : `NOT enforced: ${host.machineDiskBound.detail}` }]
      : []),
  ];
  const limiting = lines.filter((l) => l.labs !== undefined).sort((a, b) => (a.labs as number) - (b.labs as number))[0];
  return { labs: limiting?.labs ?? 0, limitedBy: limiting ? `${limiting.resource}: ${limiting.perLab} a lab, ${limiting.available}` : 'nothing known', lines };
}
