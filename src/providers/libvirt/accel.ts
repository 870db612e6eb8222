import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { errorMessage } from '../../util/errors.js';

/** How guests run: `kvm` (hardware virtualisation) or `qemu` (TCG, emulation). */
export interface Acceleration {
  domainType: 'kvm' | 'qemu';
  /** Why, in a few words: what was tried and what it did. */
  reason: string;
}

/**
 * The device existing is not enough: on some hosts /dev/kvm opens and even
 * runs a tiny guest, but a Linux kernel hangs at its first instruction (no
 * nested virtualisation). So this boots a guest under KVM with the CPU the
 * VMs get (host-passthrough): given a Linux kernel (a VM image's), that
 * kernel, up to its panic for want of a root disk; without one yet, a
 * 42-byte multiboot kernel that writes to QEMU's isa-debug-exit port.
 * Anything else within the time limit (an error, a hang) means TCG.
 */
export async function detectAcceleration(options: { qemu?: string; timeoutMs?: number; device?: string; kernel?: string } = {}): Promise<Acceleration> {
  const device = options.device ?? '/dev/kvm';
  if (!existsSync(device)) return { domainType: 'qemu', reason: `${device} absent: guests run under TCG (emulation)` };
  if (options.kernel) {
    const outcome = await runLinuxProbe(options.kernel, options.qemu, options.timeoutMs ?? 30_000);
    if (outcome.ok) return { domainType: 'kvm', reason: `a Linux kernel booted under KVM in ${outcome.ms} ms` };
    return { domainType: 'qemu', reason: `${device} present but a Linux kernel does not run under KVM (${outcome.detail}): guests run under TCG (emulation)` };
  }
  const outcome = await runProbeGuest('kvm', options.qemu, options.timeoutMs ?? 10_000);
  if (outcome.ok) return { domainType: 'kvm', reason: `a probe guest ran under KVM in ${outcome.ms} ms (no VM image yet to try a Linux kernel)` };
  return { domainType: 'qemu', reason: `${device} present but KVM does not run guests (${outcome.detail}): guests run under TCG (emulation)` };
}

/** The kernel of the newest VM image built in `imagesDir`, to probe KVM with; undefined before any is built. */
export async function probeKernelOf(imagesDir: string): Promise<string | undefined> {
  const names = await readdir(imagesDir).catch(() => [] as string[]);
  let newest: { path: string; mtime: number } | undefined;
  for (const name of names) {
    const path = join(imagesDir, name, 'vmlinuz');
    const info = await stat(path).catch(() => undefined);
    if (info?.isFile() && (!newest || info.mtimeMs > newest.mtime)) newest = { path, mtime: info.mtimeMs };
  }
  return newest?.path;
}

/**
 * `detectAcceleration`, remembered in `cacheFile` until the host reboots or
 * /dev/kvm comes or goes: where KVM hangs, the probe spends its whole time
 * limit, and every examlab command that touches a VM would pay it.
 */
export async function rememberedAcceleration(cacheFile: string, kernel?: string): Promise<Acceleration> {
  // A first answer without a Linux kernel is replaced once a VM image brings one.
  const key = `${(await readFile('/proc/sys/kernel/random/boot_id', 'utf8')).trim()} kvm:${existsSync('/dev/kvm')} linux:${kernel ? 'yes' : 'no'}`;
  try {
    const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as { key: string; acceleration: Acceleration };
    if (cached.key === key) return cached.acceleration;
  } catch {
    // no cache yet, or an unreadable one: probe
  }
  const acceleration = await detectAcceleration({ kernel });
  await writeFile(cacheFile, `${JSON.stringify({ key, acceleration })}\n`).catch(() => undefined);
  return acceleration;
}

const PROBE_EXIT_CODE = 33;

/** The probe kernel: a multiboot header (a.out kludge, loaded at 1 MiB) and four instructions. */
export function probeKernel(): Buffer {
  const magic = 0x1badb002;
  const flags = 0x00010000; // the address fields below are valid
  const header = Buffer.alloc(32);
  [magic, flags, (-(magic + flags)) >>> 0, 0x100000, 0x100000, 0, 0, 0x100020].forEach((v, i) => header.writeUInt32LE(v, i * 4));
  // mov dx, 0xf4; mov al, 0x10; out dx, al; hlt; jmp hlt
  const code = Buffer.from([0x66, 0xba, 0xf4, 0x00, 0xb0, 0x10, 0xee, 0xf4, 0xeb, 0xfd]);
  return Buffer.concat([header, code, Buffer.alloc(512 - 32 - code.length)]);
}

/**
 * Boots a Linux kernel under KVM with no disk: a kernel that runs prints its
 * boot and panics (no root file system), which ends QEMU (-no-reboot).
 */
export async function runLinuxProbe(kernel: string, qemu = 'qemu-system-x86_64', timeoutMs = 30_000): Promise<{ ok: boolean; ms: number; detail: string }> {
  const args = linuxProbeArgs(kernel);
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(qemu, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    let stderr = '';
    const done = (ok: boolean, detail: string) => {
      clearTimeout(timer);
      child.kill('SIGKILL');
      resolve({ ok, ms: Date.now() - started, detail });
    };
    child.stdout.on('data', (chunk: Buffer) => {
      output = (output + chunk.toString()).slice(-65_536);
      if (output.includes('Kernel panic')) done(true, 'the kernel booted');
    });
    child.stderr.on('data', (chunk: Buffer) => (stderr = (stderr + chunk.toString()).slice(-4096)));
    const timer = setTimeout(() => done(false, output ? `the kernel stopped after printing ${output.split('\n').length} lines in ${timeoutMs / 1000} s` : `the kernel printed nothing in ${timeoutMs / 1000} s`), timeoutMs);
    child.on('error', (err) => done(false, `cannot run ${qemu}: ${errorMessage(err)}`));
    child.on('close', (code) => done(output.includes('Kernel panic'), output.includes('Kernel panic') ? 'the kernel booted' : stderr.trim().split('\n').pop() || `qemu exited ${code}`));
  });
}

/** QEMU's arguments to boot a Linux kernel under KVM, with no disk, up to its panic (which ends QEMU). */
function linuxProbeArgs(kernel: string): string[] {
  return ['-accel', 'kvm', '-cpu', 'host', '-nodefaults', '-display', 'none', '-no-reboot', '-m', '256', '-serial', 'stdio', '-kernel', kernel, '-append', 'console=ttyS0 panic=-1 root=/dev/examlab-none'];
}

/** QEMU's arguments to boot the probe kernel, which ends QEMU with PROBE_EXIT_CODE. */
function probeGuestArgs(accel: 'kvm' | 'tcg', kernel: string): string[] {
  return ['-accel', accel, '-nodefaults', '-display', 'none', '-no-reboot', '-m', '16', '-device', 'isa-debug-exit,iobase=0xf4,iosize=0x04', '-kernel', kernel];
}

/** Boots the probe kernel with the given accelerator; ok when it exits as the probe says. */
export async function runProbeGuest(accel: 'kvm' | 'tcg', qemu = 'qemu-system-x86_64', timeoutMs = 10_000): Promise<{ ok: boolean; ms: number; detail: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'examlab-accel-'));
  const kernel = join(dir, 'probe.bin');
  await writeFile(kernel, probeKernel());
  const started = Date.now();
  try {
    const args = probeGuestArgs(accel, kernel);
    return await new Promise((resolve) => {
      const child = spawn(qemu, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
        resolve({ ok: false, ms: Date.now() - started, detail: `the probe guest hung for ${timeoutMs / 1000} s` });
      }, timeoutMs);
      child.on('error', (err) => {
        clearTimeout(timer);
        resolve({ ok: false, ms: Date.now() - started, detail: `cannot run ${qemu}: ${errorMessage(err)}` });
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        const ms = Date.now() - started;
        if (code === PROBE_EXIT_CODE) resolve({ ok: true, ms, detail: 'the probe guest ran' });
        else resolve({ ok: false, ms, detail: stderr.trim().split('\n').pop() || `qemu exited ${code}` });
      });
    });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** What the KVM probe needs of a lab host: its commands, and a place for the probe's kernel. */
export interface ProbeHost {
  exec(argv: readonly string[], options: { timeoutMs: number; maxOutputBytes?: number }): Promise<{ exitCode: number; stdout: Buffer; stderr: Buffer }>;
  upload(localPath: string, path: string, options: { mode: number; timeoutMs: number }): Promise<void>;
  writeFile(path: string, data: Buffer, options: { mode: number; timeoutMs: number }): Promise<void>;
  rm(paths: readonly string[]): Promise<void>;
}

/**
 * `detectAcceleration` on a lab host, through its SSH connection: the same
 * probes, run there (QEMU is there, whatever this host has). `kernel` is a
 * Linux kernel of this host (a VM image's), copied there for the probe;
 * `scratch` is a folder of the host for the probe's files.
 */
export async function detectRemoteAcceleration(host: ProbeHost, options: { scratch: string; kernel?: string; timeoutMs?: number; qemu?: string; device?: string }): Promise<Acceleration> {
  const qemu = options.qemu ?? 'qemu-system-x86_64';
  const device = options.device ?? '/dev/kvm';
  const present = await host.exec(['test', '-c', device], { timeoutMs: 15_000 });
  if (present.exitCode !== 0) return { domainType: 'qemu', reason: `${device} absent on the lab host: guests run under TCG (emulation)` };
  const probe = `${options.scratch}/kvm-probe-kernel`;
  try {
    if (options.kernel) {
      const timeoutMs = options.timeoutMs ?? 30_000;
      await host.upload(options.kernel, probe, { mode: 0o644, timeoutMs: 120_000 });
      const started = Date.now();
      const run = await host.exec(['timeout', '-s', 'KILL', `${Math.ceil(timeoutMs / 1000)}s`, qemu, ...linuxProbeArgs(probe)], { timeoutMs: timeoutMs + 15_000, maxOutputBytes: 1 << 20 });
      const output = run.stdout.toString('utf8');
      if (output.includes('Kernel panic')) return { domainType: 'kvm', reason: `a Linux kernel booted under KVM on the lab host in ${Date.now() - started} ms` };
      const detail = run.exitCode === 137 ? `the kernel ${output ? `stopped after printing ${output.split('\n').length} lines` : 'printed nothing'} in ${timeoutMs / 1000} s` : run.stderr.toString('utf8').trim().split('\n').pop() || `qemu exited ${run.exitCode}`;
      return { domainType: 'qemu', reason: `${device} present on the lab host but a Linux kernel does not run under KVM there (${detail}): guests run under TCG (emulation)` };
    }
    const timeoutMs = options.timeoutMs ?? 10_000;
    await host.writeFile(probe, probeKernel(), { mode: 0o644, timeoutMs: 30_000 });
    const run = await host.exec(['timeout', '-s', 'KILL', `${Math.ceil(timeoutMs / 1000)}s`, qemu, ...probeGuestArgs('kvm', probe)], { timeoutMs: timeoutMs + 15_000 });
    if (run.exitCode === PROBE_EXIT_CODE) return { domainType: 'kvm', reason: 'a probe guest ran under KVM on the lab host (no VM image yet to try a Linux kernel)' };
    const detail = run.exitCode === 137 ? `the probe guest hung for ${timeoutMs / 1000} s` : run.stderr.toString('utf8').trim().split('\n').pop() || `qemu exited ${run.exitCode}`;
    return { domainType: 'qemu', reason: `${device} present on the lab host but KVM does not run guests there (${detail}): guests run under TCG (emulation)` };
  } finally {
    await host.rm([probe]).catch(() => undefined);
  }
}

/**
 * `detectRemoteAcceleration`, remembered in `cacheFile` (of this host)
 * until the lab host reboots or its /dev/kvm comes or goes, as
 * `rememberedAcceleration` does here.
 */
export async function rememberedRemoteAcceleration(cacheFile: string, host: ProbeHost, options: { scratch: string; kernel?: string }): Promise<Acceleration> {
  const facts = await host.exec(['sh', '-c', 'cat /proc/sys/kernel/random/boot_id; test -c /dev/kvm && echo kvm:true || echo kvm:false'], { timeoutMs: 15_000 });
  const key = `${facts.stdout.toString('utf8').trim().split('\n').join(' ')} linux:${options.kernel ? 'yes' : 'no'}`;
  try {
    const cached = JSON.parse(await readFile(cacheFile, 'utf8')) as { key: string; acceleration: Acceleration };
    if (cached.key === key) return cached.acceleration;
  } catch {
    // no cache yet, or an unreadable one: probe
  }
  const acceleration = await detectRemoteAcceleration(host, options);
  await writeFile(cacheFile, `${JSON.stringify({ key, acceleration })}\n`).catch(() => undefined);
  return acceleration;
}
