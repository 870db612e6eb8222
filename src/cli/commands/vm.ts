import type { Command } from 'commander';
import { detectAcceleration } from '../../providers/libvirt/index.js';
import { Exit, EXIT } from '../context.js';

export function registerVmCommands(program: Command): void {
  const vm = program.command('vm').description('Virtual machines (libvirt/QEMU) on this host');

  vm.command('accel')
    .description('Say whether KVM really runs guests here (a probe guest is booted) or VMs run under TCG; exit 0 only for KVM')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const accel = await detectAcceleration();
      if (opts.json) process.stdout.write(`${JSON.stringify(accel)}\n`);
      else process.stdout.write(`${accel.domainType === 'kvm' ? 'kvm' : 'tcg'}: ${accel.reason}\n`);
      if (accel.domainType !== 'kvm') throw new Exit(EXIT.failed);
    });
}
