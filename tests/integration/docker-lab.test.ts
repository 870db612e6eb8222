import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import Dockerode from 'dockerode';
import { createTestApp, inlineScenario, leftovers, scenarioHead } from './helpers.js';
import { withSession } from '../../src/remote/ssh-client.js';
import { requireTarget } from '../../src/labs/access.js';
import { StepError } from '../../src/labs/steps.js';
import type { DockerProvider } from '../../src/providers/docker/docker-provider.js';

const docker = new Dockerode();

const lab = (extra = '', setup = '') => `${scenarioHead('tiny')}machines:
  - name: box
    image: systemd
    login: { user: technicien }
    resources: { memory: 256M, pids: 300 }
${extra}
setup:
  - machine: box
    run: echo ready > /etc/ready
${setup}
checks:
  - { id: ready, title: t, machine: box, kind: file, path: /etc/ready }
`;

/** Runs a command in a lab machine as root over the grader's SSH. */
async function onMachine(app: Awaited<ReturnType<typeof createTestApp>>, labId: string, machine: string, command: string) {
  return withSession(requireTarget(app.stores.labs.get(labId), machine), 10_000, (s) => s.exec(command, { timeoutMs: 20_000 }));
}

describe('Docker labs', () => {
  let app: Awaited<ReturnType<typeof createTestApp>>;
  let a: string;

  // What a lab can reach, see and change from inside, next to another lab: isolation.test.ts.
  beforeAll(async () => {
    app = await createTestApp();
    a = (await app.labs.up(inlineScenario(lab()))).id;
  }, 240_000);

  afterAll(async () => {
    if (a) await app.labs.destroy(a);
    app?.cleanup();
  }, 120_000);

  test('a lab is ready, labelled, and graded over SSH', async () => {
    const record = app.stores.labs.get(a);
    expect(record.state).toBe('ready');
    expect(app.stores.labs.events(a).map((e) => e.to)).toEqual(['requested', 'provisioning', 'ready']);
    const container = await docker.getContainer(`exl-${a}-box`).inspect();
    expect(container.Config.Labels).toMatchObject({ 'examlab.lab': a, 'examlab.machine': 'box', 'examlab.managed': 'true' });
    const run = await app.labs.grade(a);
    expect(run.results.map((r) => r.status)).toEqual(['pass']);
  });

  test('containers are unprivileged, capability-reduced, limited, without the Docker socket', async () => {
    const info = await docker.getContainer(`exl-${a}-box`).inspect();
    expect(info.HostConfig.Privileged).toBe(false);
    expect(info.HostConfig.CapDrop).toEqual(['ALL']);
    expect(info.HostConfig.CapAdd).not.toContain('SYS_ADMIN');
    expect(info.HostConfig.Memory).toBe(256 * 1024 * 1024);
    expect(info.HostConfig.PidsLimit).toBe(300);
    const inside = await onMachine(app, a, 'box', 'ls /var/run/docker.sock 2>&1; grep CapEff /proc/1/status; mount -t tmpfs none /mnt 2>&1; echo rc=$?');
    expect(inside.stdout).toMatch(/No such file/);
    expect(inside.stdout).not.toMatch(/CapEff:\s*0000003fffffffff/);
    expect(inside.stdout).toMatch(/rc=(?!0)\d+/); // no CAP_SYS_ADMIN: no mounts, no cgroup release_agent escape
  });

  test('a unit whose last process outlives its main one stops at once, not at its 90 s timeout (no release agent in a container)', async () => {
    const run = await onMachine(app, a, 'box', 'systemd-run --wait -p Type=oneshot -p TimeoutStopSec=60s /bin/sh -c "sleep 300 & exit 0"; echo "exit=$?"');
    // Without the cgroup watch, systemd waits for the timeout and the unit fails with result "timeout".
    expect(`${run.stdout}${run.stderr}`).toContain('Finished with result: success');
    expect(run.stdout).toContain('exit=0');
  }, 120_000);

  test('the candidate logs in with their own key; the grader\'s private key is nowhere in the lab', async () => {
    const record = app.stores.labs.get(a);
    const address = record.topology?.machines[0]?.address as string;
    const whoami = await withSession({ host: address, username: 'technicien', privateKey: record.secrets.candidatePrivateKey }, 10_000, (s) =>
      s.exec('id -un', { timeoutMs: 10_000 }),
    );
    expect(whoami.stdout.trim()).toBe('technicien');
    const keyLine = record.secrets.graderPrivateKey.split('\n')[2] as string;
    const search = await onMachine(app, a, 'box', `grep -rlF '${keyLine}' / --exclude-dir=proc --exclude-dir=sys 2>/dev/null; echo searched`);
    expect(search.stdout.trim()).toBe('searched');
    const authorized = await onMachine(app, a, 'box', 'cat /root/.ssh/authorized_keys');
    expect(authorized.stdout.trim()).toBe(record.secrets.graderPublicKey);
  }, 60_000);

  test('a dead machine makes its checks error, never fail', async () => {
    const dead = (await app.labs.up(inlineScenario(lab()))).id;
    try {
      await docker.getContainer(`exl-${dead}-box`).kill();
      const run = await app.labs.grade(dead);
      expect(run.results[0]?.status).toBe('error');
      expect(run.results[0]?.message).toMatch(/machine box could not be graded/);
      expect(run.score?.complete).toBe(false);
    } finally {
      await app.labs.destroy(dead);
    }
    expect(await leftovers(app, dead)).toEqual({ containers: 0, networks: 0, volumes: 0 });
  }, 120_000);

  test('a failing setup step fails the lab with its name and output, and leaves nothing', async () => {
    const broken = inlineScenario(lab('', '  - machine: box\n    title: broken step\n    run: |\n      echo about to fail\n      false\n      echo never'));
    const record = app.labs.create(broken);
    await expect(app.labs.provision(record.id)).rejects.toThrow(StepError);
    const failed = app.stores.labs.get(record.id);
    expect(failed.state).toBe('failed');
    expect(failed.stateDetail).toMatch(/^setup\[1\] on box exited 1/);
    expect(await leftovers(app, record.id)).toEqual({ containers: 0, networks: 0, volumes: 0 });
    await app.labs.destroy(record.id);
    expect(app.stores.labs.get(record.id).state).toBe('destroyed');
  }, 120_000);

  test('an interrupted provisioning is cleaned up by lab down', async () => {
    // What a killed process leaves: a network and a container, the lab still "provisioning".
    const record = app.labs.create(inlineScenario(lab()));
    app.stores.labs.transition(record.id, 'provisioning');
    const provider = await app.providers.get('docker');
    const network = await (provider as unknown as { createNetwork(l: object, n: string): Promise<{ bridge: string }> }).createNetwork({ labId: record.id }, 'lan');
    const image = (await app.images.catalog()).get('systemd').tag;
    await docker.createContainer({ name: `exl-${record.id}-box`, Image: image, Labels: { 'examlab.lab': record.id, 'examlab.managed': 'true' } });
    expect(await leftovers(app, record.id)).toEqual({ containers: 1, networks: 1, volumes: 0 });
    expect(network.bridge).toMatch(/^exl[0-9a-f]{12}$/);
    await app.labs.destroy(record.id);
    expect(await leftovers(app, record.id)).toEqual({ containers: 0, networks: 0, volumes: 0 });
    // Destroying twice is fine.
    await app.labs.destroy(record.id);
  }, 120_000);

  test('a subnet another process takes between the pick and the creation is skipped, not an error', async () => {
    const provider = (await app.providers.get('docker')) as DockerProvider;
    // Another process's network, on the subnet this one is about to pick, that it has not seen yet.
    const listed = await provider.docker.listNetworks();
    const inUse = new Set(listed.flatMap((n) => (n.IPAM?.Config ?? []).map((c) => c.Subnet)));
    let third = 0;
    while (inUse.has(`10.231.${third}.0/24`)) third++;
    const rival = await docker.createNetwork({ Name: `examlab-test-rival-${third}`, Internal: true, IPAM: { Config: [{ Subnet: `10.231.${third}.0/24` }] } });
    const list = provider.docker.listNetworks.bind(provider.docker);
    let hidden = false;
    provider.docker.listNetworks = (async (...args: Parameters<Dockerode['listNetworks']>) => {
      const all = await list(...args);
      if (hidden) return all;
      hidden = true;
      return all.filter((n) => n.Id !== rival.id);
    }) as Dockerode['listNetworks'];
    const labId = `race${Date.now().toString(36)}`;
    try {
      const network = await provider.createNetwork({ labId }, 'lan');
      expect(hidden).toBe(true);
      expect(network.subnet).not.toBe(`10.231.${third}.0/24`);
    } finally {
      provider.docker.listNetworks = list;
      await provider.destroyNetworks({ labId });
      await rival.remove();
    }
  }, 60_000);
});
