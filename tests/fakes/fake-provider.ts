import type { HostCapacity, LabNetwork, LabRef, MachineInstance, MachineRunState, MachineSpec, NetworkProvider, Provider, ProviderName, StoppedMachine } from '../../src/providers/types.js';
import { EngineUnavailableError, EnvironmentError } from '../../src/util/errors.js';

/** One thing done to the fake engines or machines, in the order it happened (shared by every fake). */
export interface EngineCall {
  /** Who was called: a provider's name, or `access` (the machines as root). */
  by: string;
  op: string;
  labId: string;
  machine?: string;
  /** A script or command run, the fragments graded. */
  detail?: string;
}

/** A machine as the fake engine holds it; what steps change and checks read lives here too. */
export interface FakeMachine {
  labId: string;
  name: string;
  spec?: MachineSpec;
  state: Exclude<MachineRunState, 'missing'>;
  /** When it stopped, as an engine that records it would say (ISO time). */
  stoppedAt?: string;
  /** The fake machine's observable state: set and cleared by steps, read by checks (see FakeMachineAccess). */
  flags: Set<string>;
  users: Set<string>;
  lockedUsers: Set<string>;
}

/**
 * Misbehaviour a test scripts ahead, each spent by the first call it
 * matches: an error, or a call that never returns (the daemon is killed
 * in the middle of it: a restarted daemon finds what it left).
 */
export class ScriptedFailures<Op extends string> {
  private readonly pending: { op: Op; machine?: string; outcome: (() => Error) | 'hang' }[] = [];

  add(op: Op, times: number, outcome: (() => Error) | 'hang', machine?: string): void {
    for (let i = 0; i < times; i++) this.pending.push({ op, machine, outcome });
  }

  /** Resolves at once, unless a failure is scripted for this call: then rejects, or never settles. */
  spend(op: string, machine?: string): Promise<void> {
    const i = this.pending.findIndex((f) => f.op === op && (f.machine === undefined || f.machine === machine));
    const [scripted] = i >= 0 ? this.pending.splice(i, 1) : [];
    if (!scripted) return Promise.resolve();
    if (scripted.outcome === 'hang') return new Promise<void>(() => undefined);
    return Promise.reject(scripted.outcome());
  }
}

type FailingOp = 'createMachine' | 'pauseMachine' | 'resumeMachine' | 'destroyMachines' | 'createNetwork' | 'listLabIds' | 'stoppedMachines';

/**
 * An engine in memory: machines per lab (running, paused, stopped or
 * missing) and, when it makes networks, one /24 per lab network. Failures
 * are scripted per operation ("createMachine fails the next 2 times", "the
 * next createMachine never returns"); an engine that is `down` answers nothing.
 */
export class FakeProvider implements Provider, NetworkProvider {
  readonly machines = new Map<string, FakeMachine>();
  readonly networks = new Map<string, LabNetwork[]>();
  /** The engine does not answer at all. */
  down = false;
  /** An engine on another host: its machines are reached through it only. */
  reachedThroughEngine = false;
  /** Pings left before an outage ends (see `outage`). */
  private outagePings = 0;
  /** Whether a down engine says so as EngineUnavailableError (work waits for it, as for libvirtd), or as a plain error (work fails, as on Docker). */
  saysUnavailable = true;
  /** What the host can hold, when a test says so (the real engines always can). */
  capacity?: () => Promise<HostCapacity>;
  private readonly failures = new ScriptedFailures<FailingOp>();
  private subnets = 0;

  constructor(
    readonly name: ProviderName,
    private readonly calls: EngineCall[] = [],
  ) {}

  /** The next `times` calls of `op` (about `machine`, when given) throw `error()`: an engine error by default, which is transient. */
  failNext(op: FailingOp, options: { times?: number; machine?: string; error?: () => Error } = {}): this {
    const error = options.error ?? (() => new EnvironmentError(`${this.name}: ${op} failed (scripted)`));
    this.failures.add(op, options.times ?? 1, error, options.machine);
    return this;
  }

  /** The next call of `op` (about `machine`, when given) never returns. */
  hangNext(op: FailingOp, machine?: string): this {
    this.failures.add(op, 1, 'hang', machine);
    return this;
  }

  /** The engine stops answering, and answers again at the `pings`-th ping (as a restarted libvirtd would, some time later). */
  outage(pings: number): this {
    this.down = true;
    this.outagePings = pings;
    return this;
  }

  machine(labId: string, name: string): FakeMachine | undefined {
    return this.machines.get(key(labId, name));
  }

  machinesOf(labId: string): FakeMachine[] {
    return [...this.machines.values()].filter((m) => m.labId === labId);
  }

  /** A machine put on the engine behind the daemon's back (a leftover, another store's lab). */
  plant(labId: string, name: string, state: FakeMachine['state'] = 'running'): FakeMachine {
    const machine: FakeMachine = { labId, name, state, flags: new Set(), users: new Set(), lockedUsers: new Set() };
    this.machines.set(key(labId, name), machine);
    return machine;
  }

  async ping(): Promise<string> {
    if (this.outagePings > 0 && --this.outagePings === 0) this.down = false;
    await this.answer('ping');
    return `fake ${this.name}`;
  }

  async createNetwork(lab: LabRef, name: string): Promise<LabNetwork> {
    await this.answer('createNetwork', lab.labId);
    const n = ++this.subnets;
    const network = { name, subnet: `10.231.${n}.0/24`, gateway: `10.231.${n}.1`, bridge: `exlfake${n}` };
    this.networks.set(lab.labId, [...(this.networks.get(lab.labId) ?? []), network]);
    return network;
  }

  async destroyNetworks(lab: LabRef): Promise<void> {
    await this.answer('destroyNetworks', lab.labId);
    this.networks.delete(lab.labId);
  }

  async createMachine(lab: LabRef, spec: MachineSpec): Promise<MachineInstance> {
    await this.answer('createMachine', lab.labId, spec.name);
    // A real engine refuses a second object of the same name.
    if (this.machine(lab.labId, spec.name)) throw new EnvironmentError(`machine ${spec.name} of lab ${lab.labId} already exists`);
    const machine = this.plant(lab.labId, spec.name);
    machine.spec = spec;
    return { name: spec.name, address: spec.attachments[0]?.address ?? '', ref: `${this.name}-${lab.labId}-${spec.name}` };
  }

  async pauseMachine(lab: LabRef, name: string): Promise<void> {
    await this.answer('pauseMachine', lab.labId, name);
    const machine = this.machine(lab.labId, name);
    if (machine?.state === 'running') machine.state = 'paused';
  }

  async resumeMachine(lab: LabRef, name: string): Promise<void> {
    await this.answer('resumeMachine', lab.labId, name);
    const machine = this.machine(lab.labId, name);
    if (machine) machine.state = 'running';
  }

  async machineState(lab: LabRef, name: string): Promise<MachineRunState> {
    await this.answer('machineState', lab.labId, name);
    return this.machine(lab.labId, name)?.state ?? 'missing';
  }

  async destroyMachines(lab: LabRef): Promise<void> {
    await this.answer('destroyMachines', lab.labId);
    for (const m of this.machinesOf(lab.labId)) this.machines.delete(key(m.labId, m.name));
  }

  async stoppedMachines(): Promise<StoppedMachine[]> {
    await this.answer('stoppedMachines');
    return [...this.machines.values()].filter((m) => m.state === 'stopped').map((m) => ({ labId: m.labId, machine: m.name, since: m.stoppedAt }));
  }

  async listLabIds(): Promise<string[]> {
    await this.answer('listLabIds');
    return [...new Set([...[...this.machines.values()].map((m) => m.labId), ...this.networks.keys()])];
  }

  /** Records the call, then fails if the engine is down or a failure is scripted for it. */
  private async answer(op: string, labId = '', machine?: string): Promise<void> {
    this.calls.push({ by: this.name, op, labId, machine });
    if (this.down) throw this.saysUnavailable ? new EngineUnavailableError(this.name, `the ${this.name} engine does not answer`) : new EnvironmentError(`the ${this.name} engine does not answer`);
    await this.failures.spend(op, machine);
  }
}

function key(labId: string, machine: string): string {
  return `${labId}/${machine}`;
}
