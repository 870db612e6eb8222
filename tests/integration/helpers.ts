import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, type App } from '../../src/daemon/app.js';
import { loadConfig } from '../../src/daemon/config.js';
import { createLogger } from '../../src/util/log.js';
import type { DockerProvider } from '../../src/providers/docker/docker-provider.js';
import { parseScenario, type LoadedScenario } from '../../src/scenario/index.js';

/**
 * An App wired exactly as in production, on the real engines, with a private
 * data directory. A test that cannot reach its engine fails (ping throws):
 * it never skips into a green run.
 */
export async function createTestApp(): Promise<App & { cleanup(): void }> {
  const dataDir = mkdtempSync(join(tmpdir(), 'examlab-test-'));
  const app = createApp(loadConfig({ dataDir }), createLogger({ level: process.env.EXAMLAB_TEST_LOG ?? 'silent' }));
  await (await app.providers.get('docker')).ping();
  return Object.assign(app, {
    cleanup() {
      app.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  });
}

/** The top of a test scenario: everything but machines, steps and checks. */
export function scenarioHead(id: string, ccp: 'CCP1' | 'CCP2' | 'CCP3' = 'CCP1'): string {
  return `
apiVersion: examlab/v1
id: ${id}
title: ${id}
ccp: ${ccp}
competencies: [{ id: C, title: c }]
duration: 10m
instructions: { fr: Rien à faire. }
`;
}

/** A scenario from inline YAML, validated like a file (written to a temp folder for uploads). */
export function inlineScenario(yaml: string, name = 'inline'): LoadedScenario {
  const dir = mkdtempSync(join(tmpdir(), 'examlab-scenario-'));
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, yaml);
  return { scenario: parseScenario(yaml, file), file, text: yaml };
}

/** Containers and networks that still carry a lab's label. */
export async function leftovers(app: App, labId: string): Promise<{ containers: number; networks: number; volumes: number }> {
  const docker = (await import('dockerode')).default;
  const client = new docker();
  const filter = { label: [`examlab.lab=${labId}`] };
  const [containers, networks, volumes] = await Promise.all([
    client.listContainers({ all: true, filters: filter }),
    client.listNetworks({ filters: filter }),
    client.listVolumes({ filters: filter }),
  ]);
  return { containers: containers.length, networks: networks.length, volumes: volumes.Volumes?.length ?? 0 };
}

/** What a CPU hog took while it ran: `cpuSeconds` of the `cores` × `seconds` the host had. */
export interface CpuHogReport {
  cores: number;
  seconds: number;
  cpuSeconds: number;
}

/**
 * Keeps every core of this host busy: one busy loop per core in a container
 * of the base image, without network. The container is gone after
 * `lifetimeSeconds` even if this process dies first (its PID 1 is `timeout`).
 */
export async function startCpuHog(app: App, lifetimeSeconds: number): Promise<{ stop(): Promise<CpuHogReport> }> {
  const { docker } = (await app.providers.get('docker')) as DockerProvider;
  const image = await (await app.dockerImages()).ensure('base');
  const cores = availableParallelism();
  const container = await docker.createContainer({
    Image: image.tag,
    Entrypoint: ['timeout', String(lifetimeSeconds), 'sh', '-c', `for i in $(seq ${cores}); do (while :; do :; done) & done; wait`],
    Cmd: [],
    Labels: { 'examlab.test': 'cpu-hog' },
    HostConfig: { AutoRemove: true, NetworkMode: 'none' },
  });
  await container.start();
  const started = Date.now();
  let stopped: Promise<CpuHogReport> | undefined;
  return {
    stop() {
      stopped ??= (async () => {
        const stats = (await container.stats({ stream: false })) as { cpu_stats: { cpu_usage: { total_usage: number } } };
        await container.remove({ force: true }).catch(() => undefined);
        return { cores, seconds: (Date.now() - started) / 1000, cpuSeconds: stats.cpu_stats.cpu_usage.total_usage / 1e9 };
      })();
      return stopped;
    },
  };
}
