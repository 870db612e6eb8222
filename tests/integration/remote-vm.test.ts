import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable, type Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { pino, type Logger } from 'pino';
import { loadToolbox, runMachine } from '../../src/grading/index.js';
import { consoleTail } from '../../src/labs/console.js';
import { LabMachineAccess, machineConsoleLog } from '../../src/labs/access.js';
import type { LabRecord } from '../../src/labs/lab-store.js';
import { ProviderRegistry, type LabNetwork, type LabRef, type MachineSpec, type Provider } from '../../src/providers/index.js';
import { DockerProvider } from '../../src/providers/docker/index.js';
import type { LibvirtProvider } from '../../src/providers/libvirt/libvirt-provider.js';
import { startLibvirtProvider, type LibvirtProviderOptions } from '../../src/providers/libvirt/index.js';
import { GuestAgentSession, generateKeyPair } from '../../src/remote/index.js';
import { startLabHosts, type LabHost, type LabHosts } from '../hosts/lab-hosts.js';
import { createTestApp } from './helpers.js';

/** Where examlab keeps VM files, on this host and (the same path) on the lab host. */
const VM_DIR = '/var/lib/libvirt/images/examlab';
/** A TCG boot nested in a container on a busy two-core host: 20-60 s, more under load. */
const BOOT_TIMEOUT_MS = 240_000;

/** Log lines of a provider, as objects: the test reads what it did (an image copied, and when). */
function capturedLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _encoding, done) {
      for (const line of chunk.toString('utf8').split('\n').filter(Boolean)) lines.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink), lines };
}

/** A command in the lab host's container through this host's engine: what is really on the host, seen from outside examlab. */
function onHost(host: LabHost, ...argv: string[]): string {
  return execFileSync('docker', ['exec', host.name, ...argv], { encoding: 'utf8' });
}

/** What a person at the serial console sees after pressing Enter. */
function consoleAnswer(stream: Duplex, ms = 8000): Promise<string> {
  return new Promise((resolve) => {
    let seen = '';
    stream.on('data', (chunk: Buffer) => (seen += chunk.toString()));
    stream.write('\r');
    setTimeout(() => {
      stream.destroy();
      resolve(seen);
    }, ms);
  });
}

/**
 * VMs on another host's libvirtd (here a lab host in a container of this
 * one, running dockerd, sshd, libvirtd and QEMU under TCG). The Docker
 * provider makes the lab network on that host's engine; the libvirt
 * provider, over one SSH connection with the pinned host key, copies the VM
 * image there once, defines the VM on that bridge, and reaches it through
 * the host: the grader's SSH, its guest agent, its console and log.
 */
describe('VMs on a lab host\'s libvirt, over SSH', () => {
  let hosts: LabHosts;
  let host: LabHost;
  let docker: DockerProvider;
  let libvirt: LibvirtProvider;
  let app: Awaited<ReturnType<typeof createTestApp>>;
  let dir: string;
  let lines: Record<string, unknown>[];
  let image: { disk: string; kernel: { path: string; initrd?: string; cmdline: string } };
  const grader = generateKeyPair('grader');
  const labA: LabRef = { labId: `rvm${Date.now().toString(36)}a` };
  const labB: LabRef = { labId: `rvm${Date.now().toString(36)}b` };
  let network: LabNetwork;
  let networkB: LabNetwork;

  const options = (): LibvirtProviderOptions => ({
    uri: host.docker.libvirt as string,
    labsDir: join(VM_DIR, 'labs'),
    imagesDir: join(VM_DIR, 'images'),
    accelerationCache: join(dir, 'acceleration.json'),
    labHost: { sshKey: host.docker.sshPrivateKeyFile, sshHostKey: host.docker.sshHostKey, socketDir: join(dir, 'run') },
  });

  const spec = (name: string, net: LabNetwork, extra: Partial<MachineSpec> = {}): MachineSpec => ({
    name,
    hostname: name,
    image: image.disk,
    attachments: [{ network: net, address: net.gateway.replace(/\.1$/, '.10') }],
    resources: { cpus: 1, memoryBytes: 384 * 1024 ** 2, pids: 1024 },
    capabilities: [],
    devices: [],
    systemd: true,
    tmpfs: [],
    rootAuthorizedKeys: grader.publicKey,
    boot: { mode: 'kernel' as const, kernel: image.kernel.path, initrd: image.kernel.initrd, cmdline: image.kernel.cmdline },
    ...extra,
  });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'examlab-rvm-'));
    // The VM image, built on this host as for a local VM lab (already there on a machine that ran vm-lab).
    app = await createTestApp();
    const built = await app.images.ensure('debian-vm');
    image = { disk: built.ref, kernel: built.kernel as typeof image.kernel };
    hosts = await startLabHosts(1, { name: 'remote-vm', vm: true });
    host = hosts.hosts[0] as LabHost;
    docker = await DockerProvider.start(pino({ level: 'silent' }), {
      subnetPool: '10.233.0.0/16',
      engine: { url: host.docker.tcp, tls: { ca: join(host.docker.certDir, 'ca.pem'), cert: join(host.docker.certDir, 'cert.pem'), key: join(host.docker.certDir, 'key.pem') } },
      graderTools: () => Promise.reject(new Error('this test runs no container')),
    });
    const captured = capturedLogger();
    lines = captured.lines;
    libvirt = (await startLibvirtProvider(captured.log, options())) as LibvirtProvider;
    network = await docker.createNetwork(labA, 'lan');
    networkB = await docker.createNetwork(labB, 'lan');
  }, 600_000);

  afterAll(async () => {
    await libvirt?.close();
    await hosts?.close();
    app?.cleanup();
    rmSync(dir, { recursive: true, force: true });
  }, 180_000);

  test('a VM boots there from an image copied once, and is graded, reached and torn down through the host', async () => {
    // The provider answers through the forwarded socket, and says how guests run there.
    expect(await libvirt.ping()).toMatch(/^libvirt at qemu\+ssh:\/\/root@[\d.]+\/system \(its socket carried over SSH\) on remote-vm-\w+-1, domain type qemu \(\/dev\/kvm absent on the lab host/);

    // Two VMs of one image at once (the second defined, not started): one copy, written aside and renamed into place.
    const created = Date.now();
    const [vm] = await Promise.all([libvirt.createMachine(labA, spec('vm', network)), libvirt.createMachine(labB, spec('idle', networkB, { poweredOff: true }))]);
    const booting = Date.now();
    const copies = lines.filter((l) => l.msg === 'VM image copied to the lab host');
    expect(copies).toHaveLength(1);
    const copy = copies[0] as { image: string; megabytes: number; seconds: number };
    process.stdout.write(`remote VM: image ${copy.image} (${copy.megabytes} MB) copied in ${copy.seconds} s; both VMs defined in ${(Date.now() - created) / 1000} s\n`);
    const folder = join(VM_DIR, 'images', copy.image);
    expect(onHost(host, 'ls', join(VM_DIR, 'images')).trim().split('\n')).toEqual([copy.image]);
    const copied = onHost(host, 'sha256sum', join(folder, 'disk.qcow2')).split(' ')[0];
    expect(copied).toBe(execFileSync('sha256sum', [image.disk], { encoding: 'utf8' }).split(' ')[0]);
    expect(onHost(host, 'virsh', '-q', 'list', '--all', '--name').trim().split('\n').sort()).toEqual([`exl-${labA.labId}-vm`, `exl-${labB.labId}-idle`].sort());
    expect(onHost(host, 'virsh', 'dumpxml', `exl-${labA.labId}-vm`)).toContain(`<source bridge='${network.bridge}'/>`);
    expect(vm.console?.socket).toBe(join(VM_DIR, 'labs', labA.labId, 'vm.console.sock'));

    // A provider started anew (a restarted daemon) finds the copy and does not make another.
    const inode = onHost(host, 'stat', '-c', '%i %Y', folder);
    const again = capturedLogger();
    const restarted = (await startLibvirtProvider(again.log, options())) as LibvirtProvider;
    try {
      await restarted.destroyMachines(labB);
      await restarted.createMachine(labB, spec('idle', networkB, { poweredOff: true }));
      expect(again.lines.filter((l) => l.msg === 'VM image copied to the lab host')).toEqual([]);
      expect(onHost(host, 'stat', '-c', '%i %Y', folder)).toBe(inode);
      await restarted.destroyMachines(labB);
    } finally {
      await restarted.close();
    }

    // The grader logs in through the host, as the labs do: a lab record on that host, its machine reached by the provider's tunnel.
    const providers = new ProviderRegistry().registerHost({ name: 'remote', local: false, labels: {} }, async () => docker as Provider, async () => libvirt);
    expect(providers.engineOf('docker@remote', 'libvirt')).toBe('libvirt@remote');
    const record = {
      id: labA.labId,
      host: 'docker@remote',
      topology: { networks: [network], machines: [{ name: 'vm', provider: 'libvirt', hostname: 'vm', address: vm.address, addresses: { lan: vm.address }, console: vm.console }] },
      secrets: { graderPrivateKey: grader.privateKey, graderPublicKey: grader.publicKey },
    } as unknown as LabRecord;
    const access = new LabMachineAccess(providers, () => loadToolbox(join(app.config.buildDir, 'toolbox')));
    const placed = record.topology?.machines[0] as NonNullable<LabRecord['topology']>['machines'][number];
    const hostKey = await access.waitReady(record, placed, BOOT_TIMEOUT_MS);
    process.stdout.write(`remote VM: started to the grader's SSH login (through the host) in ${(Date.now() - booting) / 1000} s\n`);
    expect(hostKey).toMatch(/^SHA256:/);
    placed.hostKey = hostKey;
    const [answer] = await runMachine([{ probe: { name: { verb: 'read', args: ['/etc/hostname', 4096] } }, timeoutMs: 30_000 }], access.runner(record, 'vm'));
    expect(answer?.probe?.get('name')?.data.toString()).toBe('vm\n');
    const session = await access.open(record, 'vm', 30_000);
    try {
      expect((await session.exec('hostname; id -u', { timeoutMs: 20_000 })).stdout).toBe('vm\n0\n');
    } finally {
      session.close();
    }

    // The guest agent, through the host's socket.
    const agent = await GuestAgentSession.connect(vm.console?.agent as string, 30_000, () => libvirt.consoleStream(labA, 'vm', 'agent'));
    try {
      expect((await agent.exec('cat /etc/hostname', { timeoutMs: 20_000 })).stdout).toBe('vm\n');
    } finally {
      agent.close();
    }
    // What a VM that never let the grader in would be reported with: its log and its agent, read on the host.
    expect(await libvirt.bootFailureReport(vm.console as NonNullable<typeof vm.console>)).toMatch(/^its guest agent says:\n.*ssh\.service/s);
    // With its sshd stopped, the grader's session falls back to the agent, on the host too.
    await access.open(record, 'vm', 30_000).then(async (s) => {
      await s.exec('systemctl stop ssh.socket ssh.service', { timeoutMs: 20_000 });
      s.close();
    });
    const fallback = await access.open(record, 'vm', 10_000);
    try {
      expect(fallback).toBeInstanceOf(GuestAgentSession);
      expect((await fallback.exec('hostname', { timeoutMs: 20_000 })).stdout).toBe('vm\n');
    } finally {
      fallback.close();
    }

    // Its console log, read on the host, and its console, answered through it.
    const tail = await consoleTail(vm.console?.log as string, 40, machineConsoleLog(providers, record, 'vm'));
    expect(tail).toMatch(/Linux version|login:|Debian/);
    const seen = await consoleAnswer((await libvirt.consoleStream(labA, 'vm', 'console')) as Duplex);
    expect(seen).toMatch(/login:/);

    // Teardown removes the domains and the lab's files on the host.
    expect((await libvirt.listLabIds()).sort()).toEqual(expect.arrayContaining([labA.labId]));
    await libvirt.destroyMachines(labA);
    await libvirt.destroyMachines(labA); // idempotent
    await docker.destroyNetworks(labA);
    await docker.destroyNetworks(labB);
    expect(onHost(host, 'virsh', '-q', 'list', '--all', '--name').trim()).toBe('');
    expect(onHost(host, 'ls', '-A', join(VM_DIR, 'labs')).trim()).toBe('');
    expect(await libvirt.listLabIds()).toEqual([]);
    // The image copy stays for the next labs.
    expect(onHost(host, 'ls', folder).trim().split('\n').sort()).toEqual(['disk.qcow2', 'image.json', 'initrd.img', 'vmlinuz']);
  }, 420_000);
});
