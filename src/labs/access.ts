import { createHash } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { MAX_PROBE_OUTPUT, sessionRunner, type GradingAccess, type MachineRunner, type Toolbox } from '../grading/index.js';
import { GRADER_TOOLS_DIR, type EngineCommand, type Provider, type ProviderRegistry } from '../providers/index.js';
import { openMachineSession, SshSession, type ExecOptions, type ExecResult, type MachineSession, type SshTarget } from '../remote/index.js';
import { EnvironmentError, errorMessage } from '../util/errors.js';
import { retryUntil } from '../util/retry.js';
import { labRef, type LabRecord } from './lab-store.js';
import type { MachineAccess, PlacedMachine } from './machine-access.js';
import { rebootMachine } from './reboot.js';

/** Time for the engine to start the probe and carry its answer, on top of the probe's own deadline. */
const ENGINE_MARGIN_MS = 5_000;

/**
 * Machines reached the way their engine allows. A container is reached
 * through the engine's exec API: nothing of the machine (its sshd, root's
 * shell, its SFTP server) is on the way, so SSH hardening is exam content
 * and the grader's probe runs from a read-only volume. A VM is reached over
 * SSH as root with the lab's grader key (host key pinned), or through its
 * guest agent when SSH does not answer.
 */
export class LabMachineAccess implements MachineAccess {
  constructor(
    private readonly providers: ProviderRegistry,
    private readonly toolbox: () => Promise<Toolbox>,
  ) {}

  async waitReady(lab: LabRecord, machine: PlacedMachine, timeoutMs: number): Promise<string | undefined> {
    const engine = await this.engine(lab, machine.name);
    if (!engine) return waitForLogin(lab, machine, machineTunnel(this.providers, lab, machine.name), timeoutMs);
    const deadline = Date.now() + timeoutMs;
    const session = engineSession(engine);
    await retryUntil(() => session.exec('true', { timeoutMs: 5000 }), (r) => r.exitCode === 0, { what: `machine ${machine.name} to run commands`, timeoutMs, intervalMs: 200 });
    // Booted: systemd done starting (when it is PID 1), and sshd listening when the machine has one, for the candidate's sessions.
    const booted = await session.exec(BOOTED, { timeoutMs: Math.max(1000, deadline - Date.now()) });
    if (booted.exitCode !== 0) throw new EnvironmentError(`machine ${machine.name} did not finish booting: ${booted.stderr.trim() || booted.stdout.trim()}`);
    const key = booted.stdout.trim().split(/\s+/)[1];
    return key ? `SHA256:${createHash('sha256').update(Buffer.from(key, 'base64')).digest('base64').replace(/=+$/, '')}` : undefined;
  }

  async open(lab: LabRecord, machine: string, timeoutMs: number): Promise<MachineSession> {
    const engine = await this.engine(lab, machine);
    return engine ? engineSession(engine) : openMachineSession(this.target(lab, machine), timeoutMs);
  }

  reboot(lab: LabRecord, machine: string, timeoutMs: number): Promise<string> {
    return rebootMachine(this.target(lab, machine), timeoutMs);
  }

  /** Root's target, with the ways through the engine (to its sshd, to its guest agent) when the machine is on another host. */
  private target(lab: LabRecord, machine: string): SshTarget {
    return { ...requireTarget(lab, machine), tunnel: machineTunnel(this.providers, lab, machine), agentStream: machineConsoleStream(this.providers, lab, machine, 'agent') };
  }

  runner(lab: LabRecord, machine: string): MachineRunner {
    const viaSession = sessionRunner(() => openMachineSession(this.target(lab, machine), 15_000), this.toolbox);
    return {
      probe: async (work, { deadlineMs }) => {
        const engine = await this.engine(lab, machine);
        if (!engine) return viaSession.probe(work, { deadlineMs });
        const run = await engine.exec({ argv: [`${GRADER_TOOLS_DIR}/examlab-probe`, 'serve'], stdin: work, timeoutMs: deadlineMs + ENGINE_MARGIN_MS, maxOutputBytes: MAX_PROBE_OUTPUT });
        if (run.exitCode === 126 || run.exitCode === 127) throw new EnvironmentError(`the grader's probe cannot start in machine ${machine}: ${run.stderr.toString('utf8').trim()}`);
        return run.stdout;
      },
      runScripts: (scripts) => viaSession.runScripts(scripts),
    };
  }

  async trySshLogin(lab: LabRecord, machine: string, user: string, password: string, timeoutMs: number): Promise<{ ok: boolean; detail: string }> {
    const m = lab.topology?.machines.find((x) => x.name === machine);
    if (!m) return { ok: false, detail: `no machine ${machine}` };
    try {
      const session = await SshSession.connect({ host: m.address, username: user, password, hostKey: m.hostKey, tunnel: machineTunnel(this.providers, lab, machine) }, timeoutMs);
      session.close();
      return { ok: true, detail: `${user} logged in` };
    } catch (err) {
      const message = errorMessage(err);
      // A refused login is the answer; an unreachable machine is not (the grader cannot decide).
      if (/authentication methods failed/i.test(message)) return { ok: false, detail: `${user} cannot log in (authentication refused)` };
      throw err;
    }
  }

  /** The engine's own way in, when the machine's provider has one. */
  private async engine(lab: LabRecord, machine: string): Promise<EngineTarget | undefined> {
    const provider = await providerOf(this.providers, lab, machine);
    const exec = provider.exec?.bind(provider);
    if (!exec) return undefined;
    const ref = labRef(lab);
    return { name: machine, exec: (command) => exec(ref, machine, command) };
  }
}

/** One SSH login attempt while waiting for a machine: long enough for a handshake with a machine slowed by a busy host. */
const LOGIN_ATTEMPT_MS = 30_000;

/** Until the grader logs in over SSH with its key and runs a command: sshd listening is not enough. */
async function waitForLogin(lab: LabRecord, machine: { name: string; address: string }, tunnel: SshTarget['tunnel'], timeoutMs: number): Promise<string> {
  const deadline = Date.now() + timeoutMs;
  const session = await retryUntil(
    async () => {
      // A refused connection still fails at once; only a slow handshake uses the long attempt.
      const attemptMs = Math.max(1000, Math.min(LOGIN_ATTEMPT_MS, deadline - Date.now()));
      const s = await SshSession.connect({ host: machine.address, username: 'root', privateKey: lab.secrets.graderPrivateKey, tunnel }, attemptMs);
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

interface EngineTarget {
  name: string;
  exec(command: EngineCommand): Promise<{ exitCode: number; stdout: Buffer; stderr: Buffer }>;
}

/** Waits for systemd (if PID 1) to finish starting and for sshd (if installed) to listen; prints the ed25519 host key. */
const BOOTED = `if [ -d /run/systemd/system ]; then systemctl is-system-running --wait >/dev/null 2>&1; fi
if [ -e /etc/ssh/sshd_config ]; then
  i=0; until grep -qs ':0016 [0-9A-F:]* 0A' /proc/net/tcp /proc/net/tcp6; do i=$((i+1)); [ $i -gt 300 ] && { echo 'sshd does not listen on port 22' >&2; exit 1; }; sleep 0.1; done
fi
cat /etc/ssh/ssh_host_ed25519_key.pub 2>/dev/null; true`;

/** A root shell on a container, through the engine: the machine's /bin/sh, no SSH. */
function engineSession(engine: EngineTarget): MachineSession {
  return {
    async exec(command: string, options: ExecOptions): Promise<ExecResult> {
      const limit = options.maxOutputBytes ?? 8 << 20;
      const run = await engine.exec({ argv: ['/bin/sh', '-c', command], stdin: options.stdin ?? '', timeoutMs: options.timeoutMs, maxOutputBytes: 2 * limit });
      return { exitCode: run.exitCode, stdout: run.stdout.toString('utf8'), stderr: run.stderr.toString('utf8'), stdoutBytes: run.stdout, truncated: false };
    },
    close() {},
  };
}

/** What the grader may do on one lab: ask its machines, try logins, know addresses and the services' programs. */
export function gradingAccess(lab: LabRecord, machines: MachineAccess): GradingAccess {
  const byName = new Map((lab.topology?.machines ?? []).map((m) => [m.name, m]));
  return {
    machine: (name) => machines.runner(lab, name),
    trySshLogin: (machine, user, password, timeoutMs) => machines.trySshLogin(lab, machine, user, password, timeoutMs),
    servicePrograms: (machine, unit) => byName.get(machine)?.servicePrograms?.[unit],
    addressOf(machine, from) {
      const target = byName.get(machine);
      if (!target) return undefined;
      const origin = from ? byName.get(from) : undefined;
      if (!origin) return target.address;
      // An address on a network both machines are on, so the check tests a path that exists.
      const shared = Object.keys(target.addresses).find((n) => n in origin.addresses);
      return shared ? target.addresses[shared] : target.address;
    },
  };
}

/** The way to a machine's sshd through its engine, for an engine on another host (see Provider.tunnel). */
export function machineTunnel(providers: ProviderRegistry, lab: LabRecord, machine: string): () => Promise<Duplex | undefined> {
  return async () => (await providerOf(providers, lab, machine)).tunnel?.(labRef(lab), machine, 22);
}

/**
 * The way to a VM's console or guest agent socket through its provider, for
 * a VM of another host (see Provider.consoleStream); nothing for a lab of
 * this host, whose sockets are opened at their paths without starting the
 * provider.
 */
export function machineConsoleStream(providers: ProviderRegistry, lab: LabRecord, machine: string, which: 'console' | 'agent'): () => Promise<Duplex | undefined> {
  return async () => (onThisHost(providers, lab) ? undefined : (await providerOf(providers, lab, machine)).consoleStream?.(labRef(lab), machine, which));
}

/** The end of a VM's console log through its provider, for one kept on another host (see Provider.consoleLogTail); nothing for this host's. */
export function machineConsoleLog(providers: ProviderRegistry, lab: LabRecord, machine: string): (maxBytes: number) => Promise<Buffer | undefined> {
  return async (maxBytes) => (onThisHost(providers, lab) ? undefined : (await providerOf(providers, lab, machine)).consoleLogTail?.(labRef(lab), machine, maxBytes));
}

/** Whether the lab's machines run on this host: no lab host, or this host's own. */
function onThisHost(providers: ProviderRegistry, lab: LabRecord): boolean {
  return lab.host === undefined || providers.hosts().find((h) => h.key === lab.host)?.local === true;
}

/** The provider (its host's engine) that runs a machine of the lab. */
async function providerOf(providers: ProviderRegistry, lab: LabRecord, machine: string): Promise<Provider> {
  const placed = lab.topology?.machines.find((m) => m.name === machine);
  if (!placed) throw new EnvironmentError(`lab ${lab.id} has no machine ${machine}`);
  return providers.get(providers.engineOf(lab.host, placed.provider));
}

/** Root's SSH target for `machine` of the lab, which must exist: the grader's key, the pinned host key, the guest agent. */
export function requireTarget(lab: LabRecord, machine: string): SshTarget {
  const m = lab.topology?.machines.find((x) => x.name === machine);
  if (!m) throw new Error(`lab ${lab.id} has no machine ${machine}`);
  return { host: m.address, username: 'root', privateKey: lab.secrets.graderPrivateKey, hostKey: m.hostKey, agentSocket: m.console?.agent };
}
