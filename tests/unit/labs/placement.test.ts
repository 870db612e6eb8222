import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LabStore } from '../../../src/labs/lab-store.js';
import { Placement } from '../../../src/labs/placement.js';
import { ProviderRegistry } from '../../../src/providers/registry.js';
import type { Provider } from '../../../src/providers/types.js';
import { openDatabase, type Db } from '../../../src/util/database.js';

/** An engine that answers, or not. */
const engine = (answers: () => boolean) => ({ name: 'docker', ping: async () => (answers() ? 'fake' : Promise.reject(new Error('connection refused'))) }) as unknown as Provider;

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
      .registerHost({ name: 'a', capacity: 2, local: true }, async () => engine(() => up.a))
      .registerHost({ name: 'b', capacity: 4, local: false }, async () => engine(() => up.b))
      .registerHost({ name: 'c', local: false }, async () => engine(() => up.c));
  });
  afterEach(() => {
    db.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('each lab goes to the host with the most room left (the first listed on a tie); labs placed at once see each other', async () => {
    registry = new ProviderRegistry()
      .registerHost({ name: 'a', capacity: 2, local: true }, async () => engine(() => up.a))
      .registerHost({ name: 'b', capacity: 4, local: false }, async () => engine(() => up.b));
    const placement = new Placement(registry, store);
    const labs = await Promise.all([1, 2, 3, 4, 5, 6].map(() => placement.place(newLab(), { local: false })));
    expect(labs.map((l) => l.host)).toEqual(['docker@b', 'docker@b', 'docker@a', 'docker@b', 'docker@a', 'docker@b']);
    // Both full: the next is refused, naming each host's reason.
    await expect(placement.place(newLab(), { local: false })).rejects.toThrow(/no lab host can take lab lab7: a: full \(2 of 2 labs\); b: full \(4 of 4 labs\)/);
  });

  test('a failed lab holds no room; a host without a capacity is never full', async () => {
    const placement = new Placement(registry, store);
    for (let i = 0; i < 3; i++) store.setHost(newLab('failed').id, 'docker@a');
    expect((await placement.place(newLab(), { local: true })).host).toBe('docker@a');
    for (let i = 0; i < 50; i++) store.setHost(newLab().id, 'docker@c');
    expect((await placement.place(newLab(), { local: false })).host).toBe('docker@c');
  });

  test('a host whose engine does not answer is passed over, and a lab on it moves', async () => {
    const placement = new Placement(registry, store);
    const lab = await placement.place(newLab(), { local: false });
    expect(lab.host).toBe('docker@c');
    expect((await placement.place(lab, { local: false })).host).toBe('docker@c');
    up.c = false;
    expect((await placement.place(lab, { local: false })).host).toBe('docker@b');
    up.a = up.b = false;
    await expect(placement.place(newLab(), { local: false })).rejects.toThrow(/a: its engine does not answer \(.*connection refused\); b: its engine does not answer/);
  });

  test('a lab with virtual machines goes to a host whose engine is this machine\'s', async () => {
    const placement = new Placement(registry, store);
    expect((await placement.place(newLab(), { local: true })).host).toBe('docker@a');
    up.a = false;
    await expect(placement.place(newLab(), { local: true })).rejects.toThrow(/b: the lab has virtual machines, which run beside this host's engine only/);
  });
});
