import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createTestApp, inlineScenario, leftovers, scenarioHead, startCpuHog, type CpuHogReport } from './helpers.js';
import { requireTarget } from '../../src/labs/access.js';
import { testScenario, type ScenarioTestReport } from '../../src/labs/scenario-test.js';
import type { LibvirtProvider } from '../../src/providers/libvirt/libvirt-provider.js';
import { withMachineSession } from '../../src/remote/machine-session.js';
import type { RunRecord } from '../../src/labs/lab-store.js';

/**
 * VM labs on the real libvirtd and QEMU (TCG on machines without KVM). The
 * labs of this file are independent and boot in parallel: each flow runs
 * from beforeAll and the tests read what it saw.
 */

type App = Awaited<ReturnType<typeof createTestApp>>;

const header = (id: string) => scenarioHead(id, 'CCP2');

const singleVm = `${header('vm-single')}
machines:
  - name: vm
    provider: libvirt
    image: debian-vm
    resources: { cpus: 1, memory: 384M, disk: 3G }
    disks: [{ size: 256M }]
setup:
  - machine: vm
    run: echo sound > /etc/examlab-marker
checks:
  - { id: marker, title: t, machine: vm, kind: file, path: /etc/examlab-marker, content: { contains: sound } }
  - { id: cpus, title: t, machine: vm, kind: command, run: nproc, stdout: "1" }
  - { id: memory, title: t, machine: vm, kind: command, run: "awk '/MemTotal/ { print ($2 > 300000 && $2 <= 393216) }' /proc/meminfo", stdout: "1" }
  - { id: root-grown, title: t, machine: vm, kind: command, run: "df -B1 --output=size / | tail -n1 | awk '{ print ($1 > 2800000000) }'", stdout: "1" }
  - { id: extra-disk, title: t, machine: vm, kind: command, run: "lsblk -bdno SIZE /dev/vdb", stdout: "268435456" }
`;

const mixed = `${header('vm-mixed')}
machines:
  - name: box
    image: base
  - name: vm
    provider: libvirt
    image: debian-vm
    resources: { memory: 384M }
checks:
  - { id: vm-to-box, title: t, machine: vm, kind: reachable, to: box, port: 22 }
  - { id: box-to-vm, title: t, machine: box, kind: reachable, to: vm, port: 22 }
  - { id: vm-pings-box, title: t, machine: vm, kind: reachable, from: vm, to: box, ping: true }
`;

const busyVm = `${header('vm-busy')}
machines:
  - name: vm
    provider: libvirt
    image: debian-vm
    resources: { cpus: 1, memory: 384M }
checks:
  - { id: hostname, title: t, machine: vm, kind: file, path: /etc/hostname, content: { contains: vm } }
`;

const statuses = (run: RunRecord) => Object.fromEntries(run.results.map((r) => [r.checkId, `${r.status}${r.status === 'pass' ? '' : ` ${r.message ?? r.actual}`}`]));

/** Domains and files of a lab still on the libvirt host. */
function vmLeftovers(app: App, labId: string): { domains: string[]; files: boolean } {
  const domains = execFileSync('virsh', ['-c', app.config.libvirtUri, 'list', '--all', '--name'], { encoding: 'utf8' })
    .split('\n')
    .filter((n) => n.startsWith(`exl-${labId}-`));
  return { domains, files: existsSync(join(app.config.vmDir, 'labs', labId)) };
}

async function onMachine(app: App, labId: string, machine: string, command: string) {
  return withMachineSession(requireTarget(app.stores.labs.get(labId), machine), 10_000, (s) => s.exec(command, { timeoutMs: 30_000 }));
}

/** What a person at the serial console sees after pressing Enter. */
function consoleAnswer(socket: string, ms = 8000): Promise<string> {
  return new Promise((resolve, reject) => {
    let seen = '';
    const s = createConnection(socket);
    s.on('error', reject);
    s.on('data', (chunk: Buffer) => (seen += chunk.toString()));
    s.on('connect', () => s.write('\r'));
    setTimeout(() => {
      s.destroy();
      resolve(seen);
    }, ms);
  });
}

interface BusyFlow {
  hog: CpuHogReport;
  run: RunRecord;
  ssh: Record<string, string>;
  consoleFailures: string[];
  leftovers: ReturnType<typeof vmLeftovers>;
}

/** A one-VM lab brought up while a CPU hog keeps every core busy for its whole boot. */
async function busyFlow(app: App): Promise<BusyFlow> {
  const hog = await startCpuHog(app, 1200);
  try {
    const lab = await app.labs.up(inlineScenario(busyVm, 'vm-busy'));
    const busy = await hog.stop();
    try {
      const run = await app.labs.grade(lab.id);
      const shown = (await onMachine(app, lab.id, 'vm', 'systemctl show ssh.service -p ActiveState -p NRestarts')).stdout;
      const ssh = Object.fromEntries(shown.trim().split('\n').map((l) => l.split('=', 2) as [string, string]));
      const vm = app.stores.labs.get(lab.id).topology?.machines.find((m) => m.name === 'vm');
      const consoleFailures = readFileSync(vm?.console?.log as string, 'utf8').split('\n').filter((l) => /Failed to start|failed; its journal/.test(l));
      await app.labs.destroy(lab.id);
      return { hog: busy, run, ssh, consoleFailures, leftovers: vmLeftovers(app, lab.id) };
    } catch (err) {
      await app.labs.destroy(lab.id).catch(() => undefined);
      throw err;
    }
  } finally {
    await hog.stop();
  }
}

interface SingleFlow {
  labId: string;
  first: RunRecord;
  consoleSeen: string;
  consoleLog: string;
  withoutSsh: RunRecord;
  sshDown: boolean;
  afterReset: { marker: number; candidateFile: number };
  leftovers: ReturnType<typeof vmLeftovers>;
}

async function singleFlow(app: App): Promise<SingleFlow> {
  const lab = await app.labs.up(inlineScenario(singleVm, 'vm-single'));
  try {
    const first = await app.labs.grade(lab.id);
    const vm = app.stores.labs.get(lab.id).topology?.machines.find((m) => m.name === 'vm');
    const consoleSeen = await consoleAnswer(vm?.console?.socket as string);
    const consoleLog = readFileSync(vm?.console?.log as string, 'utf8');
    // The candidate's work, then SSH gone: the grader goes through the guest agent.
    await onMachine(app, lab.id, 'vm', 'touch /root/candidate-was-here && systemctl stop ssh');
    const sshDown = await new Promise<boolean>((resolve) => {
      const s = createConnection(22, vm?.address as string);
      s.on('connect', () => (s.destroy(), resolve(false)));
      s.on('error', () => resolve(true));
    });
    const withoutSsh = await app.labs.grade(lab.id);
    // Reset: the lab provisioned again, each VM on a fresh overlay.
    await app.labs.provision(lab.id);
    const afterReset = {
      marker: (await onMachine(app, lab.id, 'vm', 'test -e /etc/examlab-marker')).exitCode,
      candidateFile: (await onMachine(app, lab.id, 'vm', 'test -e /root/candidate-was-here')).exitCode,
    };
    await app.labs.destroy(lab.id);
    await app.labs.destroy(lab.id); // idempotent
    return { labId: lab.id, first, consoleSeen, consoleLog, withoutSsh, sshDown, afterReset, leftovers: vmLeftovers(app, lab.id) };
  } catch (err) {
    await app.labs.destroy(lab.id).catch(() => undefined);
    throw err;
  }
}

async function mixedFlow(app: App): Promise<{ run: RunRecord; leftovers: ReturnType<typeof vmLeftovers>; docker: Awaited<ReturnType<typeof leftovers>> }> {
  const lab = await app.labs.up(inlineScenario(mixed, 'vm-mixed'));
  try {
    const run = await app.labs.grade(lab.id);
    await app.labs.destroy(lab.id);
    return { run, leftovers: vmLeftovers(app, lab.id), docker: await leftovers(app, lab.id) };
  } catch (err) {
    await app.labs.destroy(lab.id).catch(() => undefined);
    throw err;
  }
}

describe('VM labs (real libvirtd and QEMU)', () => {
  let app: App;
  let single: Promise<SingleFlow>;
  let mixedRun: ReturnType<typeof mixedFlow>;
  let scenario: Promise<ScenarioTestReport>;
  let busy: Promise<BusyFlow>;

  beforeAll(async () => {
    app = await createTestApp();
    // Fails (never skips) when libvirtd is not there.
    await (await app.providers.get('libvirt')).ping();
    await app.images.ensure('debian-vm');
    single = singleFlow(app);
    mixedRun = mixedFlow(app);
    scenario = app.loadScenario('scenarios/unbootable-workstation.yaml').then((loaded) => testScenario(app.labs, loaded));
    busy = busyFlow(app);
    // Settle each so that a failure is reported by its own test.
    for (const p of [single, mixedRun, scenario, busy]) p.catch(() => undefined);
  }, 1_800_000);

  afterAll(() => app?.cleanup());

  test('one VM: provisioned from a linked clone, resources honoured, graded over SSH', async () => {
    const flow = await single;
    expect(statuses(flow.first)).toEqual({ marker: 'pass', cpus: 'pass', memory: 'pass', 'root-grown': 'pass', 'extra-disk': 'pass' });
  }, 1_800_000);

  test('its serial console answers through its socket, and everything it printed is in its log', async () => {
    const flow = await single;
    expect(flow.consoleSeen).toMatch(/login:/);
    expect(flow.consoleLog).toMatch(/Linux version/);
    expect(flow.consoleLog).toMatch(/login:/);
  }, 1_800_000);

  test('with SSH stopped, the grader reaches the VM through its guest agent', async () => {
    const flow = await single;
    expect(flow.sshDown).toBe(true);
    expect(statuses(flow.withoutSsh)).toEqual(statuses(flow.first));
  }, 1_800_000);

  test('reset gives a fresh overlay: setup redone, the candidate\'s changes gone; teardown leaves no domain and no file', async () => {
    const flow = await single;
    expect(flow.afterReset).toEqual({ marker: 0, candidateFile: 1 });
    expect(flow.leftovers).toEqual({ domains: [], files: false });
  }, 1_800_000);

  test('a mixed lab: the container and the VM share the lab network and reach each other', async () => {
    const flow = await mixedRun;
    expect(statuses(flow.run)).toEqual({ 'vm-to-box': 'pass', 'box-to-vm': 'pass', 'vm-pings-box': 'pass' });
    expect(flow.leftovers).toEqual({ domains: [], files: false });
    expect(flow.docker).toEqual({ containers: 0, networks: 0, volumes: 0 });
  }, 1_800_000);

  test('unbootable-workstation: the faults break every check (emergency mode, graded through the agent), the solution fixes them', async () => {
    const report = await scenario;
    expect(report.problems).toEqual([]);
    expect(report.ok).toBe(true);
    expect(vmLeftovers(app, report.labId as string)).toEqual({ domains: [], files: false });
  }, 1_800_000);

  test('on a busy host (every core kept busy for the whole boot) a VM boots into a state the grader logs in to, sshd started at the first try', async () => {
    const flow = await busy;
    // The host really was busy for the whole boot: the hog, and whatever else ran, kept its cores at work (the hog's own share
    // depends on what else runs, so it is not asserted).
    expect(flow.hog.hostBusy).toBeGreaterThan(0.8);
    expect(flow.hog.cpuSeconds).toBeGreaterThan(0);
    expect(statuses(flow.run)).toEqual({ hostname: 'pass' });
    expect(flow.ssh).toEqual({ ActiveState: 'active', NRestarts: '0' });
    expect(flow.consoleFailures).toEqual([]);
    expect(flow.leftovers).toEqual({ domains: [], files: false });
  }, 1_800_000);

  test('a VM whose start fails leaves no domain and no file behind', async () => {
    const provider = (await app.providers.get('libvirt')) as LibvirtProvider;
    const image = await app.images.ensure('debian-vm');
    const lab = { labId: `failstart${Date.now().toString(16)}` };
    const spec = {
      name: 'vm',
      hostname: 'vm',
      image: image.ref,
      attachments: [{ network: { name: 'lan', subnet: '10.231.250.0/24', gateway: '10.231.250.1', bridge: 'exlnosuchbr0' }, address: '10.231.250.10' }],
      resources: { cpus: 1, memoryBytes: 256 * 1024 ** 2, pids: 1024 },
      capabilities: [],
      devices: [],
      systemd: true,
      tmpfs: [],
      rootAuthorizedKeys: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForAFailedStartOnlyxxxxxxxxxxxxxxxx test',
      disks: [{ sizeBytes: 64 * 1024 ** 2 }],
    };
    await expect(provider.createMachine(lab, spec)).rejects.toThrow(/exlnosuchbr0/);
    expect(vmLeftovers(app, lab.labId).domains).toEqual([]);
    await provider.destroyMachines(lab);
    expect(vmLeftovers(app, lab.labId)).toEqual({ domains: [], files: false });
  }, 600_000);
});
