import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { PACKAGE_ROOT, loadConfig } from '../../src/daemon/config.js';
import type { RunRecord } from '../../src/labs/lab-store.js';
import type { ScenarioProof } from '../../src/labs/scenario-test.js';
import { createTestApp, expectScenarioProves, leftovers, rootShell } from './helpers.js';

/**
 * deploy-workstation on the real engines: a container serving PXE and a
 * blank VM (TCG here) that deploys itself over the network once the
 * server is repaired. Two labs side by side: the scenario's proof, and a
 * candidate who tries to make the server answer in the PC's place.
 */

type App = Awaited<ReturnType<typeof createTestApp>>;

const config = loadConfig();

/** Domains and files of a lab still on the libvirt host. */
function vmLeftovers(labId: string): { domains: string[]; files: boolean } {
  const domains = execFileSync('virsh', ['-c', config.libvirtUri, 'list', '--all', '--name'], { encoding: 'utf8' })
    .split('\n')
    .filter((n) => n.startsWith(`exl-${labId}-`));
  return { domains, files: existsSync(join(config.vmDir, 'labs', labId)) };
}

interface CheatFlow {
  addAddress: { exitCode: number; stderr: string };
  run: RunRecord;
  leftovers: ReturnType<typeof vmLeftovers>;
}

/**
 * The broken lab, and a candidate (root on the server) who skips the
 * deployment: takes the PC's address, answers on its SSH port, writes into
 * the server's logs what a deployment would have left there.
 */
async function cheatFlow(app: App): Promise<CheatFlow> {
  const loaded = await app.loadScenario(join(PACKAGE_ROOT, 'scenarios', 'deploy-workstation.yaml'));
  const lab = await app.labs.up(loaded);
  try {
    const pc = app.stores.labs.get(lab.id).topology?.machines.find((m) => m.name === 'pc')?.address as string;
    const add = await rootShell(app, lab.id, 'srv', `ip addr add ${pc}/24 dev eth0`);
    await rootShell(app, lab.id, 'srv', [
      `logger -t in.tftpd "RRQ from ${pc} filename menu.ipxe"`,
      `for f in /boot/deploy.img /masters/poste-debian12.img.zst; do echo "${pc} - - [01/Jan/2025:00:00:00 +0000] \\"GET $f HTTP/1.1\\" 200 1 \\"-\\" \\"iPXE\\"" >> /var/log/nginx/access.log; done`,
    ].join('\n'));
    const run = await app.labs.grade(lab.id);
    await app.labs.destroy(lab.id);
    return { addAddress: { exitCode: add.exitCode, stderr: add.stderr }, run, leftovers: vmLeftovers(lab.id) };
  } catch (err) {
    await app.labs.destroy(lab.id).catch(() => undefined);
    throw err;
  }
}

describe('deploy-workstation (a container serving PXE, a blank VM)', () => {
  let app: App;
  let proof: Promise<ScenarioProof>;
  let cheat: Promise<CheatFlow>;

  beforeAll(async () => {
    app = await createTestApp();
    await (await app.providers.get('libvirt')).ping();
    proof = expectScenarioProves('deploy-workstation');
    cheat = cheatFlow(app);
    for (const p of [proof, cheat]) p.catch(() => undefined);
  }, 60_000);

  afterAll(() => app?.cleanup());

  test('the faults fail every check, the solution passes them all: the blank VM deploys itself over PXE and is graded through its agent', async () => {
    const { variants } = await proof;
    const [report] = variants;
    const broken = Object.fromEntries((report?.broken?.checks ?? []).map((c) => [c.id, c.status]));
    // Never deployed while broken: its SSH port is closed, so what is read on it is skipped, not an error.
    expect(broken).toMatchObject({
      'poste-ssh': 'fail',
      'compte-admin': 'skipped',
      'demarre-sur-disque': 'skipped',
      'master-deploye': 'skipped',
      'nom-du-poste': 'skipped',
      'adresse-reservee': 'skipped',
      'menu-servi': 'fail',
    });
    expect(vmLeftovers(report?.labId as string)).toEqual({ domains: [], files: false });
  }, 1_800_000);

  test('a candidate who makes the server answer in the PC\'s place cannot take its address, and earns only what the server\'s own logs say', async () => {
    const flow = await cheat;
    expect(flow.addAddress.exitCode).not.toBe(0);
    expect(flow.addAddress.stderr).toMatch(/Operation not permitted/);
    const status = Object.fromEntries(flow.run.results.map((r) => [r.checkId, r.status]));
    expect(status).toMatchObject({ 'poste-ssh': 'fail', 'master-deploye': 'skipped', 'nom-du-poste': 'skipped' });
    // The three points of the server's logs are the candidate's to write; the pass mark is far above them.
    expect(flow.run.score?.percent).toBeLessThanOrEqual(20);
    expect(flow.leftovers).toEqual({ domains: [], files: false });
    expect(await leftovers(app, flow.run.labId)).toEqual({ containers: 0, networks: 0, volumes: 0 });
  }, 1_800_000);
});
