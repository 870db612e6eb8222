import { join } from 'node:path';
import type { Command } from 'commander';
import { detectAcceleration, probeKernelOf } from '../../providers/libvirt/index.js';
import { configFor, Exit, EXIT } from '../context.js';

export async function vmAccel(program: Command, opts: { json?: boolean }): Promise<void> {
  const config = await configFor(program);
  const accel = await detectAcceleration({ kernel: await probeKernelOf(join(config.vmDir, 'images')) });
  if (opts.json) process.stdout.write(`${JSON.stringify(accel)}\n`);
  else process.stdout.write(`${accel.domainType === 'kvm' ? 'kvm' : 'tcg'}: ${accel.reason}\n`);
  if (accel.domainType !== 'kvm') throw new Exit(EXIT.failed);
}
