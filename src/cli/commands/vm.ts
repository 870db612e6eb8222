import type { Command } from 'commander';
import { join } from 'node:path';
import { loadConfig } from '../../daemon/index.js';
import { detectAcceleration, probeKernelOf } from '../../providers/libvirt/index.js';
import { Exit, EXIT, type GlobalOptions } from '../context.js';

export function registerVmCommands(program: Command): void {
  const vm = program.command('vm').description('Virtual machines (libvirt/QEMU) on this host');

  vm.command('accel')
    .description('Say whether KVM really runs guests here (a VM image\'s Linux kernel is booted, or a tiny probe guest before any image is built) or VMs run under TCG; exit 0 only for KVM')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const config = loadConfig({ dataDir: program.opts<GlobalOptions>().data });
      const accel = await detectAcceleration({ kernel: await probeKernelOf(join(config.vmDir, 'images')) });
      if (opts.json) process.stdout.write(`${JSON.stringify(accel)}\n`);
      else process.stdout.write(`${accel.domainType === 'kvm' ? 'kvm' : 'tcg'}: ${accel.reason}\n`);
      if (accel.domainType !== 'kvm') throw new Exit(EXIT.failed);
    });
}
