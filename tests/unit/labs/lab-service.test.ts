import { ExamHarness } from '../../fakes/exam-harness.js';
import { flagScenario } from '../../fakes/flag-scenarios.js';
import { StepError } from '../../../src/labs/steps.js';
import { ConflictError } from '../../../src/util/errors.js';

/** LabService on fake engines and machines: what it builds, grades and removes. */
describe('a lab', () => {
  let h: ExamHarness;
  beforeEach(() => (h = ExamHarness.create()));
  afterEach(() => h.close());

  const up = (yaml = flagScenario()) => h.labs.up(h.scenario(yaml), { candidateId: 'c1', seed: 'seed-1' });

  test('is built: networks, machines, host keys pinned, the candidate account, setup then faults', async () => {
    const lab = await up();
    expect(lab.state).toBe('ready');
    expect(h.labStore.events(lab.id).map((e) => e.to)).toEqual(['requested', 'provisioning', 'ready']);

    const [network] = h.docker.networks.get(lab.id) ?? [];
    expect(lab.topology?.networks).toEqual([network]);
    const pc = h.docker.machine(lab.id, 'pc');
    expect(pc?.spec).toMatchObject({ image: 'fake/base', hostname: 'pc', rootAuthorizedKeys: lab.secrets.graderPublicKey, attachments: [{ network, address: lab.topology?.machines[0]?.address }] });
    expect(lab.topology?.machines.map((m) => m.hostKey)).toEqual([`SHA256:fake-${lab.id}-pc`, `SHA256:fake-${lab.id}-srv`]);

    // The account only where the candidate logs in; then setup, then faults, in the scenario's order.
    const onPc = h.access.scripts(lab.id, 'pc');
    expect(onPc).toHaveLength(3);
    expect(onPc[0]).toContain('useradd -m -s /bin/bash technicien');
    expect(onPc.slice(1)).toEqual(['flag-on service', 'flag-off service']);
    expect(h.access.scripts(lab.id, 'srv')).toEqual(['flag-on sshd']);
    expect(pc?.users).toEqual(new Set(['technicien']));
    expect(pc?.flags).toEqual(new Set());
    expect(h.docker.machine(lab.id, 'srv')?.flags).toEqual(new Set(['sshd']));
    expect(h.access.openSessions).toBe(0);
  });

  test('a failing step fails the lab with the step named, and leaves nothing on the engines', async () => {
    h.access.failExec('flag-off service');
    const error = await up().catch((err: unknown) => err);
    expect(error).toBeInstanceOf(StepError);
    expect((error as Error).message).toMatch(/^faults\[0\] on pc exited 1:\nscripted failure/);
    const [lab] = h.labs.list();
    expect(lab?.state).toBe('failed');
    expect(lab?.stateDetail).toBe((error as Error).message);
    expect(h.docker.machinesOf(lab?.id ?? '')).toEqual([]);
    expect(h.docker.networks.has(lab?.id ?? '')).toBe(false);
    expect(h.access.openSessions).toBe(0);
  });

  test('a machine the engine cannot create fails the lab; the machines already made are removed', async () => {
    h.docker.failNext('createMachine', { machine: 'srv' });
    await expect(up()).rejects.toThrow('docker: createMachine failed (scripted)');
    const [lab] = h.labs.list();
    expect(lab?.state).toBe('failed');
    expect(h.callsOf(lab?.id ?? '', (c) => c.op === 'createMachine')).toEqual(['createMachine pc', 'createMachine srv']);
    expect(h.docker.machines.size).toBe(0);
    expect(h.callsOf(lab?.id ?? '', (c) => c.by === 'docker' && c.op.startsWith('destroy')).slice(-2)).toEqual(['destroyMachines', 'destroyNetworks']);
  });

  test('is graded as it is: the broken state, then the solution', async () => {
    const lab = await up();
    const broken = await h.labs.grade(lab.id);
    expect(broken.results.map((r) => [r.checkId, r.status, r.points])).toEqual([
      ['service', 'fail', 0],
      ['sshd', 'pass', 1],
    ]);
    expect(broken.score).toMatchObject({ points: 1, maxPoints: 3, complete: true });

    await h.labs.applySolution(lab.id);
    const fixed = await h.labs.grade(lab.id, 'solution');
    expect(fixed).toMatchObject({ purpose: 'solution', status: 'done', score: { points: 3, maxPoints: 3, passed: true } });
    expect(h.labStore.runs(lab.id).map((r) => r.purpose)).toEqual(['grade', 'solution']);
  });

  test('a machine that does not answer makes its checks errors: the run is stored, its score incomplete', async () => {
    const lab = await up();
    h.access.failNext('probe');
    const run = await h.labs.grade(lab.id);
    const service = run.results.find((r) => r.checkId === 'service');
    expect(service?.status).toBe('error');
    expect(service?.message).toContain('machine pc could not be graded: probe: connection refused');
    expect(run.results.find((r) => r.checkId === 'sshd')?.status).toBe('pass');
    expect(run.score).toMatchObject({ complete: false, errors: ['service'] });
  });

  test('the baseline: the fault must break what its check tests, the guard must still pass', async () => {
    const good = await up();
    const report = await h.labs.verifyBaseline(good.id);
    expect(report).toMatchObject({ ok: true, problems: [] });
    expect(report.run.purpose).toBe('baseline');

    const harmless = await up(flagScenario({ fault: 'flag-off nothing' }));
    expect((await h.labs.verifyBaseline(harmless.id)).problems).toEqual([{ checkId: 'service', expected: 'fail', status: 'pass', detail: 'the faults do not break what this check tests: observed exit code 0' }]);

    const tooBroken = await up(flagScenario({ fault: 'flag-off service' }));
    h.docker.machine(tooBroken.id, 'srv')?.flags.delete('sshd');
    expect((await h.labs.verifyBaseline(tooBroken.id)).problems).toEqual([expect.objectContaining({ checkId: 'sshd', expected: 'pass', status: 'fail' })]);
  });

  test('the candidate is locked out of the machines they log in to, and let back in', async () => {
    const lab = await up();
    await h.labs.lockCandidate(lab.id);
    expect(h.docker.machine(lab.id, 'pc')?.lockedUsers).toEqual(new Set(['technicien']));
    expect(h.access.scripts(lab.id, 'srv')).toEqual(['flag-on sshd']);
    await h.labs.unlockCandidate(lab.id);
    expect(h.docker.machine(lab.id, 'pc')?.lockedUsers).toEqual(new Set());
    expect(h.access.openSessions).toBe(0);
  });

  test('a lock that does not take is an error naming the account and the machine', async () => {
    const lab = await up();
    h.access.failExec('usermod -L', 1, { exitCode: 6, stdout: '', stderr: 'usermod: user is logged in', stdoutBytes: Buffer.alloc(0), truncated: false });
    await expect(h.labs.lockCandidate(lab.id)).rejects.toThrow(`cannot change the candidate account technicien on pc of lab ${lab.id}: usermod: user is logged in`);
  });

  test('pause and resume every machine; the engines report their states', async () => {
    const lab = await up();
    await h.labs.pause(lab.id);
    expect(await h.labs.machineStates(lab.id)).toEqual({ pc: 'paused', srv: 'paused' });
    await h.labs.resume(lab.id);
    expect(await h.labs.machineStates(lab.id)).toEqual({ pc: 'running', srv: 'running' });
    await h.docker.destroyMachines({ labId: lab.id });
    expect(await h.labs.machineStates(lab.id)).toEqual({ pc: 'missing', srv: 'missing' });
  });

  test('a reset rebuilds the same lab from scratch: what the candidate did is gone, values and keys stay', async () => {
    const lab = await up();
    const firstPc = h.docker.machine(lab.id, 'pc');
    firstPc?.flags.add('service');
    const again = await h.labs.reset(lab.id);
    expect(again.state).toBe('ready');
    expect(h.docker.machine(lab.id, 'pc')).not.toBe(firstPc);
    expect(h.docker.machine(lab.id, 'pc')?.flags).toEqual(new Set());
    expect({ seed: again.seed, variables: again.variables, secrets: again.secrets }).toEqual({ seed: lab.seed, variables: lab.variables, secrets: lab.secrets });
    expect(h.callsOf(lab.id, (c) => c.by === 'docker' && c.op === 'createMachine')).toEqual(['createMachine pc', 'createMachine srv', 'createMachine pc', 'createMachine srv']);
  });

  test('destroy removes everything, once; a destroyed lab is neither graded nor reset', async () => {
    const lab = await up();
    expect((await h.labs.destroy(lab.id)).state).toBe('destroyed');
    expect(h.docker.machines.size + h.docker.networks.size).toBe(0);
    expect((await h.labs.destroy(lab.id)).state).toBe('destroyed');
    expect(h.labStore.events(lab.id).filter((e) => e.to === 'destroyed')).toHaveLength(1);
    await expect(h.labs.grade(lab.id)).rejects.toThrow(ConflictError);
    await expect(h.labs.reset(lab.id)).rejects.toThrow(ConflictError);
  });
});
