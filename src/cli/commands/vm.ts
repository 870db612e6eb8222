import type { Command } from 'commander';

export function registerVmCommands(program: Command): void {
  const vm = program.command('vm').description('Virtual machines (libvirt/QEMU) on this host');

  vm.command('accel')
    .description('Say whether KVM really runs guests here (a VM image\'s Linux kernel is booted, or a tiny probe guest before any image is built) or VMs run under TCG; exit 0 only for KVM')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => (await import('../actions/vm.js')).vmAccel(program, opts));
}
