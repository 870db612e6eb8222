import { dirname, join } from 'node:path';
import type { Duplex } from 'node:stream';
import type { Logger } from 'pino';
import { ConflictError, EnvironmentError, InputError, TimeoutError, errorMessage } from '../util/errors.js';
import { computeScore, gradeChecks, runMachine, type CheckResult } from '../grading/index.js';
import { parseProcessLines, unitCgroup, unitName } from '../checks/index.js';
import type { BuiltImage, ImageService } from '../images/index.js';
import type { LabNetwork, LabRef, MachineBoot, MachineRunState, MachineSpec, Provider, ProviderRegistry } from '../providers/index.js';
import { applyDraw, drawFaults, drawOf, drawVariables, parseScenario, renderScenario, renderText, resolveVariables, type DrawBasis, type FaultDraw, type LoadedScenario, type Machine, type Scenario } from '../scenario/index.js';
import { generateKeyPair } from '../remote/index.js';
import { labRef, type LabRecord, type LabStore, type LabTopology, type RunPurpose, type RunRecord } from './lab-store.js';
import { mapLimit } from '../util/concurrency.js';
import { newId, sha256 } from '../util/ids.js';
import { gradingAccess, machineConsoleLog, machineConsoleStream, machineTunnel } from './access.js';
import type { MachineAccess, PlacedMachine } from './machine-access.js';
import { consoleTail } from './console.js';
import { GRADABLE_STATES } from './states.js';
import { runSteps, type StepSection } from './steps.js';
import { planTopology, valuesFor } from './topology.js';
import { fitLabs, labNeeds, type CapacityReport } from './capacity.js';
import { hostsCapacity, Placement, type PlacementNeeds } from './placement.js';
import { shq } from '../util/shell.js';
import { connectUnixSocket } from '../util/unix-socket.js';

export interface LabServiceDeps {
  store: LabStore;
  providers: ProviderRegistry;
  /** Each machine's image, built when missing, and what it runs. */
  images: Pick<ImageService, 'ensure' | 'runsSystemd'>;
  /** How the lab logic reaches its machines as root. */
  machines: MachineAccess;
  log: Logger;
  sshReadyTimeoutMs?: number;
  /** Files kept with each lab record, such as VM console logs: <labFilesDir>/<lab>/. */
  labFilesDir?: string;
  /** Machines created at once within a lab. */
  machineConcurrency?: number;
}

export interface CreateOptions {
  candidateId?: string;
  candidateName?: string;
  examId?: string;
  /** Seed for the per-candidate variables; random when absent. */
  seed?: string;
  /** The option of each fault pool, given outright (scenario test); otherwise drawn by `seat` in an exam, or from the seed. */
  draw?: FaultDraw;
  /** The candidate's place in the exam's roster: neighbours draw different options. */
  seat?: number;
}

export interface BaselineReport {
  ok: boolean;
  run: RunRecord;
  /** Checks whose broken-state status is not what the scenario says it should be. */
  problems: { checkId: string; expected: string; status: string; detail: string }[];
}

/**
 * The lifecycle of one lab: provision it from its scenario (networks,
 * machines, accounts, setup, faults), grade it, apply steps, destroy it.
 * Every state change is persisted through the store before it is reported.
 */
export class LabService {
  private readonly rendered = new Map<string, Scenario>();
  private readonly placement: Placement;

  constructor(private readonly deps: LabServiceDeps) {
    this.placement = new Placement(deps.providers, deps.store);
  }

  /** The provider that runs the lab's machines of `provider` (its lab host's engine, for Docker machines). */
  private async engine(lab: LabRecord, provider: string): Promise<Provider> {
    return this.deps.providers.get(this.deps.providers.engineOf(lab.host, provider));
  }

  /** The labs in the store (destroyed ones only when asked). */
  list(filter: { examId?: string; includeDestroyed?: boolean } = {}): LabRecord[] {
    return this.deps.store.list(filter);
  }

  get(labId: string): LabRecord {
    return this.deps.store.get(labId);
  }

  /** The lab's lifecycle, one event per state change. */
  events(labId: string) {
    return this.deps.store.events(labId);
  }

  /**
   * How many more labs of this scenario the host can take, and which
   * resource says so (summed over the lab hosts, when there are several);
   * undefined when the engine cannot tell.
   */
  async capacity(loaded: LoadedScenario): Promise<CapacityReport | undefined> {
    const needs = await this.needsOf(loaded.scenario, dirname(loaded.file));
    if (this.deps.providers.hosts().length) return hostsCapacity(await this.placement.fits(needs));
    const provider = await this.deps.providers.get(this.deps.providers.networksOn);
    if (!provider.capacity) return undefined;
    const live = this.deps.store.list().filter((l) => GRADABLE_STATES.includes(l.state) || l.state === 'provisioning').length;
    return fitLabs(needs.lab, await provider.capacity(), live);
  }

  /** What a lab of this scenario asks of its host: resources (by the capacity model) and labels. */
  private async needsOf(scenario: Scenario, scenarioDir: string): Promise<PlacementNeeds> {
    const images = [...new Set(scenario.machines.flatMap((m) => (m.image ? [m.image] : [])))];
    const systemd = new Set((await Promise.all(images.map(async (i) => ((await this.deps.images.runsSystemd(i, scenarioDir)) ? [i] : [])))).flat());
    return { lab: labNeeds(scenario, (image) => systemd.has(image)), labels: scenario.hostLabels };
  }

  /** Whether an engine answers (a provider's name): its description, or the EnvironmentError saying why not. */
  async pingEngine(name: string): Promise<string> {
    return (await this.deps.providers.get(name)).ping();
  }

  /** Records a new lab (state requested). Nothing is created on an engine yet. */
  create(loaded: LoadedScenario, options: CreateOptions = {}): LabRecord {
    const grader = generateKeyPair('examlab-grader');
    const candidate = generateKeyPair('examlab-candidate');
    const id = newId();
    const seed = options.seed ?? newId(16);
    const variables = Object.fromEntries(resolveVariables(loaded.scenario.variables, seed));
    const draw = this.drawFor(loaded.scenario, options, seed);
    return this.deps.store.create({
      id,
      examId: options.examId,
      candidateId: options.candidateId,
      scenarioId: loaded.scenario.id,
      scenarioFile: loaded.file,
      scenarioText: loaded.text,
      scenarioHash: sha256(loaded.text),
      seed,
      variables: { ...variables, ...drawVariables(draw), 'candidate.id': options.candidateId ?? '', 'candidate.name': options.candidateName ?? options.candidateId ?? '' },
      secrets: {
        graderPrivateKey: grader.privateKey,
        graderPublicKey: grader.publicKey,
        candidatePrivateKey: candidate.privateKey,
        candidatePublicKey: candidate.publicKey,
        candidatePassword: newId(6),
      },
    });
  }

  private drawFor(scenario: Scenario, options: CreateOptions, seed: string): FaultDraw {
    const given = options.draw;
    if (given) {
      for (const pool of scenario.faultPools) {
        if (!pool.options.some((o) => o.id === given[pool.id])) throw new InputError(`fault pool "${pool.id}" has no option "${given[pool.id] ?? ''}"; options: ${pool.options.map((o) => o.id).join(', ')}`);
      }
      return given;
    }
    const basis: DrawBasis = options.seat !== undefined && options.examId ? { exam: options.examId, seat: options.seat } : { seed };
    return drawFaults(scenario.faultPools, basis);
  }

  /** Gives a spare lab (built for no one) to a candidate; what was rendered with the old values is dropped. */
  assign(labId: string, candidate: { id: string; name: string }): LabRecord {
    this.rendered.delete(labId);
    return this.deps.store.assign(labId, candidate);
  }

  /** Creates a lab and provisions it; a failed provisioning leaves nothing on the engines. */
  async up(loaded: LoadedScenario, options: CreateOptions = {}): Promise<LabRecord> {
    const lab = this.create(loaded, options);
    return this.provision(lab.id);
  }

  /**
   * Builds the lab on the engines: networks, machines, SSH, the candidate's
   * account, setup, faults. On failure everything made is removed and the
   * lab is `failed` with the reason.
   */
  async provision(labId: string): Promise<LabRecord> {
    const { store, log } = this.deps;
    let lab = store.transition(labId, 'provisioning');
    this.rendered.delete(labId);
    const ref = labRef(lab);
    const labLog = log.child({ lab: lab.id, exam: lab.examId, candidate: lab.candidateId });
    const started = Date.now();
    try {
      // Several lab hosts: the lab goes wholly to one (kept on its own when that one answers).
      if (this.deps.providers.hosts().length) lab = await this.placement.place(lab, await this.needsOf(this.parse(lab), dirname(lab.scenarioFile)));
      await this.removeResources(lab); // a redo after an interrupted provisioning starts clean
      const scenario = this.parse(lab);
      const networkProvider = await this.deps.providers.networksOf(lab.host);
      const networks = await Promise.all(scenario.networks.map((n) => networkProvider.createNetwork(ref, n.name)));
      const topology = planTopology(scenario, networks);
      const values = valuesFor(lab, topology);
      for (const m of topology.machines) m.hostname = renderText(scenario.machines.find((x) => x.name === m.name)?.hostname ?? m.name, values);
      store.setTopology(lab.id, topology);
      lab = store.get(lab.id);
      const rendered = this.render(lab);

      const specs = await Promise.all(rendered.machines.map((m) => this.machineSpec(m, topology, lab)));
      await mapLimit(specs, this.deps.machineConcurrency ?? 4, async ({ machine, spec }) => {
        const provider = await this.engine(lab, machine.provider);
        const instance = await provider.createMachine(ref, spec);
        const placed = topology.machines.find((m) => m.name === machine.name);
        if (placed && instance.console) placed.console = instance.console;
      });
      store.setTopology(lab.id, topology);
      labLog.info({ machines: specs.length }, 'machines created');
      await Promise.all(topology.machines.map(async (m) => (m.hostKey = await this.waitUntilReady(lab, m, specs.find((s) => s.spec.name === m.name)?.spec))));
      store.setTopology(lab.id, topology);
      lab = store.get(lab.id);

      await this.createLoginAccounts(lab, rendered);
      await this.runSection(lab, 'setup');
      lab = await this.recordServicePrograms(lab);
      await this.runSection(lab, 'faults');
      // Machines whose first boot depends on the others (a network boot) start now, on the lab as the candidate gets it:
      // started with the rest, a blank machine could be deployed by the sound setup before the faults.
      await Promise.all(specs.filter(({ spec }) => spec.poweredOff).map(async ({ machine }) => (await this.engine(lab, machine.provider)).resumeMachine(ref, machine.name)));
      labLog.info({ seconds: (Date.now() - started) / 1000 }, 'lab ready');
      return store.transition(lab.id, 'ready');
    } catch (err) {
      labLog.error({ err: errorMessage(err) }, 'provisioning failed');
      await this.removeResources(lab).catch((cleanup) => labLog.error({ err: errorMessage(cleanup) }, 'cleanup after failed provisioning failed'));
      store.transition(lab.id, 'failed', errorMessage(err));
      throw err;
    }
  }

  /** Grades the lab as it is now and stores the run. */
  async grade(labId: string, purpose: RunPurpose = 'grade'): Promise<RunRecord> {
    const lab = this.deps.store.get(labId);
    if (!GRADABLE_STATES.includes(lab.state)) throw new ConflictError(`lab ${labId} is ${lab.state}; only a lab that is ${GRADABLE_STATES.join(', ')} can be graded`);
    const scenario = this.render(lab);
    const runId = newId();
    this.deps.store.startRun({ id: runId, labId, purpose });
    let results: CheckResult[];
    try {
      results = await gradeChecks(scenario.checks, gradingAccess(lab, this.deps.machines), {
        log: this.deps.log.child({ lab: lab.id, exam: lab.examId, candidate: lab.candidateId, run: runId }),
      });
    } catch (err) {
      this.deps.store.failRun(runId, errorMessage(err));
      throw err;
    }
    try {
      this.deps.store.finishRun(runId, results, computeScore(results, scenario));
    } catch (err) {
      // The result could not be stored (the disk full): the run says so if it can; otherwise it stays `running` until the next grading of the lab, or the next start, marks it interrupted.
      try {
        this.deps.store.failRun(runId, `its result could not be stored: ${errorMessage(err)}`);
      } catch {
        // The store refuses that too: see above.
      }
      throw err;
    }
    return this.deps.store.runs(labId).find((r) => r.id === runId) as RunRecord;
  }

  /**
   * Grades the broken state and compares each check with what the scenario
   * says it must be there: failing (the default), passing (`baseline: pass`) or either.
   */
  async verifyBaseline(labId: string): Promise<BaselineReport> {
    const run = await this.grade(labId, 'baseline');
    const problems = run.results.flatMap((r): BaselineReport['problems'] => {
      if (r.status === 'error') return [{ checkId: r.checkId, expected: r.baseline, status: r.status, detail: r.message ?? '' }];
      if (r.baseline === 'pass' && r.status !== 'pass') return [{ checkId: r.checkId, expected: 'pass', status: r.status, detail: r.message ?? `expected: ${r.expected} — observed: ${r.actual}` }];
      if (r.baseline === 'fail' && r.status === 'pass') return [{ checkId: r.checkId, expected: 'fail', status: r.status, detail: `the faults do not break what this check tests: observed ${r.actual}` }];
      return [];
    });
    return { ok: problems.length === 0, run, problems };
  }

  /** Runs the scenario's reference solution on a live lab. */
  async applySolution(labId: string): Promise<void> {
    await this.runSection(this.deps.store.get(labId), 'solution');
  }

  /** Back to the initial broken state: provisioned again from the same seed and keys; whatever the candidate did is gone. */
  async reset(labId: string): Promise<LabRecord> {
    const lab = this.deps.store.get(labId);
    if (!['ready', 'running', 'failed'].includes(lab.state)) throw new ConflictError(`lab ${labId} is ${lab.state}; only a ready, running or failed lab can be reset`);
    return this.provision(labId);
  }

  /** Freezes every machine of the lab (no process runs; memory and disks are kept). Idempotent. */
  async pause(labId: string): Promise<void> {
    await this.eachMachine(labId, (provider, ref, machine) => provider.pauseMachine(ref, machine));
  }

  /** Lets the machines of a paused (or stopped) lab run again. Idempotent. */
  async resume(labId: string): Promise<void> {
    await this.eachMachine(labId, (provider, ref, machine) => provider.resumeMachine(ref, machine));
  }

  /** The way to a machine's sshd for an SSH client (the gateway's): through its engine when this host cannot route to it. */
  sshTunnel(lab: LabRecord, machine: string): ReturnType<typeof machineTunnel> {
    return machineTunnel(this.deps.providers, lab, machine);
  }

  /** The last lines a VM printed on its serial console, read where its host keeps them. */
  consoleTail(lab: LabRecord, machine: string, lines?: number): Promise<string> {
    const placed = lab.topology?.machines.find((m) => m.name === machine);
    if (!placed?.console) return Promise.resolve('');
    return consoleTail(placed.console.log, lines, machineConsoleLog(this.deps.providers, lab, machine));
  }

  /** A byte stream to a VM's serial console (what a person types into), wherever it runs. */
  async openConsole(lab: LabRecord, machine: string): Promise<Duplex> {
    const placed = lab.topology?.machines.find((m) => m.name === machine);
    if (!placed?.console) throw new InputError(`machine ${machine} has no serial console`);
    return (await machineConsoleStream(this.deps.providers, lab, machine, 'console')()) ?? connectUnixSocket(placed.console.socket);
  }

  /** What the engines say about each machine of the lab. */
  async machineStates(labId: string): Promise<Record<string, MachineRunState>> {
    const states: Record<string, MachineRunState> = {};
    await this.eachMachine(labId, async (provider, ref, machine) => void (states[machine] = await provider.machineState(ref, machine)));
    return states;
  }

  /**
   * Cuts the candidate off inside the lab: their account is locked and
   * expired (sshd then refuses password and key alike) and their processes
   * are killed with everything they started, sudo shells included.
   */
  async lockCandidate(labId: string): Promise<void> {
    await this.onLoginMachines(labId, (user) =>
      [
        `usermod -L -e 1 ${user}`,
        `uid=$(id -u ${user})`,
        // The user's processes and their descendants, from /proc (a process may vanish while it is read).
        `for round in 1 2 3; do`,
        `  pids=$(cat /proc/[0-9]*/status 2>/dev/null | awk -v uid="$uid" '/^Pid:/{pid=$2} /^PPid:/{ppid[pid]=$2} /^Uid:/{if ($2==uid || $3==uid) mine[pid]=1} END {do {changed=0; for (p in ppid) if (!(p in mine) && (ppid[p] in mine)) {mine[p]=1; changed=1}} while (changed); for (p in mine) if (p != 1) print p}')`,
        `  [ -z "$pids" ] && break`,
        `  kill -KILL $pids 2>/dev/null || true`,
        `done`,
      ].join('\n'),
    );
  }

  /** Gives the candidate their account back (after a revocation was lifted). */
  async unlockCandidate(labId: string): Promise<void> {
    await this.onLoginMachines(labId, (user) => `usermod -U -e '' ${user}`);
  }

  private async onLoginMachines(labId: string, script: (user: string) => string): Promise<void> {
    const lab = this.deps.store.get(labId);
    await Promise.all(
      (lab.topology?.machines ?? [])
        .filter((m) => m.loginUser)
        .map((m) => this.runRootScript(lab, m.name, '/bin/sh -s', script(m.loginUser as string), 30_000, `cannot change the candidate account ${m.loginUser} on ${m.name} of lab ${labId}`)),
    );
  }

  private async eachMachine(labId: string, fn: (provider: Provider, ref: LabRef, machine: string) => Promise<void>): Promise<void> {
    const lab = this.deps.store.get(labId);
    const ref = labRef(lab);
    await Promise.all((lab.topology?.machines ?? []).map(async (m) => fn(await this.engine(lab, m.provider), ref, m.name)));
  }

  /** Removes what a lab left on one lab host's engine, the lab now living on another (moved while that one was away). */
  async removeRemains(labId: string, engineKey: string): Promise<void> {
    const ref = labRef(this.deps.store.get(labId));
    await (await this.deps.providers.get(engineKey)).destroyMachines(ref);
    // A host's libvirt holds machines only; its networks are its Docker engine's.
    const host = this.deps.providers.hostOfEngine(engineKey);
    if (host?.key === engineKey) await (await this.deps.providers.networksOf(engineKey)).destroyNetworks(ref);
  }

  /** Removes the lab's machines and networks (idempotent) and marks it destroyed. */
  async destroy(labId: string): Promise<LabRecord> {
    const lab = this.deps.store.get(labId);
    await this.removeResources(lab);
    this.rendered.delete(labId);
    return lab.state === 'destroyed' ? lab : this.deps.store.transition(labId, 'destroyed');
  }

  /** The scenario with this lab's variables and addresses filled in. */
  render(lab: LabRecord): Scenario {
    const cached = this.rendered.get(lab.id);
    if (cached && lab.topology) return cached;
    const scenario = this.parse(lab);
    if (!lab.topology) throw new ConflictError(`lab ${lab.id} has no machines yet`);
    const rendered = renderScenario(scenario, valuesFor(lab, lab.topology));
    this.rendered.set(lab.id, rendered);
    return rendered;
  }

  private parse(lab: LabRecord): Scenario {
    // The lab keeps the exact text it was made from: later edits of the file never change a running exam.
    return applyDraw(parseScenario(lab.scenarioText, lab.scenarioFile), drawOf(lab.variables));
  }

  private async runSection(lab: LabRecord, section: StepSection): Promise<void> {
    const scenario = this.render(lab);
    const shellOf = (machine: string) => scenario.machines.find((m) => m.name === machine)?.shell ?? 'sh';
    const machines = { open: (machine: string, timeoutMs: number) => this.deps.machines.open(lab, machine, timeoutMs), reboot: (machine: string, timeoutMs: number) => this.deps.machines.reboot(lab, machine, timeoutMs) };
    await runSteps(section, scenario[section], machines, dirname(lab.scenarioFile), shellOf);
  }

  private async machineSpec(machine: Machine, topology: LabTopology, lab: LabRecord): Promise<{ machine: Machine; spec: MachineSpec }> {
    // The scenario's folder may bring images of its own (images/ beside it). A machine that boots from the network has none: it starts blank.
    const image = machine.image === undefined ? undefined : await this.deps.images.ensure(machine.image, { scenarioDir: dirname(lab.scenarioFile) });
    const boot = machineBoot(machine, image);
    const placed = topology.machines.find((m) => m.name === machine.name);
    if (!placed) throw new Error(`machine ${machine.name} has no place in the topology`);
    const spec: MachineSpec = {
      name: machine.name,
      hostname: placed.hostname,
      image: image?.ref,
      attachments: Object.entries(placed.addresses).map(([network, address]) => ({
        network: topology.networks.find((n) => n.name === network) as LabNetwork,
        address,
      })),
      resources: { cpus: machine.resources.cpus, memoryBytes: machine.resources.memory, pids: machine.resources.pids, diskBytes: machine.resources.disk },
      capabilities: [...new Set([...(image?.capabilities ?? []), ...machine.capabilities])].sort(),
      devices: machine.devices,
      systemd: image?.systemd ?? false,
      tmpfs: machine.tmpfs.map((t) => ({ path: t.path, sizeBytes: t.size })),
      rootAuthorizedKeys: lab.secrets.graderPublicKey,
      disks: machine.disks.map((d) => ({ sizeBytes: d.size })),
      boot,
      // What a blank machine boots is served by the lab's other machines: it starts once they are set up and broken (see provision).
      poweredOff: boot?.mode === 'network' ? true : undefined,
      // A machine that boots a kernel has a console worth keeping: why it did not come up is there.
      consoleLog: boot && this.deps.labFilesDir ? join(this.deps.labFilesDir, lab.id, `${machine.name}.console.log`) : undefined,
    };
    return { machine, spec };
  }

  /**
   * Waits until the grader can log in to the machine. A machine that never
   * lets it in is created again once, where its provider can (a VM's boot can
   * fail); then the error quotes what the machine says about why.
   */
  private async waitUntilReady(lab: LabRecord, machine: PlacedMachine, spec: MachineSpec | undefined): Promise<string | undefined> {
    // A blank machine has nothing to log in to until the lab's deployment installs it: created is ready. The grader
    // never pins a host key for it, and so reaches it only through its guest agent (see remote/machine-session.ts).
    if (spec?.boot?.mode === 'network') return undefined;
    const provider = await this.engine(lab, machine.provider);
    try {
      return await this.deps.machines.waitReady(lab, machine, this.deps.sshReadyTimeoutMs ?? provider.bootTimeoutMs ?? 90_000);
    } catch (first) {
      if (!spec || !provider.recreateMachine) throw await this.notReady(lab, first, machine, provider);
      const why = machine.console ? await provider.bootFailureReport?.(machine.console) : undefined;
      this.deps.log.warn({ lab: lab.id, machine: machine.name, err: errorMessage(first), why }, 'the grader cannot log in to the machine; creating it again, once');
      const instance = await provider.recreateMachine(labRef(lab), spec);
      if (instance.console) machine.console = instance.console;
      try {
        return await this.deps.machines.waitReady(lab, machine, this.deps.sshReadyTimeoutMs ?? provider.bootTimeoutMs ?? 90_000);
      } catch (second) {
        throw await this.notReady(lab, second, machine, provider, 'on its second boot (it was created again after the first timed out)');
      }
    }
  }

  /**
   * What each checked service runs in the sound system (right after the
   * setup, before the faults and long before the candidate): the reference a
   * `service` check holds the running unit to, so a process planted in the
   * unit's cgroup, or a unit file rewritten to run something else, is not
   * taken for the service.
   */
  private async recordServicePrograms(lab: LabRecord): Promise<LabRecord> {
    const topology = lab.topology as LabTopology;
    const byMachine = new Map<string, Set<string>>();
    for (const check of this.render(lab).checks) {
      if (check.kind !== 'service' || check.program !== undefined) continue;
      byMachine.set(check.machine, (byMachine.get(check.machine) ?? new Set()).add(unitName(String(check.name))));
    }
    await Promise.all(
      [...byMachine].map(async ([machine, units]) => {
        const list = [...units];
        const answers = await runMachine(list.map((unit) => ({ probe: { cgroup: { verb: 'cgroup', args: [unitCgroup(unit)] } }, timeoutMs: 10_000 })), this.deps.machines.runner(lab, machine));
        const placed = topology.machines.find((m) => m.name === machine);
        if (!placed) return;
        placed.servicePrograms = {};
        list.forEach((unit, i) => {
          const record = answers[i]?.probe?.get('cgroup');
          const programs = record?.status === 'ok' ? [...new Set(parseProcessLines(record.data.toString('utf8'), ['pid', 'exe', 'cmdline']).map((p) => p.exe).filter(Boolean))] : [];
          if (programs.length) (placed.servicePrograms as Record<string, string[]>)[unit] = programs;
        });
      }),
    );
    this.deps.store.setTopology(lab.id, topology);
    return this.deps.store.get(lab.id);
  }

  /** The error for a machine the grader could not log in to: what its provider and its console say about why. */
  private async notReady(lab: LabRecord, err: unknown, machine: PlacedMachine, provider: Provider, when = ''): Promise<unknown> {
    if (!machine.console || !(err instanceof Error)) return err;
    const why = (await provider.bootFailureReport?.(machine.console)) ?? '';
    const tail = await consoleTail(machine.console.log, 25, machineConsoleLog(this.deps.providers, lab, machine.name)).catch(() => '');
    return new TimeoutError(
      [`${err.message}${when ? ` ${when}` : ''}`, why, tail ? `its console (${machine.console.log}) ends with:\n${tail}` : ''].filter(Boolean).join('\n'),
    );
  }

  /** The candidate's account on each machine they may log in to: per-lab password and key. */
  private async createLoginAccounts(lab: LabRecord, scenario: Scenario): Promise<void> {
    await Promise.all(
      scenario.machines
        .filter((m) => m.login)
        .map(async (m) => {
          const { user, sudo } = m.login as NonNullable<Machine['login']>;
          const script = [
            `id -u ${user} >/dev/null 2>&1 || useradd -m -s /bin/bash ${user}`,
            `echo ${shq(`${user}:${lab.secrets.candidatePassword}`)} | chpasswd`,
            `home=$(getent passwd ${user} | cut -d: -f6)`,
            `install -d -m 700 -o ${user} -g $(id -gn ${user}) "$home/.ssh"`,
            `printf '%s\\n' ${shq(lab.secrets.candidatePublicKey)} > "$home/.ssh/authorized_keys"`,
            `chown ${user}: "$home/.ssh/authorized_keys" && chmod 600 "$home/.ssh/authorized_keys"`,
            sudo ? `printf '%s ALL=(ALL:ALL) ALL\\n' ${user} > /etc/sudoers.d/examlab-candidate && chmod 440 /etc/sudoers.d/examlab-candidate` : 'true',
          ].join('\n');
          await this.runRootScript(lab, m.name, '/bin/sh -e -s', script, 60_000, `cannot create the candidate account ${user} on ${m.name}`);
        }),
    );
  }

  /** Runs a shell script as root on a machine of the lab; a non-zero exit is an EnvironmentError starting with `failure`. */
  private async runRootScript(lab: LabRecord, machine: string, shell: string, script: string, timeoutMs: number, failure: string): Promise<void> {
    const session = await this.deps.machines.open(lab, machine, 15_000);
    try {
      const result = await session.exec(shell, { stdin: script, timeoutMs });
      if (result.exitCode !== 0) throw new EnvironmentError(`${failure}: ${result.stderr.trim()}`);
    } finally {
      session.close();
    }
  }

  /** Removes the lab's machines (every provider it uses) and networks. */
  private async removeResources(lab: LabRecord): Promise<void> {
    const ref = labRef(lab);
    const used = new Set(this.parse(lab).machines.map((m) => m.provider));
    for (const name of used) await (await this.engine(lab, name)).destroyMachines(ref);
    await (await this.deps.providers.networksOf(lab.host)).destroyNetworks(ref);
  }
}

/** How a VM starts: the machine's choice, else its image's kernel when it has one, else its disk. */
function machineBoot(machine: Machine, image: BuiltImage | undefined): MachineBoot | undefined {
  if (machine.boot === 'network') return { mode: 'network' };
  if (!image?.bootable) return undefined;
  const mode = machine.boot ?? (image.kernel ? 'kernel' : 'disk');
  if (mode === 'disk') return { mode };
  if (!image.kernel) throw new InputError(`machine ${machine.name}: "boot: kernel" needs an image with a kernel, and ${machine.image} has none; use "boot: disk"`);
  return { mode: 'kernel', kernel: image.kernel.path, initrd: image.kernel.initrd, cmdline: image.kernel.cmdline };
}

