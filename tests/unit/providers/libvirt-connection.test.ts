import { describe, expect, test } from '@jest/globals';
import { pino } from 'pino';
import { LibvirtConnection } from '../../../src/providers/libvirt/connection.js';
import { EngineUnavailableError } from '../../../src/util/errors.js';
import { FakeLibvirtd, type FakeHandle } from '../../fakes/fake-libvirtd.js';

const URI = 'qemu:///system';

function connect(daemon: FakeLibvirtd, options: { timeoutMs?: number; openTimeoutMs?: number; maxInFlight?: number } = {}) {
  return new LibvirtConnection<FakeHandle>({ uri: URI, handle: daemon.handle, log: pino({ level: 'silent' }), ...options });
}

const lookup = (name = 'exl-lab1-vm') => (h: FakeHandle) => h.domainLookupByName(name);

describe('the connection to libvirtd', () => {
  test('libvirtd restarted between two calls: the next call opens a new connection and runs as if nothing happened; the dead one is closed', async () => {
    const daemon = new FakeLibvirtd();
    const libvirt = connect(daemon);
    await expect(libvirt.run('lookup', lookup())).resolves.toBe('exl-lab1-vm');
    daemon.restart();
    await expect(libvirt.run('lookup', lookup())).resolves.toBe('exl-lab1-vm');
    await expect(libvirt.run('lookup', lookup())).resolves.toBe('exl-lab1-vm');
    expect(daemon.handles.map((h) => ({ run: h.run, closed: h.closed }))).toEqual([
      { run: 1, closed: true },
      { run: 2, closed: false },
    ]);
  });

  test('while libvirtd is down, a call fails at once with an EngineUnavailableError naming libvirtd and its URI; once it is back, the next call succeeds', async () => {
    const daemon = new FakeLibvirtd();
    const libvirt = connect(daemon);
    await libvirt.run('lookup', lookup());
    daemon.stop();
    const failed = await libvirt.run('state of domain exl-lab1-vm', lookup()).catch((err: unknown) => err);
    expect(failed).toBeInstanceOf(EngineUnavailableError);
    expect(failed).toMatchObject({ engine: 'libvirt' });
    expect((failed as Error).message).toBe(
      "libvirtd does not answer at qemu:///system (Failed to connect socket to '/var/run/libvirt/libvirt-sock': No such file or directory; state of domain exl-lab1-vm); start it with `make engines`",
    );
    // Each call tries again: nothing is remembered of the outage.
    await expect(libvirt.run('lookup', lookup())).rejects.toThrow(/^libvirtd does not answer at qemu:\/\/\/system/);
    daemon.start();
    await expect(libvirt.run('lookup', lookup())).resolves.toBe('exl-lab1-vm');
  });

  test('a call that fails on its own (a domain not found) fails as it is, and the connection is kept', async () => {
    const daemon = new FakeLibvirtd();
    const libvirt = connect(daemon);
    const failed = await libvirt.run('lookup', lookup('exl-nobody')).catch((err: unknown) => err);
    expect(failed).not.toBeInstanceOf(EngineUnavailableError);
    expect((failed as Error).message).toBe("Domain not found: no domain with matching name 'exl-nobody'");
    await libvirt.run('lookup', lookup());
    expect(daemon.handles).toHaveLength(1);
  });

  test('what must not happen twice (defining a domain) is not run again on a new connection: it fails naming libvirtd', async () => {
    const daemon = new FakeLibvirtd();
    const libvirt = connect(daemon);
    await libvirt.run('lookup', lookup());
    daemon.restart();
    const define = libvirt.run('define domain exl-lab1-pc', (h) => h.domainDefineXML('exl-lab1-pc'), { retry: false });
    await expect(define).rejects.toThrow('libvirtd at qemu:///system stopped answering (define domain exl-lab1-pc: Cannot write data: Broken pipe); the connection is opened again at the next call');
    await expect(define).rejects.toBeInstanceOf(EngineUnavailableError);
    expect(daemon.defined).toEqual([]);
    // The next one runs on a new connection.
    await expect(libvirt.run('define domain exl-lab1-pc', (h) => h.domainDefineXML('exl-lab1-pc'), { retry: false })).resolves.toBe('exl-lab1-pc');
    expect(daemon.defined).toEqual(['exl-lab1-pc']);
  });

  test('a hung libvirtd: every call ends at its time limit naming libvirtd, however many are made at most `maxInFlight` native calls are out, and all answer again once libvirtd does', async () => {
    const daemon = new FakeLibvirtd();
    const libvirt = connect(daemon, { timeoutMs: 60, openTimeoutMs: 40, maxInFlight: 2 });
    await libvirt.run('lookup', lookup());
    daemon.hang();
    const started = Date.now();
    const outcomes = await Promise.all(Array.from({ length: 6 }, (_, i) => libvirt.run(`lookup ${i}`, lookup()).catch((err: unknown) => err)));
    expect(Date.now() - started).toBeLessThan(1000);
    for (const outcome of outcomes) expect(outcome).toBeInstanceOf(EngineUnavailableError);
    expect((outcomes[0] as Error).message).toMatch(/^libvirtd at qemu:\/\/\/system did not answer within 60 ms \(lookup 0\), 2 call\(s\) unanswered, the oldest for \d+ ms; the connection is opened again at the next call$/);
    expect(daemon.maxInFlight).toBe(2);
    // The calls still out keep their slots: a new call finds none, and says why.
    await expect(libvirt.run('lookup', lookup())).rejects.toThrow(/^libvirtd does not answer at qemu:\/\/\/system \(no answer within 40 ms, 2 call\(s\) unanswered/);
    expect(daemon.inFlight).toBe(2);

    daemon.resume();
    await expect(libvirt.run('lookup', lookup())).resolves.toBe('exl-lab1-vm');
    expect(daemon.inFlight).toBe(0);
    expect(daemon.maxInFlight).toBe(2);
    // The hung connection was closed once its last call came back, not while calls were out on it; the open that found no slot never opened.
    expect(daemon.handles.map((h) => ({ opened: h.run !== undefined, closed: h.closed }))).toEqual([
      { opened: true, closed: true },
      { opened: false, closed: false },
      { opened: true, closed: false },
    ]);
  });

  test('hung, then killed: the calls it held fail, their slots are freed, and the restarted libvirtd is reached', async () => {
    const daemon = new FakeLibvirtd();
    const libvirt = connect(daemon, { timeoutMs: 60, openTimeoutMs: 40, maxInFlight: 2 });
    await libvirt.run('lookup', lookup());
    daemon.hang();
    await Promise.all([1, 2, 3].map(() => libvirt.run('lookup', lookup()).catch(() => undefined)));
    expect(daemon.inFlight).toBe(2);
    daemon.restart();
    await new Promise((resolve) => setImmediate(resolve));
    expect(daemon.inFlight).toBe(0);
    await expect(libvirt.run('lookup', lookup())).resolves.toBe('exl-lab1-vm');
  });

  test('operations that arrive while the connection opens share it', async () => {
    const daemon = new FakeLibvirtd();
    const libvirt = connect(daemon);
    await Promise.all([1, 2, 3].map(() => libvirt.run('lookup', lookup())));
    expect(daemon.handles).toHaveLength(1);
  });
});
