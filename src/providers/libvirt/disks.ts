import type { VmHost } from './vm-host.js';

/** qcow2 files through qemu-img, on the host that runs the VMs: the libvirt binding has no storage calls, and none are needed. */

/** A linked clone: a new qcow2 whose reads fall through to `base`, which is never written. */
export async function createOverlay(host: VmHost, path: string, base: string, sizeBytes?: number): Promise<void> {
  await host.run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', path, ...(sizeBytes ? [String(sizeBytes)] : [])]);
}

/** An empty disk (reads as zeros; takes space only as the guest writes). */
export async function createBlankDisk(host: VmHost, path: string, sizeBytes: number): Promise<void> {
  await host.run('qemu-img', ['create', '-q', '-f', 'qcow2', path, String(sizeBytes)]);
}

export async function virtualSize(host: VmHost, path: string): Promise<number> {
  const info = JSON.parse(await host.run('qemu-img', ['info', '--output=json', path])) as { 'virtual-size': number };
  return info['virtual-size'];
}
