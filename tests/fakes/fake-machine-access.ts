import type { MachineRunner } from '../../src/grading/machine-run.js';
import type { LabRecord } from '../../src/labs/lab-store.js';
import type { MachineAccess, PlacedMachine } from '../../src/labs/machine-access.js';
import type { ExecOptions, ExecResult } from '../../src/remote/ssh-client.js';
import type { MachineSession } from '../../src/remote/machine-session.js';
import { SshError } from '../../src/remote/ssh-client.js';
import { ScriptedFailures, type EngineCall, type FakeMachine } from './fake-provider.js';

type FailingOp = 'waitReady' | 'open' | 'probe';

/**
 * The lab's machines reached as root, in memory. A machine answers only
 * while its engine says it runs. Scripts are read line by line, and a few
 * lines change the machine:
 *
 *   flag-on NAME / flag-off NAME    a setup, fault or solution step sets or clears a flag
 *   useradd ... USER                the candidate account is created
 *   usermod -L ... USER / -U        the account is locked / unlocked
 *
 * Every other line succeeds and changes nothing. A check's fragment
 * `... flag NAME ...` exits 0 when the flag is set, 1 when it is not (a
 * `command` check, `run: flag NAME`). Every call is recorded.
 */
export class FakeMachineAccess implements MachineAccess {
  /** Sessions opened and not closed yet: must be back to 0 after any lab operation. */
  openSessions = 0;
  private readonly failures = new ScriptedFailures<FailingOp>();
  private readonly execFailures: { match: string; result: ExecResult }[] = [];

  constructor(
    private readonly find: (labId: string, machine: string) => FakeMachine | undefined,
    private readonly calls: EngineCall[] = [],
  ) {}

  /** The next `times` calls of `op` (on `machine`, when given) throw `error()`: an unreachable machine by default. */
  failNext(op: FailingOp, options: { times?: number; machine?: string; error?: () => Error } = {}): this {
    const error = options.error ?? (() => new SshError(`${op}: connection refused (scripted)`));
    this.failures.add(op, options.times ?? 1, error, options.machine);
    return this;
  }

  /** The next call of `op` (on `machine`, when given) never returns. */
  hangNext(op: FailingOp, machine?: string): this {
    this.failures.add(op, 1, 'hang', machine);
    return this;
  }

  /** The next `times` scripts containing `match` exit with `result` and change nothing. */
  failExec(match: string, times = 1, result: ExecResult = { exitCode: 1, stdout: '', stderr: `scripted failure of "${match}"`, stdoutBytes: Buffer.alloc(0), truncated: false }): this {
    for (let i = 0; i < times; i++) this.execFailures.push({ match, result });
    return this;
  }

  /** The scripts run on a lab's machines (steps, accounts, locks), in order. */
  scripts(labId: string, machine?: string): string[] {
    return this.calls.filter((c) => c.by === 'access' && c.op === 'exec' && c.labId === labId && (!machine || c.machine === machine)).map((c) => c.detail ?? '');
  }

  async waitReady(lab: LabRecord, machine: PlacedMachine): Promise<string> {
    await this.answering('waitReady', lab, machine.name);
    return `SHA256:fake-${lab.id}-${machine.name}`;
  }

  async open(lab: LabRecord, machine: string): Promise<MachineSession> {
    const target = await this.answering('open', lab, machine);
    this.openSessions++;
    let closed = false;
    return {
      exec: async (command: string, options: ExecOptions) => this.exec(lab, target, command, options),
      close: () => {
        if (!closed) this.openSessions--;
        closed = true;
      },
    };
  }

  async reboot(lab: LabRecord, machine: string): Promise<string> {
    await this.answering('reboot', lab, machine);
    return 'running';
  }

  /**
   * The grader's probe, in memory: only `run` requests (command checks) are
   * understood; `... flag NAME ...` exits 0 when the flag is set, 1 when not.
   * The answers are framed as the real probe frames them.
   */
  runner(lab: LabRecord, machine: string): MachineRunner {
    return {
      probe: async (work) => {
        const lines = work.split('\n').slice(1).filter(Boolean);
        const target = await this.answering('probe', lab, machine, lines.map((l) => l.split('\t').slice(1).join(' ')).join('; '));
        const records = lines.map((line) => {
          const [id = '', verb = '', , , command = ''] = line.split('\t');
          const flag = /\bflag ([\w.-]+)/.exec(command)?.[1];
          if (verb !== 'run' || !flag) return record(id, 'err', `the fake machine cannot answer ${verb}`);
          return record(id, 'ok', `exit=${target.flags.has(flag) ? 0 : 1}\nsignal=0\ntimed_out=0\nstdout=0\nstderr=0\n\n`);
        });
        return Buffer.from(`${records.join('')}end\t${records.length}\n`);
      },
      runScripts: async () => {
        throw new SshError('the fake machines are not Windows guests');
      },
    };
  }

  async trySshLogin(lab: LabRecord, machine: string, user: string, password: string): Promise<{ ok: boolean; detail: string }> {
    const target = await this.answering('login', lab, machine, user);
    const ok = target.users.has(user) && !target.lockedUsers.has(user) && password === lab.secrets.candidatePassword;
    return { ok, detail: ok ? `${user} logged in` : `${user} cannot log in (authentication refused)` };
  }

  private exec(lab: LabRecord, machine: FakeMachine, command: string, options: ExecOptions): ExecResult {
    const script = options.stdin === undefined ? command : options.stdin.toString();
    this.calls.push({ by: 'access', op: 'exec', labId: lab.id, machine: machine.name, detail: script });
    if (machine.state !== 'running') throw new SshError(`machine ${machine.name} does not answer (${machine.state})`);
    const i = this.execFailures.findIndex((f) => script.includes(f.match));
    const [failure] = i >= 0 ? this.execFailures.splice(i, 1) : [];
    if (failure) return failure.result;
    for (const line of script.split('\n').map((l) => l.trim())) {
      const [word, ...rest] = line.split(/\s+/);
      const last = rest.at(-1) ?? '';
      if (word === 'flag-on') machine.flags.add(last);
      if (word === 'flag-off') machine.flags.delete(last);
      const useradd = /useradd .* ([a-z_][\w-]*)$/.exec(line);
      if (useradd?.[1]) machine.users.add(useradd[1]);
      if (word === 'usermod' && rest.includes('-L')) machine.lockedUsers.add(last);
      if (word === 'usermod' && rest.includes('-U')) machine.lockedUsers.delete(last);
    }
    return { exitCode: 0, stdout: '', stderr: '', stdoutBytes: Buffer.alloc(0), truncated: false };
  }

  /** Records the call; fails (or hangs) as scripted, or when the machine is not there or not running. */
  private async answering(op: FailingOp | 'reboot' | 'login', lab: LabRecord, machine: string, detail?: string): Promise<FakeMachine> {
    this.calls.push({ by: 'access', op, labId: lab.id, machine, detail });
    await this.failures.spend(op, machine);
    const target = this.find(lab.id, machine);
    if (!target) throw new SshError(`machine ${machine} of lab ${lab.id}: no route to host`);
    if (target.state !== 'running') throw new SshError(`machine ${machine} of lab ${lab.id} does not answer (${target.state})`);
    return target;
  }
}

/** One framed record of the probe's answer. */
function record(id: string, status: string, payload: string): string {
  return `${id}\t${status}\t${Buffer.byteLength(payload)}\n${payload}\n`;
}
