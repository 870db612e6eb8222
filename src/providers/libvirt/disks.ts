import { runCommand } from '../../util/command.js';

/** qcow2 files through qemu-img: the libvirt binding has no storage calls, and none are needed. */

/** A linked clone: a new qcow2 whose reads fall through to `base`, which is never written. */
export async function createOverlay(path: string, base: string, sizeBytes?: number): Promise<void> {
  await runCommand('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', base, '-F', 'qcow2', path, ...(sizeBytes ? [String(sizeBytes)] : [])]);
}

/** An empty disk (reads as zeros; takes space only as the guest writes). */
export async function createBlankDisk(path: string, sizeBytes: number): Promise<void> {
  await runCommand('qemu-img', ['create', '-q', '-f', 'qcow2', path, String(sizeBytes)]);
}

export async function virtualSize(path: string): Promise<number> {
  const info = JSON.parse(await runCommand('qemu-img', ['info', '--output=json', path])) as { 'virtual-size': number };
  return info['virtual-size'];
}
