import { dirname, join } from 'node:path';
import type { Logger } from 'pino';
import { ConflictError, EnvironmentError, InputError, TimeoutError, errorMessage } from '../util/errors.js';
import { gradeChecks } from '../grading/index.js';
import type { CheckResult } from '../grading/index.js';
import { computeScore } from '../grading/index.js';
import type { Toolbox } from '../grading/index.js';
import type { ProviderRegistry } from '../providers/index.js';
import type { LabNetwork, LabRef, MachineBoot, MachineRunState, MachineSpec, NetworkProvider, Provider, ProviderName } from '../providers/index.js';
import { hostAddress, parseCidr, intToIp } from '../providers/index.js';
import { parseScenario, renderDeep, renderText, resolveVariables, type LoadedScenario, type Machine, type Scenario } from '../scenario/index.js';
import { generateKeyPair, SshSession, withSession } from '../remote/index.js';
import type { LabRecord, LabStore, LabTopology, RunPurpose, RunRecord } from './lab-store.js';
import { mapLimit } from '../util/concurrency.js';
import { newId, sha256 } from '../util/ids.js';
import { retryUntil } from '../util/retry.js';
import { labAccess, requireTarget } from './access.js';
import { consoleTail } from './console.js';
import { GRADABLE_STATES } from './states.js';
import { runSteps, type StepSection } from './steps.js';
import { shq } from '../util/shell.js';

/** What a machine's image means for a provider: the engine reference and what it needs to run. */
export interface ResolvedImage {
  ref: string;
  systemd: boolean;
  capabilities: string[];
  /** VM images: a kernel for direct boot. */
  kernel?: { path: string; initrd: string; cmdline: string };
}

export type ImageResolver = (machine: Machine) => Promise<ResolvedImage>;

export interface LabServiceDeps {
  store: LabStore;
  providers: ProviderRegistry;
  networks: () => Promise<NetworkProvider>;
  images: Partial<Record<ProviderName, ImageResolver>>;
  toolbox: () => Promise<Toolbox>;
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

  constructor(private readonly deps: LabServiceDeps) {}

  /** Records a new lab (state requested). Nothing is created on an engine yet. */
  create(loaded: LoadedScenario, options: CreateOptions = {}): LabRecord {
    const grader = generateKeyPair('examlab-grader');
    const candidate = generateKeyPair('examlab-candidate');
    const id = newId();
    const seed = options.seed ?? newId(16);
    const variables = Object.fromEntries(resolveVariables(loaded.scenario.variables, seed));
    return this.deps.store.create({
      id,
      examId: options.examId,
      candidateId: options.candidateId,
      scenarioId: loaded.scenario.id,
      scenarioFile: loaded.file,
      scenarioText: loaded.text,
      scenarioHash: sha256(loaded.text),
      seed,
      variables: { ...variables, 'candidate.id': options.candidateId ?? '', 'candidate.name': options.candidateName ?? options.candidateId ?? '' },
      secrets: {
        graderPrivateKey: grader.privateKey,
        graderPublicKey: grader.publicKey,
        candidatePrivateKey: candidate.privateKey,
        candidatePublicKey: candidate.publicKey,
        candidatePassword: newId(6),
      },
    });
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
      await this.removeResources(lab); // a redo after an interrupted provisioning starts clean
      const scenario = this.parse(lab);
      const networkProvider = await this.deps.networks();
      const networks = await Promise.all(scenario.networks.map((n) => networkProvider.createNetwork(ref, n.name)));
      const topology = planTopology(scenario, networks);
      const values = valuesFor(lab, topology);
      for (const m of topology.machines) m.hostname = renderText(scenario.machines.find((x) => x.name === m.name)?.hostname ?? m.name, values);
      store.setTopology(lab.id, topology);
      lab = store.get(lab.id);
      const rendered = this.render(lab);

      const specs = await Promise.all(rendered.machines.map((m) => this.machineSpec(m, topology, lab)));
      await mapLimit(specs, this.deps.machineConcurrency ?? 4, async ({ machine, spec }) => {
        const provider = await this.deps.providers.get(machine.provider);
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
      await this.runSection(lab, 'faults');
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
      results = await gradeChecks(scenario.checks, labAccess(lab), {
        toolbox: await this.deps.toolbox(),
        log: this.deps.log.child({ lab: lab.id, exam: lab.examId, candidate: lab.candidateId, run: runId }),
      });
    } catch (err) {
      this.deps.store.failRun(runId, errorMessage(err));
      throw err;
    }
    this.deps.store.finishRun(runId, results, computeScore(results, scenario));
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
      if (r.baseline === 'pass' && r.status !== 'pass') return [{ checkId: r.checkId, expected: 'pass', status: r.status, detail: r.actual || (r.message ?? '') }];
      if (r.baseline === 'fail' && r.status === 'pass') return [{ checkId: r.checkId, expected: 'fail', status: r.status, detail: 'the faults do not break what this check tests' }];
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
        .map((m) => runRootScript(lab, m.name, '/bin/sh -s', script(m.loginUser as string), 30_000, `cannot change the candidate account ${m.loginUser} on ${m.name} of lab ${labId}`)),
    );
  }

  private async eachMachine(labId: string, fn: (provider: Provider, ref: LabRef, machine: string) => Promise<void>): Promise<void> {
    const lab = this.deps.store.get(labId);
    const ref = labRef(lab);
    await Promise.all((lab.topology?.machines ?? []).map(async (m) => fn(await this.deps.providers.get(m.provider), ref, m.name)));
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
    const rendered = renderDeep(scenario, valuesFor(lab, lab.topology));
    this.rendered.set(lab.id, rendered);
    return rendered;
  }

  private parse(lab: LabRecord): Scenario {
    // The lab keeps the exact text it was made from: later edits of the file never change a running exam.
    return parseScenario(lab.scenarioText, lab.scenarioFile);
  }

  private async runSection(lab: LabRecord, section: StepSection): Promise<void> {
    const scenario = this.render(lab);
    const shellOf = (machine: string) => scenario.machines.find((m) => m.name === machine)?.shell ?? 'sh';
    await runSteps(section, scenario[section], (machine) => requireTarget(lab, machine), dirname(lab.scenarioFile), shellOf);
  }

  private async machineSpec(machine: Machine, topology: LabTopology, lab: LabRecord): Promise<{ machine: Machine; spec: MachineSpec }> {
    const resolver = this.deps.images[machine.provider];
    if (!resolver) throw new EnvironmentError(`no image resolver for provider ${machine.provider}`);
    const image = await resolver(machine);
    const placed = topology.machines.find((m) => m.name === machine.name);
    if (!placed) throw new Error(`machine ${machine.name} has no place in the topology`);
    const spec: MachineSpec = {
      name: machine.name,
      hostname: placed.hostname,
      image: image.ref,
      attachments: Object.entries(placed.addresses).map(([network, address]) => ({
        network: topology.networks.find((n) => n.name === network) as LabNetwork,
        address,
      })),
      resources: { cpus: machine.resources.cpus, memoryBytes: machine.resources.memory, pids: machine.resources.pids, diskBytes: machine.resources.disk },
      capabilities: [...new Set([...image.capabilities, ...machine.capabilities])].sort(),
      devices: machine.devices,
      systemd: image.systemd,
      tmpfs: machine.tmpfs.map((t) => ({ path: t.path, sizeBytes: t.size })),
      rootAuthorizedKeys: lab.secrets.graderPublicKey,
      disks: machine.disks.map((d) => ({ sizeBytes: d.size })),
      boot: machineBoot(machine, image),
      consoleLog: machine.provider === 'libvirt' && this.deps.labFilesDir ? join(this.deps.labFilesDir, lab.id, `${machine.name}.console.log`) : undefined,
    };
    return { machine, spec };
  }

  /**
   * Waits until the grader can log in to the machine. A machine that never
   * lets it in is created again once, where its provider can (a VM's boot can
   * fail); then the error quotes what the machine says about why.
   */
  private async waitUntilReady(lab: LabRecord, machine: LabTopology['machines'][number], spec: MachineSpec | undefined): Promise<string> {
    const provider = await this.deps.providers.get(machine.provider);
    try {
      return await this.waitForLogin(lab, machine, provider);
    } catch (first) {
      if (!spec || !provider.recreateMachine) throw await this.notReady(first, machine, provider);
      const why = machine.console ? await provider.bootFailureReport?.(machine.console) : undefined;
      this.deps.log.warn({ lab: lab.id, machine: machine.name, err: errorMessage(first), why }, 'the grader cannot log in to the machine; creating it again, once');
      const instance = await provider.recreateMachine(labRef(lab), spec);
      if (instance.console) machine.console = instance.console;
      try {
        return await this.waitForLogin(lab, machine, provider);
      } catch (second) {
        throw await this.notReady(second, machine, provider, 'on its second boot (it was created again after the first timed out)');
      }
    }
  }

  /** Until the grader logs in with its key and runs a command: sshd listening is not enough. */
  private async waitForLogin(lab: LabRecord, machine: LabTopology['machines'][number], provider: Provider): Promise<string> {
    const timeoutMs = this.deps.sshReadyTimeoutMs ?? provider.bootTimeoutMs ?? 90_000;
    const deadline = Date.now() + timeoutMs;
    const session = await retryUntil(
      async () => {
        // Long enough for a handshake with a machine slowed by a busy host; a refused connection still fails at once.
        const attemptMs = Math.max(1000, Math.min(LOGIN_ATTEMPT_MS, deadline - Date.now()));
        const s = await SshSession.connect({ host: machine.address, username: 'root', privateKey: lab.secrets.graderPrivateKey }, attemptMs);
        try {
          const login = await s.exec('true', { timeoutMs: attemptMs });
          if (login.exitCode !== 0) throw new EnvironmentError(`a command as root exits ${login.exitCode}: ${login.stderr.trim()}`);
          return s;
        } catch (err) {
          s.close();
          throw err;
        }
      },
      () => true,
      { what: `the grader to log in to machine ${machine.name} (${machine.address}) over SSH`, timeoutMs, intervalMs: 300 },
    );
    session.close();
    return session.hostKey;
  }

  /** The error for a machine the grader could not log in to: what its provider and its console say about why. */
  private async notReady(err: unknown, machine: LabTopology['machines'][number], provider: Provider, when = ''): Promise<unknown> {
    if (!machine.console || !(err instanceof Error)) return err;
    const why = (await provider.bootFailureReport?.(machine.console)) ?? '';
    const tail = await consoleTail(machine.console.log);
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
          await runRootScript(lab, m.name, '/bin/sh -e -s', script, 60_000, `cannot create the candidate account ${user} on ${m.name}`);
        }),
    );
  }

  /** Removes the lab's machines (every provider it uses) and networks. */
  private async removeResources(lab: LabRecord): Promise<void> {
    const ref = labRef(lab);
    const used = new Set(this.parse(lab).machines.map((m) => m.provider));
    for (const name of used) await (await this.deps.providers.get(name)).destroyMachines(ref);
    await (await this.deps.networks()).destroyNetworks(ref);
  }
}

/** One SSH login attempt while waiting for a machine. */
const LOGIN_ATTEMPT_MS = 30_000;

/** Runs a shell script as root on a machine of the lab; a non-zero exit is an EnvironmentError starting with `failure`. */
async function runRootScript(lab: LabRecord, machine: string, shell: string, script: string, timeoutMs: number, failure: string): Promise<void> {
  await withSession(requireTarget(lab, machine), 15_000, async (session) => {
    const result = await session.exec(shell, { stdin: script, timeoutMs });
    if (result.exitCode !== 0) throw new EnvironmentError(`${failure}: ${result.stderr.trim()}`);
  });
}

/** How a VM starts: the machine's choice, else its image's kernel when it has one, else its disk. */
function machineBoot(machine: Machine, image: ResolvedImage): MachineBoot | undefined {
  if (machine.provider !== 'libvirt') return undefined;
  const mode = machine.boot ?? (image.kernel ? 'kernel' : 'disk');
  if (mode === 'disk') return { mode };
  if (!image.kernel) throw new InputError(`machine ${machine.name}: "boot: kernel" needs an image with a kernel, and ${machine.image} has none; use "boot: disk"`);
  return { mode, kernel: image.kernel.path, initrd: image.kernel.initrd, cmdline: image.kernel.cmdline };
}

export function labRef(lab: LabRecord): LabRef {
  return { labId: lab.id, examId: lab.examId, candidateId: lab.candidateId };
}

/** Addresses for every machine: the host numbers the scenario gives, others from .10 up. */
export function planTopology(scenario: Scenario, networks: LabNetwork[]): LabTopology {
  const taken = new Map<string, Set<number>>(networks.map((n) => [n.name, new Set([1])]));
  for (const m of scenario.machines) for (const a of m.networks ?? []) if (a.host !== undefined) taken.get(a.network)?.add(a.host);
  const nextFree = (network: string) => {
    const used = taken.get(network) as Set<number>;
    let host = 10;
    while (used.has(host)) host++;
    used.add(host);
    return host;
  };
  const machines = scenario.machines.map((m) => {
    const attachments = m.networks?.length ? m.networks : [{ network: networks[0]?.name as string, host: undefined }];
    const addresses: Record<string, string> = {};
    for (const a of attachments) {
      const net = networks.find((n) => n.name === a.network) as LabNetwork;
      addresses[a.network] = hostAddress(net.subnet, a.host ?? nextFree(a.network));
    }
    return {
      name: m.name,
      provider: m.provider,
      hostname: m.hostname ?? m.name,
      address: addresses[attachments[0]?.network as string] as string,
      addresses,
      loginUser: m.login?.user,
    };
  });
  return { networks, machines };
}

/** Values for `{{ }}`: the candidate's variables and the lab's facts. */
export function valuesFor(lab: LabRecord, topology: LabTopology): Map<string, string> {
  const values = new Map<string, string>(Object.entries(lab.variables));
  values.set('lab.id', lab.id);
  for (const n of topology.networks) {
    const { base } = parseCidr(n.subnet);
    values.set(`networks.${n.name}.subnet`, n.subnet);
    values.set(`networks.${n.name}.prefix`, intToIp(base).split('.').slice(0, 3).join('.'));
    values.set(`networks.${n.name}.gateway`, n.gateway);
    values.set(`networks.${n.name}.netmask`, '255.255.255.0');
  }
  for (const m of topology.machines) {
    values.set(`machines.${m.name}.ip`, m.address);
    values.set(`machines.${m.name}.hostname`, m.hostname);
    values.set(`machines.${m.name}.login.user`, m.loginUser ?? '');
    for (const [network, address] of Object.entries(m.addresses)) values.set(`machines.${m.name}.${network}.ip`, address);
  }
  return values;
}
