import type { Duplex } from 'node:stream';

/**
 * Where a lab runs. The scenario says what a lab is; a provider says where
 * its machines run (Docker containers, libvirt VMs). Providers speak only
 * these types, never their engine's, so each can be swapped for another.
 */

export type ProviderName = 'docker' | 'libvirt';

/** Whose resources these are: every engine object carries these as labels/metadata. */
export interface LabRef {
  labId: string;
  examId?: string;
  candidateId?: string;
}

/** A lab network as created: an isolated bridge with its own subnet. */
export interface LabNetwork {
  name: string;
  /** CIDR, e.g. 10.231.4.0/24 */
  subnet: string;
  gateway: string;
  /** Host bridge interface the machines attach to (VMs included). */
  bridge: string;
}

export interface MachineAttachment {
  network: LabNetwork;
  address: string;
}

/** What a provider needs to create one machine. */
export interface MachineSpec {
  name: string;
  hostname: string;
  /** Resolved image: a Docker tag, or a VM image's disk, per provider; none for a VM that boots from the network (its disk starts blank). */
  image?: string;
  attachments: MachineAttachment[];
  resources: { cpus: number; memoryBytes: number; pids: number; diskBytes?: number };
  /** Linux capabilities the machine keeps; all others are dropped. */
  capabilities: string[];
  devices: string[];
  /** PID 1 is systemd (containers need a few mounts for it). */
  systemd: boolean;
  tmpfs: { path: string; sizeBytes: number }[];
  /** authorized_keys content for root: the grader's key. */
  rootAuthorizedKeys: string;
  /** Extra disks (VMs). */
  disks?: { sizeBytes: number }[];
  /** How a VM starts: its image's kernel (direct boot), its disk's own boot loader, or the network while its blank disk boots nothing. */
  boot?: MachineBoot;
  /**
   * Created powered off, started later by `resumeMachine`: a machine whose
   * first boot depends on what the lab's other machines serve (a network
   * boot) must not start before they are set up as the candidate gets them.
   */
  poweredOff?: boolean;
  /** Where a VM's serial console output is kept; the file outlives the machine. */
  consoleLog?: string;
}

/**
 * `network`: a blank machine. Its root disk is empty (resources.diskBytes); it
 * boots from its disk first and from the network (PXE) when the disk boots
 * nothing, so a deployment server installs it and it then boots what was
 * installed. Nothing of examlab is on it: no seed, no grader key.
 */
export type MachineBoot = { mode: 'kernel'; kernel: string; initrd?: string; cmdline: string } | { mode: 'disk' } | { mode: 'network' };

/** The ways into a VM that do not need its network. */
export interface MachineConsole {
  /** Unix socket of the serial console (what a person types into). */
  socket: string;
  /** Everything the machine printed on its console. */
  log: string;
  /** Unix socket of the guest agent: steps and grading when SSH is down. */
  agent?: string;
}

export interface MachineInstance {
  name: string;
  /** Address the grader uses for SSH (on the first lab network). */
  address: string;
  /** Engine's own id (container id, domain name), for logs. */
  ref: string;
  /** VMs: the serial console and guest agent. */
  console?: MachineConsole;
}

export type MachineRunState = 'running' | 'paused' | 'stopped' | 'missing';

/**
 * Where a provider that runs commands through its engine (containers) puts
 * the grader's probe: a read-only volume mounted into every machine at
 * creation, which nothing inside the machine can change or cover.
 */
export const GRADER_TOOLS_DIR = '/.examlab-grader';

/** A program run inside a machine through its engine: an argv (no shell), its stdin, bounded time and output. */
export interface EngineCommand {
  argv: readonly string[];
  stdin?: string | Buffer;
  timeoutMs: number;
  /** stdout and stderr together; past it the run is stopped and reported as a flood. */
  maxOutputBytes: number;
}

export interface EngineCommandResult {
  exitCode: number;
  stdout: Buffer;
  stderr: Buffer;
}

export interface StoppedMachine {
  labId: string;
  machine: string;
  since?: string;
}

export interface Provider {
  readonly name: ProviderName;
  /** Checks that the engine answers; throws EnvironmentError saying how to start it. */
  ping(): Promise<string>;
  /** Creates and starts a machine (created stopped when `spec.poweredOff`). A failed create leaves nothing of that machine behind. */
  createMachine(lab: LabRef, spec: MachineSpec): Promise<MachineInstance>;
  /** Freezes a machine (no process runs) or lets it run again. */
  pauseMachine(lab: LabRef, machine: string): Promise<void>;
  resumeMachine(lab: LabRef, machine: string): Promise<void>;
  machineState(lab: LabRef, machine: string): Promise<MachineRunState>;
  /** Removes every machine of the lab this provider holds. Idempotent. */
  destroyMachines(lab: LabRef): Promise<void>;
  /** Ids of the labs that have machines here (to reconcile with the store). */
  listLabIds(): Promise<string[]>;
  /**
   * The machines of examlab's labs here that are stopped (powered off from
   * inside, a container whose init exited on a reboot, or stopped with an
   * engine restart): one cheap listing, asked every few seconds. `since`
   * is when the machine stopped, where the engine records it (ISO time).
   */
  stoppedMachines(): Promise<StoppedMachine[]>;
  /** How long a machine may take from creation to answering SSH (VMs boot a kernel; containers do not). */
  readonly bootTimeoutMs?: number;
  /**
   * Runs a program in a running machine through the engine, as root, with no
   * shell, SSH or network in between (containers). Absent for machines only
   * reachable over SSH (VMs). A non-zero exit is a result; an engine error,
   * a timeout or an output flood is thrown.
   */
  exec?(lab: LabRef, machine: string, command: EngineCommand): Promise<EngineCommandResult>;
  /**
   * A byte stream to a TCP port of a machine (its sshd), when this host
   * cannot route to the machine's networks (an engine on another host);
   * undefined when it can (connect to the machine's address).
   */
  tunnel?(lab: LabRef, machine: string, port: number): Promise<Duplex | undefined>;
  /** Machines are reached only through the engine (tunnel): while it does not answer, nobody reaches them. */
  readonly reachedThroughEngine?: boolean;
  /**
   * A byte stream to a VM's serial console or guest agent when the VM runs
   * on another host (its MachineConsole paths are that host's); undefined
   * when it runs on this one (connect to MachineConsole.socket or .agent).
   */
  consoleStream?(lab: LabRef, machine: string, which: 'console' | 'agent'): Promise<Duplex | undefined>;
  /** The end (at most `maxBytes`) of a VM's console log kept on another host; undefined when it is on this one (read MachineConsole.log). */
  consoleLogTail?(lab: LabRef, machine: string, maxBytes: number): Promise<Buffer | undefined>;
  /**
   * Machines whose boot can fail (VMs): removes the machine and creates it
   * again from its image, a fresh first boot. Called once for a machine the
   * grader could not log in to.
   */
  recreateMachine?(lab: LabRef, spec: MachineSpec): Promise<MachineInstance>;
  /** Why a machine the grader could not log in to did not come up, in the machine's own words (the journal of what failed). */
  bootFailureReport?(console: MachineConsole): Promise<string>;
  /** What the host can still give labs (for `examlab doctor` and refusing an exam too large for it). */
  capacity?(): Promise<HostCapacity>;
}

/** What a host offers labs, as its engine and kernel report it. */
export interface HostCapacity {
  /** The provider that reported it. */
  provider: string;
  memoryBytes: number;
  cpus: number;
  /** /24 networks left in the lab subnet pool (the provider that makes networks). */
  freeSubnets?: number;
  /** Free space where the engine keeps machines. */
  diskFreeBytes?: number;
  /** inotify instances root may still open (each systemd container holds several); unknown on a remote engine. */
  inotifyInstancesFree?: number;
  /** Whether the engine bounds what each machine writes to its disk, and how (or why not). */
  machineDiskBound?: { bounded: boolean; detail: string };
}

/** Creates the isolated networks of labs (one bridge and subnet each). */
export interface NetworkProvider {
  createNetwork(lab: LabRef, name: string): Promise<LabNetwork>;
  /** Removes every network of the lab. Idempotent. */
  destroyNetworks(lab: LabRef): Promise<void>;
}
