import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@jest/globals';
import { createTestApp, inlineScenario, scenarioHead, startCpuHog, type CpuHogReport } from '../integration/helpers.js';
import { PACKAGE_ROOT } from '../../src/daemon/config.js';
import type { DockerProvider } from '../../src/providers/docker/docker-provider.js';
import { createOverlay } from '../../src/providers/libvirt/disks.js';
import { localVmHost } from '../../src/providers/libvirt/vm-host.js';
import { domainXml } from '../../src/providers/libvirt/domain-xml.js';
import type { LibvirtProvider } from '../../src/providers/libvirt/libvirt-provider.js';
import { writeSeedIso } from '../../src/providers/libvirt/seed.js';
import { generateKeyPair, SshSession } from '../../src/remote/ssh-client.js';
import { newId } from '../../src/util/ids.js';
import { retryUntil } from '../../src/util/retry.js';

const run = promisify(execFile);

/**
 * A one-VM lab, side by side in one run, each round:
 * - quiet: `lab up` until the grader has logged in;
 * - busy: the same while a CPU hog keeps every core of the host busy
 *   (one busy loop per core in a container, for the whole boot);
 * - bare: a `virsh create` of the very same domain XML (its overlay and seed
 *   made beforehand, untimed) until SSH answers. The difference with quiet is
 *   what examlab adds: network, overlay, seed, domain definition, bookkeeping.
 * `lab up` is also split at the moment its machine is created (libvirt has
 * started the domain): what is left is the boot until the grader logged in.
 */
const SCENARIO = `${scenarioHead('vm-bench', 'CCP2')}machines:
  - { name: vm, provider: libvirt, image: debian-vm, resources: { memory: 512M } }
checks:
  - { id: up, title: t, machine: vm, kind: file, path: /etc/hostname }
`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

test('one-VM lab: lab up to SSH-ready on a quiet and on a busy host, and bare virsh create of the same domain, same run', async () => {
  const app = await createTestApp();
  const rounds = 3;
  const libvirt = (await app.providers.get('libvirt')) as LibvirtProvider;
  const docker = (await app.providers.get('docker')) as DockerProvider;
  const image = await app.images.ensure('debian-vm');
  // When `lab up` has its machine: the domain is started, the rest is its boot.
  let machineCreatedAt = 0;
  const createMachine = libvirt.createMachine.bind(libvirt);
  libvirt.createMachine = async (lab, spec) => {
    const instance = await createMachine(lab, spec);
    machineCreatedAt = Date.now();
    return instance;
  };
  const labUp = async () => {
    const started = Date.now();
    const lab = await app.labs.up(inlineScenario(SCENARIO, 'vm-bench'));
    const done = Date.now();
    // The host's load at the end of the boot: the quiet rounds share the machine with whatever else runs on it.
    const loadavg1 = loadavg()[0] as number;
    await app.labs.destroy(lab.id);
    return { totalMs: done - started, bootMs: done - machineCreatedAt, loadavg1 };
  };
  const quiet: { totalMs: number; bootMs: number; loadavg1: number }[] = [];
  const busy: { totalMs: number; bootMs: number; loadavg1: number; hog: CpuHogReport }[] = [];
  const bareMs: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      // quiet: lab up (no setup, no candidate account), which returns once the grader has logged in.
      quiet.push(await labUp());

      // busy: the same with every core kept busy from before the lab is made until it is ready.
      const hog = await startCpuHog(app, 1200);
      try {
        const up = await labUp();
        busy.push({ ...up, hog: await hog.stop() });
      } finally {
        await hog.stop();
      }

      // bare: the same domain XML, made ready beforehand; timed from virsh create to SSH.
      const ref = { labId: `bench${newId(4)}` };
      const dir = mkdtempSync(join(tmpdir(), 'examlab-vmbench-'));
      try {
        const network = await docker.createNetwork(ref, 'lan');
        const address = network.gateway.replace(/\.1$/, '.10');
        const key = generateKeyPair('bench');
        const spec = {
          name: 'vm', hostname: 'vm', image: image.ref, attachments: [{ network, address }],
          resources: { cpus: 1, memoryBytes: 512 * 1024 ** 2, pids: 1024 }, capabilities: [], devices: [], systemd: true, tmpfs: [],
          rootAuthorizedKeys: key.publicKey, boot: { mode: 'kernel' as const, kernel: image.kernel?.path as string, initrd: image.kernel?.initrd, cmdline: image.kernel?.cmdline as string },
        };
        const plan = libvirt.plan(ref, spec);
        mkdirSync(libvirt.labDir(ref), { recursive: true, mode: 0o711 });
        await createOverlay(localVmHost, plan.disks[0]?.path as string, image.ref);
        await writeSeedIso(plan.seed as string, { instanceId: plan.name, hostname: 'vm', authorizedKeys: key.publicKey, hostKey: generateKeyPair('vm'), interfaces: [{ mac: plan.interfaces[0]?.mac as string, address, prefix: 24, gateway: network.gateway }] });
        const xmlFile = join(dir, 'domain.xml');
        writeFileSync(xmlFile, domainXml(plan));
        const t = Date.now();
        await run('virsh', ['-c', app.config.libvirtUri, 'create', xmlFile]);
        const session = await retryUntil(() => SshSession.connect({ host: address, username: 'root', privateKey: key.privateKey }, 30_000), () => true, { what: 'SSH on the bare domain', timeoutMs: 300_000, intervalMs: 300 });
        bareMs.push(Date.now() - t);
        session.close();
        await run('virsh', ['-c', app.config.libvirtUri, 'destroy', plan.name]);
      } finally {
        await libvirt.destroyMachines(ref);
        await docker.destroyNetworks(ref);
        rmSync(dir, { recursive: true, force: true });
      }
    }
    const figures = {
      domainType: libvirt.acceleration.domainType,
      acceleration: libvirt.acceleration.reason,
      rounds,
      quietLabUpToSshMedianMs: median(quiet.map((r) => r.totalMs)),
      busyLabUpToSshMedianMs: median(busy.map((r) => r.totalMs)),
      quietBootToSshMedianMs: median(quiet.map((r) => r.bootMs)),
      busyBootToSshMedianMs: median(busy.map((r) => r.bootMs)),
      bareVirshCreateToSshMedianMs: median(bareMs),
      overheadMedianMs: median(quiet.map((r) => r.totalMs)) - median(bareMs),
      quiet,
      busy: busy.map(({ hog, ...r }) => ({ ...r, hogCpuShare: Number((hog.cpuSeconds / (hog.cores * hog.seconds)).toFixed(2)) })),
      bareVirshCreateToSshMs: bareMs,
    };
    mkdirSync(join(PACKAGE_ROOT, 'build/bench'), { recursive: true });
    writeFileSync(join(PACKAGE_ROOT, 'build/bench/vm.json'), `${JSON.stringify(figures, null, 2)}\n`);
    process.stdout.write(`vm bench: ${JSON.stringify(figures)}\n`);
    expect(quiet).toHaveLength(rounds);
    expect(busy).toHaveLength(rounds);
  } finally {
    app.cleanup();
  }
}, 3_600_000);
