import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@jest/globals';
import { createTestApp, inlineScenario, scenarioHead } from '../integration/helpers.js';
import { PACKAGE_ROOT } from '../../src/daemon/config.js';
import type { DockerProvider } from '../../src/providers/docker/docker-provider.js';
import { createOverlay } from '../../src/providers/libvirt/disks.js';
import { domainXml } from '../../src/providers/libvirt/domain-xml.js';
import type { LibvirtProvider } from '../../src/providers/libvirt/libvirt-provider.js';
import { writeSeedIso } from '../../src/providers/libvirt/seed.js';
import { generateKeyPair, SshSession } from '../../src/remote/ssh-client.js';
import { newId } from '../../src/util/ids.js';
import { retryUntil } from '../../src/util/retry.js';

const run = promisify(execFile);

/**
 * A one-VM lab, side by side in one run: `lab up` until SSH answers, against
 * a bare `virsh create` of the very same domain XML (its overlay and seed
 * made beforehand, untimed) until SSH answers. The difference is what
 * examlab adds: network, overlay, seed, domain definition, bookkeeping.
 */
const SCENARIO = `${scenarioHead('vm-bench', 'CCP2')}machines:
  - { name: vm, provider: libvirt, image: debian-vm, resources: { memory: 512M } }
checks:
  - { id: up, title: t, machine: vm, kind: file, path: /etc/hostname }
`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

test('one-VM lab: lab up to SSH-ready vs bare virsh create of the same domain, same run', async () => {
  const app = await createTestApp();
  const rounds = 3;
  const libvirt = (await app.providers.get('libvirt')) as LibvirtProvider;
  const docker = (await app.providers.get('docker')) as DockerProvider;
  const image = await app.images.ensure('debian-vm');
  const examlabMs: number[] = [];
  const bareMs: number[] = [];
  try {
    for (let i = 0; i < rounds; i++) {
      // examlab: lab up (no setup, no candidate account), which returns once SSH answers.
      const started = Date.now();
      const lab = await app.labs.up(inlineScenario(SCENARIO, 'vm-bench'));
      examlabMs.push(Date.now() - started);
      await app.labs.destroy(lab.id);

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
        await createOverlay(plan.disks[0]?.path as string, image.ref);
        await writeSeedIso(plan.seed, { instanceId: plan.name, hostname: 'vm', authorizedKeys: key.publicKey, hostKey: generateKeyPair('vm'), interfaces: [{ mac: plan.interfaces[0]?.mac as string, address, prefix: 24, gateway: network.gateway }] });
        const xmlFile = join(dir, 'domain.xml');
        writeFileSync(xmlFile, domainXml(plan));
        const t = Date.now();
        await run('virsh', ['-c', app.config.libvirtUri, 'create', xmlFile]);
        const session = await retryUntil(() => SshSession.connect({ host: address, username: 'root', privateKey: key.privateKey }, 5000), () => true, { what: 'SSH on the bare domain', timeoutMs: 300_000, intervalMs: 300 });
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
      labUpToSshMedianMs: median(examlabMs),
      bareVirshCreateToSshMedianMs: median(bareMs),
      overheadMedianMs: median(examlabMs) - median(bareMs),
      labUpToSshMs: examlabMs,
      bareVirshCreateToSshMs: bareMs,
    };
    mkdirSync(join(PACKAGE_ROOT, 'build/bench'), { recursive: true });
    writeFileSync(join(PACKAGE_ROOT, 'build/bench/vm.json'), `${JSON.stringify(figures, null, 2)}\n`);
    process.stdout.write(`vm bench: ${JSON.stringify(figures)}\n`);
    expect(examlabMs).toHaveLength(rounds);
  } finally {
    app.cleanup();
  }
}, 1_800_000);
