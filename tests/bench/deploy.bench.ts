import { execFileSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { Socket } from 'node:net';
import { join } from 'node:path';
import { expect, test } from '@jest/globals';
import { parseDocument } from 'yaml';
import { PACKAGE_ROOT } from '../../src/daemon/config.js';
import { parseScenario, type LoadedScenario } from '../../src/scenario/index.js';
import { createTestApp } from '../integration/helpers.js';

/**
 * deploy-workstation, in rounds of:
 * - provisioning: `lab up` (the deployment server's container, the blank
 *   VM defined, setup, faults, the VM powered on);
 * - the PXE deployment under TCG, from power on to SSH: the VM is powered
 *   off, the server repaired (the scenario's solution without its last
 *   step, which waits for the deployment), then the VM powered on and timed
 *   until its SSH port answers with a banner; on the way, when its serial
 *   console shows the deployment environment started (DHCP, TFTP, iPXE
 *   menu, kernel and initramfs over HTTP, their boot) and the deployment
 *   done (master written, post-installation run), then the grade.
 * Figures: build/bench/deploy.json.
 */
const FILE = join(PACKAGE_ROOT, 'scenarios', 'deploy-workstation.yaml');
const ROUNDS = Number(process.env.ROUNDS ?? 3);

/** The scenario with its solution's last step (the wait for the deployment) left out. */
function withoutTheWait(): LoadedScenario {
  const doc = parseDocument(readFileSync(FILE, 'utf8'));
  const solution = doc.get('solution') as { items: unknown[] };
  solution.items.pop();
  const text = doc.toString();
  return { scenario: parseScenario(text, FILE), file: FILE, text };
}

/** Whether an SSH server answers at `host`: the connection opens and its banner comes. */
function sshBanner(host: string, timeoutMs = 3000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = new Socket();
    const done = (ok: boolean) => (socket.destroy(), resolve(ok));
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('data', (chunk: Buffer) => done(chunk.toString().startsWith('SSH-')));
    socket.once('error', () => done(false));
    socket.connect(22, host);
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const seconds = (ms: number) => Math.round(ms / 100) / 10;

test('deploy-workstation: provisioning, and the PXE deployment from power on to SSH under TCG', async () => {
  const app = await createTestApp();
  const loaded = withoutTheWait();
  await app.images.ensure('deploy-server');
  const rounds: { provisionS: number; envStartedS: number; deployedS: number; sshS: number; gradePercent: number; loadavg1: number }[] = [];
  try {
    for (let i = 0; i < ROUNDS; i++) {
      const started = Date.now();
      const lab = await app.labs.up(loaded);
      const provisionS = seconds(Date.now() - started);
      try {
        const libvirt = await app.providers.get('libvirt');
        const ref = { labId: lab.id };
        const pc = app.stores.labs.get(lab.id).topology?.machines.find((m) => m.name === 'pc');
        const consoleLog = pc?.console?.log as string;
        // Powered off while the server is repaired, so the timing starts at power on, not amid a retry.
        const domain = `exl-${lab.id}-pc`;
        execFileSync('virsh', ['-c', app.config.libvirtUri, 'destroy', domain]);
        await app.labs.applySolution(lab.id);
        const seen = readFileSync(consoleLog, 'utf8').length;
        const on = Date.now();
        await libvirt.resumeMachine(ref, 'pc');
        let envStarted = 0;
        let deployed = 0;
        for (;;) {
          const output = readFileSync(consoleLog, 'utf8').slice(seen);
          if (!envStarted && output.includes('deploiement: carte')) envStarted = Date.now();
          if (!deployed && output.includes('redémarrage sur le disque')) deployed = Date.now();
          if (deployed && (await sshBanner(pc?.address as string))) break;
          if (Date.now() - on > 20 * 60_000) throw new Error(`no SSH 20 minutes after power on; the console shows:\n${output.slice(-2000)}`);
          await new Promise((r) => setTimeout(r, 500));
        }
        const ssh = Date.now();
        const run = await app.labs.grade(lab.id);
        rounds.push({
          provisionS,
          envStartedS: seconds(envStarted - on),
          deployedS: seconds(deployed - on),
          sshS: seconds(ssh - on),
          gradePercent: run.score?.percent ?? 0,
          loadavg1: Math.round((loadavg()[0] as number) * 10) / 10,
        });
      } finally {
        await app.labs.destroy(lab.id);
      }
    }
  } finally {
    app.cleanup();
  }
  const figures = {
    rounds,
    provisionMedianS: median(rounds.map((r) => r.provisionS)),
    envStartedMedianS: median(rounds.map((r) => r.envStartedS)),
    deployedMedianS: median(rounds.map((r) => r.deployedS)),
    sshMedianS: median(rounds.map((r) => r.sshS)),
  };
  mkdirSync(join(PACKAGE_ROOT, 'build/bench'), { recursive: true });
  writeFileSync(join(PACKAGE_ROOT, 'build/bench/deploy.json'), `${JSON.stringify(figures, null, 2)}\n`);
  process.stdout.write(`deploy bench: ${JSON.stringify(figures)}\n`);
  expect(rounds.map((r) => r.gradePercent)).toEqual(rounds.map(() => 100));
}, 3_600_000);
