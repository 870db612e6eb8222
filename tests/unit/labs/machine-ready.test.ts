import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { LabService } from '../../../src/labs/lab-service.js';
import { LabMachineAccess } from '../../../src/labs/access.js';
import { LabStore } from '../../../src/labs/lab-store.js';
import { ProviderRegistry, type LabRef, type MachineInstance, type MachineSpec, type NetworkProvider, type Provider } from '../../../src/providers/index.js';
import { parseScenario } from '../../../src/scenario/index.js';
import { openDatabase } from '../../../src/util/database.js';
import { createLogger } from '../../../src/util/log.js';

/**
 * A machine the grader cannot log in to: created again once when its
 * provider can, then reported with what the machine says about why. The
 * machines live on a loopback address where nothing accepts the grader.
 */

const SCENARIO = `
apiVersion: examlab/v1
id: never-ready
title: never-ready
ccp: CCP2
competencies: [{ id: C, title: c }]
duration: 10m
instructions: { fr: Rien à faire. }
machines:
  - { name: vm, provider: libvirt, image: debian-vm }
checks:
  - { id: up, title: t, machine: vm, kind: file, path: /etc/hostname }
`;

/** A VM provider whose machines never let anyone in, and say why; its lab networks are on loopback. */
class SilentVmProvider implements Provider, NetworkProvider {
  readonly name = 'libvirt' as const;
  readonly bootTimeoutMs = 60_000;
  created: string[] = [];
  recreated: string[] = [];
  constructor(private readonly dir: string) {}
  async ping() {
    return 'fake';
  }
  private instance(spec: MachineSpec): MachineInstance {
    const log = join(this.dir, `${spec.name}.console.log`);
    writeFileSync(log, `vm login: \n`, { flag: 'a' });
    return { name: spec.name, address: spec.attachments[0]?.address as string, ref: spec.name, console: { socket: join(this.dir, 'console.sock'), log } };
  }
  async createMachine(_lab: LabRef, spec: MachineSpec) {
    this.created.push(spec.name);
    return this.instance(spec);
  }
  async recreateMachine(_lab: LabRef, spec: MachineSpec) {
    this.recreated.push(spec.name);
    return this.instance(spec);
  }
  async bootFailureReport() {
    return 'ssh.service failed; its journal:\n[ 43.7 ] vm0 sshd[293]: sshd: no hostkeys available -- exiting.';
  }
  async pauseMachine() {}
  async resumeMachine() {}
  async machineState() {
    return 'running' as const;
  }
  async destroyMachines() {}
  async listLabIds() {
    return [];
  }
  async stoppedMachines() {
    return [];
  }
  async createNetwork(_lab: LabRef, name: string) {
    return { name, subnet: '127.231.5.0/24', gateway: '127.231.5.1', bridge: 'lo' };
  }
  async destroyNetworks() {}
}

describe('a machine the grader cannot log in to', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'examlab-ready-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const service = (provider: Provider) => {
    const store = new LabStore(openDatabase(':memory:'));
    const providers = new ProviderRegistry().register('libvirt', async () => provider, { networks: true });
    const labs = new LabService({
      store,
      providers,
      images: { ensure: async () => ({ ref: '/images/debian-vm/disk.qcow2', systemd: true, capabilities: [], bootable: true }), runsSystemd: async () => true },
      machines: new LabMachineAccess(providers, () => Promise.reject(new Error('no grading here'))),
      log: createLogger({ level: 'silent' }),
      sshReadyTimeoutMs: 700,
    });
    return { store, labs };
  };
  const scenario = () => ({ scenario: parseScenario(SCENARIO, join(dir, 'never-ready.yaml')), file: join(dir, 'never-ready.yaml'), text: SCENARIO });

  test('is created again once, then the lab fails with the wait, both boots, and the journal of what failed', async () => {
    const provider = new SilentVmProvider(dir);
    const { store, labs } = service(provider);
    const failure = await labs.up(scenario()).then(
      () => undefined,
      (err: Error) => err.message,
    );
    expect(provider.created).toEqual(['vm']);
    expect(provider.recreated).toEqual(['vm']);
    expect(failure).toMatch(/timed out after 700 ms waiting for the grader to log in to machine vm \(127\.231\.5\.10\) over SSH \(.+\) on its second boot/);
    expect(failure).toContain('sshd: no hostkeys available -- exiting.');
    expect(failure).toMatch(/its console \(.*vm\.console\.log\) ends with:\nvm login:\nvm login:/);
    const [lab] = store.list();
    expect(lab?.state).toBe('failed');
    expect(lab?.stateDetail).toContain('no hostkeys available');
  });

  test('is not created again when its provider cannot (containers have no boot to retry)', async () => {
    const provider = new SilentVmProvider(dir);
    const { labs } = service(Object.assign(provider, { recreateMachine: undefined }));
    await expect(labs.up(scenario())).rejects.toThrow(/timed out after 700 ms waiting for the grader to log in to machine vm[^]*no hostkeys available/);
    expect(provider.recreated).toEqual([]);
  });
});
