import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { availableParallelism, networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createApp, type App } from '../../src/daemon/app.js';
import { expect } from '@jest/globals';
import { PACKAGE_ROOT, loadConfig } from '../../src/daemon/config.js';
import { proveScenario, type ScenarioProof } from '../../src/labs/scenario-test.js';
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

/**
 * A root shell on a container of the lab, as the candidate (root there)
 * would have one: through the engine, running the machine's own /bin/sh.
 */
export async function rootShell(
  app: App,
  labId: string,
  machine: string,
  script: string,
  timeoutMs = 30_000,
  shell = '/bin/sh',
): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const provider = await app.providers.get('docker');
  if (!provider.exec) throw new Error('the docker provider has no exec');
  const run = await provider.exec({ labId }, machine, { argv: [shell, '-s'], stdin: script, timeoutMs, maxOutputBytes: 1 << 20 });
  return { exitCode: run.exitCode, stdout: run.stdout.toString('utf8'), stderr: run.stderr.toString('utf8') };
}

/**
 * Every address of this host a lab machine could aim at: each interface's
 * (the lab's own gateway, other labs' gateways, docker0, the host's network
 * addresses), IPv4 and global IPv6. Loopback aside: in a lab, 127.0.0.1 is
 * the machine itself.
 */
export function hostAddresses(): string[] {
  return Object.values(networkInterfaces())
    .flat()
    .filter((a) => a !== undefined && !a.internal && !a.address.startsWith('fe80:'))
    .map((a) => (a as { address: string }).address);
}

/** What a TCP connection attempt from a lab machine met. */
export type ConnectOutcome = 'reached' | 'refused' | 'silent' | 'failed';

/**
 * A bash script (for `rootShell(…, 'bash')`) that tries every target at once,
 * each for at most `seconds`, and prints one line per target:
 * `<outcome> <host> <port>`. "refused" means the host's TCP stack answered
 * (the packet got in); "silent" that nothing answered in time (dropped);
 * "failed" any other error (no route, address family off).
 */
export function connectScript(targets: { host: string; port: number }[], seconds = 3): string {
  return `probe() {
  out=$(timeout ${seconds} bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$1" "$2" 2>&1); rc=$?
  if [ $rc = 0 ]; then echo "reached $1 $2"
  elif [ $rc = 124 ]; then echo "silent $1 $2"
  elif printf %s "$out" | grep -qi refused; then echo "refused $1 $2"
  else echo "failed $1 $2"; fi
}
${targets.map((t) => `probe '${t.host}' ${t.port} &`).join('\n')}
wait
`;
}

/** The outcome per `host port`, from connectScript's output. */
export function connectOutcomes(stdout: string): Map<string, ConnectOutcome> {
  const lines = stdout.split('\n').filter((l) => /^(reached|refused|silent|failed) /.test(l));
  return new Map(lines.map((l) => [l.slice(l.indexOf(' ') + 1), l.slice(0, l.indexOf(' ')) as ConnectOutcome]));
}

/** Whether this host, from its own network, gets a TCP connection to `host`:`port` within `ms`. */
export function hostConnects(host: string, port: number, ms = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port, timeout: ms }, () => {
      socket.destroy();
      resolve(true);
    });
    socket.on('error', () => resolve(false));
    socket.on('timeout', () => {
      socket.destroy();
      resolve(false);
    });
  });
}

/**
 * A shipped scenario proves itself on the real engine: the faults fail every
 * check that must fail, the solution passes them all, nothing is left behind.
 */
export async function expectScenarioProves(name: string): Promise<ScenarioProof> {
  const app = await createTestApp();
  try {
    const loaded = await app.loadScenario(join(PACKAGE_ROOT, 'scenarios', `${name}.yaml`));
    const proof = await proveScenario(app.labs, loaded);
    for (const report of proof.variants) {
      expect({ draw: report.draw, problems: report.problems }).toEqual({ draw: report.draw, problems: [] });
      expect(report.broken?.score.percent).toBeLessThan(10);
      expect(report.solved?.score.percent).toBe(100);
      expect(report.broken?.checks.filter((c) => c.baseline === 'fail').every((c) => c.status !== 'pass')).toBe(true);
      expect(await leftovers(app, report.labId as string)).toEqual({ containers: 0, networks: 0, volumes: 0 });
    }
    expect(proof.ok).toBe(true);
    // Every option of every pool was proven.
    for (const pool of loaded.scenario.faultPools) expect(new Set(proof.variants.map((v) => v.draw[pool.id]))).toEqual(new Set(pool.options.map((o) => o.id)));
    return proof;
  } finally {
    app.cleanup();
  }
}

/** What a CPU hog took while it ran: `cpuSeconds` of the `cores` × `seconds` the host had. */
export interface CpuHogReport {
  cores: number;
  seconds: number;
  cpuSeconds: number;
  /** Share of the host's CPU time that was busy meanwhile (the hog and everything else), from /proc/stat. */
  hostBusy: number;
}

/** The host's CPU time so far, busy and in all, from /proc/stat's first line. */
export function cpuTimes(): { busy: number; total: number } {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}

/**
 * Keeps every core of this host busy: one busy loop per core in a container
 * of the base image, without network. The container is gone after
 * `lifetimeSeconds` even if this process dies first (its PID 1 is `timeout`).
 */
export async function startCpuHog(app: App, lifetimeSeconds: number): Promise<{ stop(): Promise<CpuHogReport> }> {
  const { docker } = (await app.providers.get('docker')) as DockerProvider;
  const image = { tag: (await app.images.ensure('base')).ref };
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
  const before = cpuTimes();
  let stopped: Promise<CpuHogReport> | undefined;
  return {
    stop() {
      stopped ??= (async () => {
        const stats = (await container.stats({ stream: false })) as { cpu_stats: { cpu_usage: { total_usage: number } } };
        const after = cpuTimes();
        await container.remove({ force: true }).catch(() => undefined);
        const hostBusy = (after.busy - before.busy) / Math.max(1, after.total - before.total);
        return { cores, seconds: (Date.now() - started) / 1000, cpuSeconds: stats.cpu_stats.cpu_usage.total_usage / 1e9, hostBusy };
      })();
      return stopped;
    },
  };
}
