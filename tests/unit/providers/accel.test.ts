import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { detectAcceleration, probeKernelOf } from '../../../src/providers/libvirt/index.js';

describe('deciding between KVM and TCG', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'examlab-accel-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  test('KVM is probed with the kernel of the newest VM image; none before an image is built', async () => {
    expect(await probeKernelOf(join(dir, 'images'))).toBeUndefined();
    for (const [name, age] of [['debian-vm-old', 100], ['debian-vm-new', 10], ['half-built', 1]] as const) {
      mkdirSync(join(dir, 'images', name), { recursive: true });
      if (name === 'half-built') continue;
      writeFileSync(join(dir, 'images', name, 'vmlinuz'), 'kernel');
      const when = new Date(Date.now() - age * 1000);
      utimesSync(join(dir, 'images', name, 'vmlinuz'), when, when);
    }
    expect(await probeKernelOf(join(dir, 'images'))).toBe(join(dir, 'images', 'debian-vm-new', 'vmlinuz'));
  });

  test('without the device, or with a kernel that does not boot, guests run under TCG and the reason says why', async () => {
    const absent = await detectAcceleration({ device: join(dir, 'kvm') });
    expect(absent).toEqual({ domainType: 'qemu', reason: expect.stringContaining('absent') });
    writeFileSync(join(dir, 'kvm'), '');
    const broken = await detectAcceleration({ device: join(dir, 'kvm'), kernel: join(dir, 'no-such-kernel'), qemu: join(dir, 'no-such-qemu'), timeoutMs: 5000 });
    expect(broken.domainType).toBe('qemu');
    expect(broken.reason).toMatch(/a Linux kernel does not run under KVM \(cannot run .*no-such-qemu/);
  });
});
