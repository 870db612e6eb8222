import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { LabMachineAccess } from '../../../src/labs/access.js';
import { LabService } from '../../../src/labs/lab-service.js';
import { LabStore, type LabRecord } from '../../../src/labs/lab-store.js';
import { ProviderRegistry, type LabRef, type Provider } from '../../../src/providers/index.js';
import { GuestAgentSession } from '../../../src/remote/index.js';
import { openDatabase } from '../../../src/util/database.js';
import { createLogger } from '../../../src/util/log.js';
import { startFakeGuestAgent } from '../../fakes/fake-guest-agent.js';
import { startFakeSshd, type FakeSshd } from '../../fakes/fake-sshd.js';

/** A loopback address where nothing listens: a machine reached at its address, rather than through its host, is refused at once. */
const UNREACHED = '127.231.9.10';

/** What the libvirt provider of a lab host offers the labs: the ways to a VM through the host, here to stand-ins on this machine. */
class LabHostVms implements Provider {
  readonly name = 'libvirt' as const;
  readonly reachedThroughEngine = true;
  asked: string[] = [];
  constructor(private readonly ways: { sshd?: number; agent?: string; console?: string; log?: Buffer }) {}
  async tunnel(_lab: LabRef, machine: string, port: number): Promise<Duplex> {
    this.asked.push(`tunnel ${machine}:${port}`);
    if (this.ways.sshd === undefined) throw new Error('channel open failure: Connection refused');
    return this.stream(() => connect(this.ways.sshd as number, '127.0.0.1'));
  }
  async consoleStream(_lab: LabRef, machine: string, which: 'console' | 'agent'): Promise<Duplex> {
    this.asked.push(`${which} ${machine}`);
    const path = which === 'agent' ? this.ways.agent : this.ways.console;
    if (!path) throw new Error(`no ${which} socket`);
    return this.stream(() => connect(path));
  }
  async consoleLogTail(_lab: LabRef, machine: string, maxBytes: number): Promise<Buffer | undefined> {
    this.asked.push(`log ${machine}`);
    return this.ways.log?.subarray(-maxBytes);
  }
  private stream(make: () => ReturnType<typeof connect>): Promise<Duplex> {
    return new Promise((resolve, reject) => {
      const s = make();
      s.once('connect', () => resolve(s));
      s.once('error', reject);
    });
  }
  async ping() {
    return 'lab host';
  }
  async createMachine(): Promise<never> {
    throw new Error('not in these tests');
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
}

describe('VMs of a lab host, reached through their provider', () => {
  let dir: string;
  let sshd: FakeSshd | undefined;
  const servers: Server[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'examlab-labhost-vms-'));
  });
  afterEach(async () => {
    for (const s of servers.splice(0)) s.close();
    await sshd?.close();
    sshd = undefined;
    rmSync(dir, { recursive: true, force: true });
  });

  /** A lab whose VM `vm` is at an address this host does not reach; its console paths are the lab host's (nothing here). */
  const record = (host: string | undefined, graderKey = ''): LabRecord =>
    ({
      id: 'lab1',
      host,
      topology: {
        networks: [],
        machines: [{ name: 'vm', provider: 'libvirt', hostname: 'vm', address: UNREACHED, addresses: { lan: UNREACHED }, console: { socket: '/nowhere/vm.console.sock', log: join(dir, 'vm.console.log'), agent: '/nowhere/vm.agent.sock' } }],
      },
      secrets: { graderPrivateKey: graderKey, graderPublicKey: '', candidatePrivateKey: '', candidatePublicKey: '', candidatePassword: '' },
    }) as unknown as LabRecord;

  /** The lab host `h1` (not this one), with its VMs' provider; a VM provider of this host that must never be started. */
  const registry = (vms: Provider) =>
    new ProviderRegistry().registerHost(
      { name: 'h1', local: false, labels: {} },
      async () => {
        throw new Error('the lab host\'s Docker engine is not needed to reach its VMs');
      },
      async () => vms,
    );

  const service = (providers: ProviderRegistry) =>
    new LabService({
      store: new LabStore(openDatabase(':memory:')),
      providers,
      images: { ensure: async () => ({ ref: 'unused', systemd: true, capabilities: [], bootable: true }), runsSystemd: async () => true },
      machines: new LabMachineAccess(providers, () => Promise.reject(new Error('no grading here'))),
      log: createLogger({ level: 'silent' }),
    });

  test('the grader waits for, and logs in to, a VM through the tunnel of its host', async () => {
    sshd = await startFakeSshd();
    const vms = new LabHostVms({ sshd: sshd.port });
    const access = new LabMachineAccess(registry(vms), () => Promise.reject(new Error('no grading here')));
    const lab = record('docker@h1', sshd.clientKey);
    const hostKey = await access.waitReady(lab, lab.topology?.machines[0] as NonNullable<LabRecord['topology']>['machines'][number], 10_000);
    expect(hostKey).toMatch(/^SHA256:/);
    expect(vms.asked).toContain('tunnel vm:22');
    // Pinned, as the lab service does: later sessions hold the machine to it.
    (lab.topology?.machines[0] as { hostKey?: string }).hostKey = hostKey;
    const session = await access.open(lab, 'vm', 5000);
    try {
      expect((await session.exec('echo through the host', { timeoutMs: 5000 })).stdout).toBe('through the host\n');
    } finally {
      session.close();
    }
  });

  test('when its SSH does not answer, the grader reaches the VM\'s guest agent through its host', async () => {
    const agent = join(dir, 'agent.sock');
    servers.push((await startFakeGuestAgent(agent)).server);
    const vms = new LabHostVms({ agent });
    const access = new LabMachineAccess(registry(vms), () => Promise.reject(new Error('no grading here')));
    const lab = record('docker@h1');
    (lab.topology?.machines[0] as { hostKey?: string }).hostKey = 'SHA256:pinned-at-first-boot';
    const session = await access.open(lab, 'vm', 2000);
    try {
      expect(session).toBeInstanceOf(GuestAgentSession);
      expect((await session.exec('echo agent', { timeoutMs: 5000 })).stdout).toBe('agent\n');
    } finally {
      session.close();
    }
    expect(vms.asked).toEqual(['tunnel vm:22', 'agent vm']);
  });

  test('its console and console log come through its host; a lab of this host reads its own, without starting any provider', async () => {
    const consoleSocket = join(dir, 'console.sock');
    const console = createServer((s) => s.on('data', () => s.end('\r\nvm login: ')));
    servers.push(console);
    await new Promise<void>((resolve) => console.listen(consoleSocket, resolve));
    const vms = new LabHostVms({ console: consoleSocket, log: Buffer.from('[    0.0] Linux version 6.1\r\n\x1b[0;32m  OK  \x1b[0m] Reached target multi-user\r\nvm login: ') });
    const labs = service(registry(vms));
    expect(await labs.consoleTail(record('docker@h1'), 'vm', 2)).toBe('  OK  ] Reached target multi-user\nvm login:');
    const stream = await labs.openConsole(record('docker@h1'), 'vm');
    const answer = await new Promise<string>((resolve) => {
      let seen = '';
      stream.on('data', (chunk: Buffer) => (seen += chunk.toString()));
      stream.on('end', () => resolve(seen));
      stream.write('\r');
    });
    expect(answer).toContain('vm login:');
    expect(vms.asked).toEqual(['log vm', 'console vm']);

    // This host's lab: its log and socket are at their paths, and no provider is asked (nor started: libvirtd need not run).
    const local = new ProviderRegistry().register('libvirt', async () => {
      throw new Error('started for a lab of this host');
    });
    writeFileSync(join(dir, 'vm.console.log'), 'here\r\nvm login: ');
    const localLabs = service(local);
    const here = { ...record(undefined), topology: { networks: [], machines: [{ ...(record(undefined).topology?.machines[0] as object), console: { socket: consoleSocket, log: join(dir, 'vm.console.log') } }] } } as unknown as LabRecord;
    expect(await localLabs.consoleTail(here, 'vm')).toBe('here\nvm login:');
    const direct = await localLabs.openConsole(here, 'vm');
    direct.destroy();
  });
});
