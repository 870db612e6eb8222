import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabStore } from '../../../src/labs/lab-store.js';
import type { LabNeeds } from '../../../src/labs/capacity.js';
import { hostsCapacity, Placement, type PlacementNeeds } from '../../../src/labs/placement.js';
import { ProviderRegistry } from '../../../src/providers/registry.js';
import type { HostCapacity, Provider } from '../../../src/providers/types.js';
import { openDatabase, type Db } from '../../../src/util/database.js';

/** An engine that answers, or not, and says what its host has when given `capacity`. */
const engine = (answers: () => boolean, capacity?: HostCapacity) => {
  const answer = async <T>(value: T) => (answers() ? value : Promise.reject(new Error('connection refused')));
  return { name: 'docker', ping: () => answer('fake'), ...(capacity ? { capacity: () => answer(capacity) } : {}) } as unknown as Provider;
};
const MIB = 1024 ** 2;
const GIB = 1024 ** 3;
/** One container lab (64 MiB of memory in the capacity model, one network). */
const CONTAINER_LAB: LabNeeds = { containers: 1, systemdContainers: 0, vms: 0, memoryBytes: 64 * MIB, networks: 1, diskBytes: 64 * MIB };
const VM_LAB: LabNeeds = { ...CONTAINER_LAB, containers: 0, vms: 1, memoryBytes: 576 * MIB, diskBytes: GIB };
const needs = (lab: LabNeeds = CONTAINER_LAB, labels: Record<string, string> = {}): PlacementNeeds => ({ lab, labels });

/** Which lab host each lab goes to. */
describe('placing labs on lab hosts', () => {
  let dir: string;
  let db: Db;
  let store: LabStore;
  const up = { a: true, b: true, c: true };
  let registry: ProviderRegistry;
  let n = 0;
  const newLab = (state: 'provisioning' | 'failed' = 'provisioning') => {
    const id = `lab${++n}`;
    store.create({ id, scenarioId: 's', scenarioFile: 's.yaml', scenarioText: '', scenarioHash: 'h', seed: 'x', variables: {}, secrets: { graderPrivateKey: '', graderPublicKey: '', candidatePrivateKey: '', candidatePublicKey: '', candidatePassword: '', sudoPassword: '' } as never });
    return state === 'provisioning' ? store.transition(id, 'provisioning') : store.transition(store.transition(id, 'provisioning').id, 'failed');
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'examlab-placement-'));
    db = openDatabase(join(dir, 'examlab.db'));
    store = new LabStore(db);
    Object.assign(up, { a: true, b: true, c: true });
    registry = new ProviderRegistry()
      .register('libvirt', async () => engine(() => true))
      .registerHost({ name: 'a', capacity: 2, local: true, labels: {} }, async () => engine(() => up.a), 'local')
      .registerHost({ name: 'b', capacity: 4, local: false, labels: {} }, async () => engine(() => up.b))
      .registerHost({ name: 'c', local: false, labels: {} }, async () => engine(() => up.c));
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('each lab goes to the host with the most room left (the first listed on a tie); labs placed at once see each other', async () => {
    registry = new ProviderRegistry()
      .registerHost({ name: 'a', capacity: 2, local: true, labels: {} }, async () => engine(() => up.a))
      .registerHost({ name: 'b', capacity: 4, local: false, labels: {} }, async () => engine(() => up.b));
    const placement = new Placement(registry, store);
    const labs = await Promise.all([1, 2, 3, 4, 5, 6].map(() => placement.place(newLab(), needs())));
    expect(labs.map((l) => l.host)).toEqual(['docker@b', 'docker@b', 'docker@a', 'docker@b', 'docker@a', 'docker@b']);
    // Both full: the next is refused, naming each host's reason.
    await expect(placement.place(newLab(), needs())).rejects.toThrow(/no lab host can take lab lab7: a: full \(2 of 2 labs\); b: full \(4 of 4 labs\)/);
  });

  test('a failed lab holds no room; a host whose engine says nothing of its resources and has no capacity is never full', async () => {
    const placement = new Placement(registry, store);
    for (let i = 0; i < 3; i++) store.setHost(newLab('failed').id, 'docker@a');
    expect((await placement.place(newLab(), needs(VM_LAB))).host).toBe('docker@a');
    for (let i = 0; i < 50; i++) store.setHost(newLab().id, 'docker@c');
    expect((await placement.place(newLab(), needs())).host).toBe('docker@c');
  });

  test('a host whose engine does not answer is passed over, and a lab on it moves', async () => {
    const placement = new Placement(registry, store);
    const lab = await placement.place(newLab(), needs());
    expect(lab.host).toBe('docker@c');
    expect((await placement.place(lab, needs())).host).toBe('docker@c');
    up.c = false;
    expect((await placement.place(lab, needs())).host).toBe('docker@b');
    up.a = up.b = false;
    await expect(placement.place(newLab(), needs())).rejects.toThrow(/a: its engine does not answer \(.*connection refused\); b: its engine does not answer/);
  });

  test('a host that did not answer is not asked again for each lab of the room (it would cost each the wait)', async () => {
    let asked = 0;
    registry = new ProviderRegistry()
      .registerHost({ name: 'dead', local: false, labels: {} }, async () => engine(() => (asked++, false)))
      .registerHost({ name: 'alive', local: false, labels: {} }, async () => engine(() => true));
    const placement = new Placement(registry, store);
    for (let i = 0; i < 5; i++) expect((await placement.place(newLab(), needs())).host).toBe('docker@alive');
    expect(asked).toBe(1);
  });

  test('a lab with virtual machines goes to a host with a libvirt, one labelled kvm first', async () => {
    const placement = new Placement(registry, store);
    expect((await placement.place(newLab(), needs(VM_LAB))).host).toBe('docker@a');
    up.a = false;
    await expect(placement.place(newLab(), needs(VM_LAB))).rejects.toThrow(/b: the lab has virtual machines and this host has no libvirt/);
    registry = new ProviderRegistry()
      .register('libvirt', async () => engine(() => true))
      .registerHost({ name: 'tcg', local: true, labels: {} }, async () => engine(() => true), 'local')
      .registerHost({ name: 'fast', capacity: 1, local: false, labels: { kvm: 'true' } }, async () => engine(() => true), async () => engine(() => true));
    const kvmFirst = new Placement(registry, store);
    expect((await kvmFirst.place(newLab(), needs(VM_LAB))).host).toBe('docker@fast');
    expect((await kvmFirst.place(newLab(), needs(VM_LAB))).host).toBe('docker@tcg');
    expect(registry.engineOf('docker@fast', 'libvirt')).toBe('libvirt@fast');
    expect(registry.engineOf('docker@tcg', 'libvirt')).toBe('libvirt');
    expect(registry.hostOfEngine('libvirt@fast')?.name).toBe('fast');
    expect(registry.hostOfEngine('libvirt')).toBeUndefined();
  });

  test('a scenario\'s hostLabels send its labs only to hosts carrying them all', async () => {
    registry = new ProviderRegistry()
      .registerHost({ name: 'room-a', local: false, labels: { room: 'a' } }, async () => engine(() => true))
      .registerHost({ name: 'room-b', local: false, labels: { room: 'b', wifi: 'true' } }, async () => engine(() => true));
    const placement = new Placement(registry, store);
    expect((await placement.place(newLab(), needs(CONTAINER_LAB, { room: 'b' }))).host).toBe('docker@room-b');
    await expect(placement.place(newLab(), needs(CONTAINER_LAB, { room: 'a', wifi: 'true' }))).rejects.toThrow(/room-a: lacks the label wifi: true; room-b: lacks the label room: a/);
  });

  test('the room of a host is what its resources allow (the doctor\'s model), bounded by its capacity', async () => {
    // 2 GiB kept for the host, then room for three labs of 64 MiB; the other host has memory for many but 2 free subnets.
    const small: HostCapacity = { provider: 'docker', memoryBytes: 2 * GIB + 3 * 64 * MIB, cpus: 2, freeSubnets: 100 };
    const fewSubnets: HostCapacity = { provider: 'docker', memoryBytes: 64 * GIB, cpus: 8, freeSubnets: 2 };
    registry = new ProviderRegistry()
      .registerHost({ name: 'small', capacity: 10, local: false, labels: {} }, async () => engine(() => true, small))
      .registerHost({ name: 'big', local: false, labels: {} }, async () => engine(() => true, fewSubnets));
    const placement = new Placement(registry, store);
    expect(hostsCapacity(await placement.fits(needs()))).toMatchObject({ labs: 5, lines: [{ resource: 'small', labs: 3 }, { resource: 'big', labs: 2 }] });
    const hosts = [];
    for (let i = 0; i < 5; i++) {
      const lab = await placement.place(newLab(), needs());
      hosts.push(lab.host);
      // The engine's free subnets shrink as labs take them; its memory is counted from the labs it holds.
      if (lab.host === 'docker@big') fewSubnets.freeSubnets = (fewSubnets.freeSubnets as number) - 1;
    }
    expect(hosts.sort()).toEqual(['docker@big', 'docker@big', 'docker@small', 'docker@small', 'docker@small']);
    await expect(placement.place(newLab(), needs())).rejects.toThrow(/small: full \(memory: 64 MiB a lab.*big: full \(lab networks/);
    expect(hostsCapacity(await placement.fits(needs())).labs).toBe(0);
  });
});
