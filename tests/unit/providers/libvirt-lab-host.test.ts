import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from '@jest/globals';
import { pino } from 'pino';
import { detectRemoteAcceleration } from '../../../src/providers/libvirt/accel.js';
import { ImageCopies } from '../../../src/providers/libvirt/image-copies.js';
import { LibvirtProvider } from '../../../src/providers/libvirt/libvirt-provider.js';
import { parseLabHostUri } from '../../../src/providers/libvirt/lab-host.js';
import { remoteVmHost } from '../../../src/providers/libvirt/vm-host.js';
import { HostConnection } from '../../../src/remote/host-connection.js';
import { startFakeSshd, type FakeSshd } from '../../fakes/fake-sshd.js';

/**
 * What the libvirt provider does on a lab host, against a stand-in sshd
 * that runs commands on this machine: the "host's" folders are folders of
 * a temporary directory here.
 */
describe('a lab host\'s files, images and KVM, over its SSH connection', () => {
  let sshd: FakeSshd;
  let dir: string;
  let connection: HostConnection;

  beforeEach(async () => {
    sshd = await startFakeSshd();
    dir = mkdtempSync(join(tmpdir(), 'examlab-labhost-'));
    connection = new HostConnection({ host: '127.0.0.1', port: sshd.port, username: 'root', privateKey: sshd.clientKey, hostKey: sshd.hostKey });
  });

  afterEach(async () => {
    connection.close();
    await sshd.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A built image of this host: <local>/<name>-<hash>/ with a disk, a kernel and its manifest. */
  function builtImage(local: string, folder: string): string {
    mkdirSync(join(local, folder), { recursive: true });
    writeFileSync(join(local, folder, 'disk.qcow2'), Buffer.alloc(200_000, 1));
    writeFileSync(join(local, folder, 'vmlinuz'), 'kernel');
    writeFileSync(join(local, folder, 'image.json'), '{}');
    return join(local, folder);
  }

  test('an image is copied once, by its folder name, whoever asks at once; a later process finds it', async () => {
    const local = join(dir, 'local');
    const remote = join(dir, 'remote');
    const image = builtImage(local, 'debian-vm-0123456789ab');
    const copies = new ImageCopies(connection, local, remote, pino({ level: 'silent' }));
    const paths = await Promise.all([copies.pathOf(join(image, 'disk.qcow2')), copies.pathOf(join(image, 'vmlinuz')), copies.pathOf(join(image, 'disk.qcow2'))]);
    expect(paths).toEqual([join(remote, 'debian-vm-0123456789ab', 'disk.qcow2'), join(remote, 'debian-vm-0123456789ab', 'vmlinuz'), join(remote, 'debian-vm-0123456789ab', 'disk.qcow2')]);
    expect(readdirSync(remote)).toEqual(['debian-vm-0123456789ab']);
    expect(readdirSync(join(remote, 'debian-vm-0123456789ab')).sort()).toEqual(['disk.qcow2', 'image.json', 'vmlinuz']);
    expect(readFileSync(join(remote, 'debian-vm-0123456789ab', 'disk.qcow2')).equals(readFileSync(join(image, 'disk.qcow2')))).toBe(true);
    // Bases are shared by every lab there: nobody writes them.
    expect(statSync(join(remote, 'debian-vm-0123456789ab', 'disk.qcow2')).mode & 0o777).toBe(0o444);
    const uploads = sshd.commands.filter((c) => c.includes('cat > "$1.partial"')).length;
    expect(uploads).toBe(3);

    const later = new ImageCopies(connection, local, remote, pino({ level: 'silent' }));
    expect(await later.pathOf(join(image, 'disk.qcow2'))).toBe(join(remote, 'debian-vm-0123456789ab', 'disk.qcow2'));
    expect(sshd.commands.filter((c) => c.includes('cat > "$1.partial"')).length).toBe(uploads);
  });

  test('a copy that fails leaves nothing that looks like the image; a damaged one is reported, not replaced', async () => {
    const local = join(dir, 'local');
    const image = builtImage(local, 'debian-vm-0123456789ab');
    // The images folder cannot be made (a file is in its place): the copy fails, and is tried again at the next call.
    writeFileSync(join(dir, 'blocked'), '');
    const blocked = new ImageCopies(connection, local, join(dir, 'blocked', 'images'), pino({ level: 'silent' }));
    await expect(blocked.pathOf(join(image, 'disk.qcow2'))).rejects.toThrow(/exited/);
    await expect(blocked.pathOf(join(image, 'disk.qcow2'))).rejects.toThrow(/exited/);

    // A file of the image that cannot be read halfway through the copy: the half copy is removed.
    const broken = builtImage(local, 'broken-vm-0123456789ab');
    symlinkSync(join(dir, 'gone'), join(broken, 'vmlinuz-old'));
    const half = join(dir, 'half');
    const failing = new ImageCopies(connection, local, half, pino({ level: 'silent' }));
    await expect(failing.pathOf(join(broken, 'disk.qcow2'))).rejects.toThrow(/ENOENT: no such file or directory, open .*vmlinuz-old/);
    expect(readdirSync(half)).toEqual([]);

    const remote = join(dir, 'remote');
    mkdirSync(join(remote, 'debian-vm-0123456789ab'), { recursive: true });
    writeFileSync(join(remote, 'debian-vm-0123456789ab', 'disk.qcow2'), 'short');
    const copies = new ImageCopies(connection, local, remote, pino({ level: 'silent' }));
    await expect(copies.pathOf(join(image, 'disk.qcow2'))).rejects.toThrow(/copy of VM image debian-vm-0123456789ab on root@127\.0\.0\.1:\d+ is damaged \(disk\.qcow2: 5 bytes, not 200000\); remove .* there/);
    expect(readdirSync(remote)).toEqual(['debian-vm-0123456789ab']);
  });

  test('a disk made elsewhere (outside the images folder) is copied alone, named by its path, size and time', async () => {
    const elsewhere = join(dir, 'windows');
    mkdirSync(elsewhere);
    writeFileSync(join(elsewhere, 'win11.qcow2'), Buffer.alloc(1000, 2));
    const remote = join(dir, 'remote');
    const copies = new ImageCopies(connection, join(dir, 'local'), remote, pino({ level: 'silent' }));
    const path = await copies.pathOf(join(elsewhere, 'win11.qcow2'));
    expect(path).toMatch(new RegExp(`^${remote}/win11\\.qcow2-[0-9a-f]{12}/win11\\.qcow2$`));
    expect(readFileSync(path).length).toBe(1000);
    writeFileSync(join(elsewhere, 'win11.qcow2'), Buffer.alloc(2000, 2));
    expect(await copies.pathOf(join(elsewhere, 'win11.qcow2'))).not.toBe(path);
  });

  test('the VM host\'s files: a file made here is placed there, folders made with their mode, read back, listed, removed', async () => {
    const host = remoteVmHost(connection);
    const labDir = join(dir, 'labs', 'lab1');
    await host.mkdir(labDir, 0o711);
    expect(statSync(labDir).mode & 0o777).toBe(0o711);
    await host.place(join(labDir, 'pc-seed.iso'), async (local) => writeFileSync(local, 'an ISO'));
    expect(readFileSync(join(labDir, 'pc-seed.iso'), 'utf8')).toBe('an ISO');
    expect(statSync(join(labDir, 'pc-seed.iso')).mode & 0o777).toBe(0o644);
    expect((await host.readFile(join(labDir, 'pc-seed.iso')))?.toString()).toBe('an ISO');
    expect(await host.readFile(join(labDir, 'none'))).toBeUndefined();
    expect(await host.run('sh', ['-c', 'echo "$0"', 'a b'])).toBe('a b\n');
    await expect(host.run('sh', ['-c', 'echo bad >&2; exit 2'])).rejects.toThrow(/exited 2 .*:\nbad/);
    expect(await host.list(join(dir, 'labs'))).toEqual(['lab1']);
    await host.remove([labDir]);
    expect(existsSync(labDir)).toBe(false);
    expect(await host.list(join(dir, 'labs'))).toEqual([]);
  });

  test('KVM on the lab host: probed there, TCG when its device is absent or a kernel does not boot under it', async () => {
    const qemu = (name: string, script: string) => {
      writeFileSync(join(dir, name), `#!/bin/sh\n${script}\n`);
      chmodSync(join(dir, name), 0o755);
      return join(dir, name);
    };
    const kernel = join(dir, 'vmlinuz');
    writeFileSync(kernel, 'kernel');
    const absent = await detectRemoteAcceleration(connection, { scratch: dir, device: join(dir, 'no-kvm') });
    expect(absent).toEqual({ domainType: 'qemu', reason: `${join(dir, 'no-kvm')} absent on the lab host: guests run under TCG (emulation)` });
    // A character device stands for /dev/kvm; fake QEMUs say what a kernel did.
    const booted = await detectRemoteAcceleration(connection, { scratch: dir, device: '/dev/null', kernel, qemu: qemu('boots', 'echo "Linux version 6.1"; echo "Kernel panic - not syncing: VFS"') });
    expect(booted).toEqual({ domainType: 'kvm', reason: expect.stringMatching(/^a Linux kernel booted under KVM on the lab host in \d+ ms$/) });
    const hangs = await detectRemoteAcceleration(connection, { scratch: dir, device: '/dev/null', kernel, qemu: qemu('hangs', 'echo "Linux version 6.1"; sleep 30'), timeoutMs: 1000 });
    expect(hangs).toEqual({ domainType: 'qemu', reason: '/dev/null present on the lab host but a Linux kernel does not run under KVM there (the kernel stopped after printing 2 lines in 1 s): guests run under TCG (emulation)' });
    const probe = await detectRemoteAcceleration(connection, { scratch: dir, device: '/dev/null', qemu: qemu('probe', 'exit 33') });
    expect(probe).toEqual({ domainType: 'kvm', reason: 'a probe guest ran under KVM on the lab host (no VM image yet to try a Linux kernel)' });
    // The probe's kernel is removed from the host afterwards.
    expect(existsSync(join(dir, 'kvm-probe-kernel'))).toBe(false);
  });

  test('a lab host\'s libvirt needs its SSH login; one that does not answer fails its start, naming the host, and leaves nothing open', async () => {
    const log = pino({ level: 'silent' });
    const dirs = { labsDir: join(dir, 'labs'), imagesDir: join(dir, 'images'), accelerationCache: join(dir, 'acceleration.json') };
    const labHost = { sshKey: join(dir, 'id'), sshHostKey: sshd.hostKey, socketDir: join(dir, 'run') };
    await expect(LibvirtProvider.start(log, { uri: `qemu+ssh://root@127.0.0.1:${sshd.port}/system`, ...dirs })).rejects.toThrow(/needs its SSH key and host key/);
    await expect(LibvirtProvider.start(log, { uri: 'qemu:///system', ...dirs, labHost })).rejects.toThrow(/a lab host's libvirt is qemu\+ssh/);
    await expect(LibvirtProvider.start(log, { uri: `qemu+ssh://root@127.0.0.1:${sshd.port}/system`, ...dirs, labHost })).rejects.toThrow(/cannot read the SSH key/);
    writeFileSync(join(dir, 'id'), sshd.clientKey);
    // The host answers SSH, but no libvirtd listens at the socket asked for.
    const started = LibvirtProvider.start(log, { uri: `qemu+ssh://root@127.0.0.1:${sshd.port}/system?socket=${join(dir, 'no-libvirtd')}`, ...dirs, labHost });
    await expect(started).rejects.toThrow(/libvirtd does not answer at qemu\+ssh:\/\/root@127\.0\.0\.1:\d+\/system.*is root@127\.0\.0\.1:\d+ up, with libvirtd running there\?/);
    // Its forwarded socket is gone with it, in a private folder.
    expect(statSync(join(dir, 'run')).mode & 0o777).toBe(0o700);
    expect(readdirSync(join(dir, 'run'))).toEqual([]);
  });

  test('a lab host\'s libvirt address', () => {
    expect(parseLabHostUri('qemu+ssh://admin@lab1.example:2222/system')).toEqual({ username: 'admin', host: 'lab1.example', port: 2222, socket: '/var/run/libvirt/libvirt-sock' });
    expect(parseLabHostUri('qemu+ssh://10.0.0.5/system?socket=/run/libvirt/virtqemud-sock')).toEqual({ username: 'root', host: '10.0.0.5', port: 22, socket: '/run/libvirt/virtqemud-sock' });
    expect(() => parseLabHostUri('qemu:///system')).toThrow(/qemu\+ssh:\/\/user@host\[:port\]\/system/);
    expect(() => parseLabHostUri('qemu+ssh://host/session')).toThrow(/qemu\+ssh/);
  });
});
