import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import Dockerode from 'dockerode';
import { createApp, type App } from '../../src/daemon/app.js';
import { loadConfig } from '../../src/daemon/config.js';
import { SshSession } from '../../src/remote/index.js';
import { createLogger } from '../../src/util/log.js';
import { startLabHosts, type LabHost, type LabHosts } from '../hosts/lab-hosts.js';
import { inlineScenario, scenarioHead } from './helpers.js';

const local = new Dockerode();

const scenario = `${scenarioHead('remote')}machines:
  - name: pc
    image: systemd
    login: { user: technicien }
setup:
  - machine: pc
    run: echo ready > /etc/ready
faults:
  - id: gone
    title: t
    machine: pc
    run: rm /etc/ready
checks:
  - { id: ready, title: t, machine: pc, kind: file, path: /etc/ready }
  - { id: sshd, title: t, machine: pc, kind: service, name: ssh }
solution:
  - machine: pc
    run: echo ready > /etc/ready
`;

type Transport = 'tls' | 'ssh';

function engineOf(host: LabHost, via: Transport) {
  return via === 'tls'
    ? { url: host.docker.tcp, tls: { ca: join(host.docker.certDir, 'ca.pem'), cert: join(host.docker.certDir, 'cert.pem'), key: join(host.docker.certDir, 'key.pem') } }
    : { url: host.docker.ssh, sshKey: host.docker.sshPrivateKeyFile, sshHostKey: host.docker.sshHostKey };
}

/**
 * Labs on a Docker engine of another host, reached over TLS and over SSH
 * (here, engines in containers of this host, on a network of their own):
 * the image is shipped from this host's engine, the lab built, broken,
 * graded through the engine's exec API and repaired; the candidate's SSH
 * reaches the machine through the engine (the daemon cannot route to the
 * lab's network there); the host's firewall keeps labs off that host.
 */
describe('labs on a Docker engine of another host', () => {
  let hosts: LabHosts;
  let host: LabHost;
  const dirs: string[] = [];

  beforeAll(async () => {
    hosts = await startLabHosts(1, { name: 'remote-engine' });
    host = hosts.hosts[0] as LabHost;
  }, 600_000);

  afterAll(async () => {
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    await hosts?.close();
  }, 180_000);

  function appFor(via: Transport): App {
    const dataDir = mkdtempSync(join(tmpdir(), 'examlab-remote-'));
    dirs.push(dataDir);
    return createApp(loadConfig({ dataDir, dockerEngine: engineOf(host, via) }), createLogger({ level: process.env.EXAMLAB_TEST_LOG ?? 'silent' }));
  }

  for (const via of ['tls', 'ssh'] as const) {
    test(`over ${via.toUpperCase()}: built there, broken, graded, repaired and removed; the candidate's SSH goes through the engine`, async () => {
      const app = appFor(via);
      try {
        const started = Date.now();
        const lab = await app.labs.up(inlineScenario(scenario));
        process.stdout.write(`remote engine over ${via}: lab ready in ${(Date.now() - started) / 1000} s\n`);
        expect(lab.state).toBe('ready');
        // The machine is on that host's engine, none on this host's.
        const remote = host.dockerode(via);
        expect((await remote.listContainers({ filters: { label: [`examlab.lab=${lab.id}`] } })).map((c) => c.Names[0])).toEqual([`/exl-${lab.id}-pc`]);
        expect(await local.listContainers({ all: true, filters: { label: [`examlab.lab=${lab.id}`] } })).toEqual([]);

        const broken = await app.labs.grade(lab.id);
        expect(broken.results.map((r) => `${r.checkId}:${r.status}`)).toEqual(['ready:fail', 'sshd:pass']);
        await app.labs.applySolution(lab.id);
        const fixed = await app.labs.grade(lab.id);
        expect(fixed.results.map((r) => `${r.checkId}:${r.status}`)).toEqual(['ready:pass', 'sshd:pass']);

        // The candidate's login: their key, through the engine, to the machine's own sshd.
        const record = app.stores.labs.get(lab.id);
        const pc = record.topology?.machines.find((m) => m.name === 'pc');
        const session = await SshSession.connect({ host: pc?.address as string, username: 'technicien', privateKey: record.secrets.candidatePrivateKey, hostKey: pc?.hostKey, tunnel: app.labs.sshTunnel(record, 'pc') }, 30_000);
        try {
          expect((await session.exec('id -un; hostname', { timeoutMs: 20_000 })).stdout).toBe('technicien\npc\n');
        } finally {
          session.close();
        }

        await app.labs.destroy(lab.id);
        expect(await remote.listContainers({ all: true, filters: { label: [`examlab.lab=${lab.id}`] } })).toEqual([]);
        expect(await remote.listNetworks({ filters: { label: [`examlab.lab=${lab.id}`] } })).toEqual([]);
      } finally {
        app.close();
      }
    }, 600_000);
  }

  test('the image was shipped once, by its tag, and the host keeps labs off itself', async () => {
    const remote = host.dockerode('tls');
    const systemd = (await local.listImages({ filters: { reference: ['examlab/systemd'] } })).flatMap((i) => i.RepoTags ?? []);
    const shipped = (await remote.listImages()).flatMap((i) => i.RepoTags ?? []);
    expect(shipped.filter((t) => t.startsWith('examlab/systemd:')).every((t) => systemd.includes(t))).toBe(true);
    expect(shipped.some((t) => t.startsWith('examlab/systemd:'))).toBe(true);
    // The isolation rule, in the host's own firewall (the host here is a container: read it there).
    const rules = execFileSync('docker', ['exec', host.name, 'iptables', '-w', '-S', 'EXAMLAB-INPUT']).toString();
    expect(rules).toMatch(/-A EXAMLAB-INPUT -j DROP/);
    expect(execFileSync('docker', ['exec', host.name, 'iptables', '-w', '-S', 'INPUT']).toString()).toMatch(/-A INPUT -i exl\+ -j EXAMLAB-INPUT/);
    // Nothing of examlab runs on the host besides labs: the firewall's one-shot containers are gone.
    expect(await remote.listContainers({ all: true, filters: { label: ['examlab.role=host-firewall'] } })).toEqual([]);
  });
});
