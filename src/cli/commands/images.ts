import type { Command } from 'commander';
import { appFor } from '../context.js';
import { table } from '../output.js';

export function registerImageCommands(program: Command): void {
  const images = program.command('images').description('Build the lab images offline (debootstrap, Dockerfiles, VM disks)');

  images
    .command('build')
    .description('Build the named images (all by default: Docker images, then VM images); only what changed is rebuilt')
    .argument('[names...]', 'image names (folders of images/)')
    .option('--force', 'rebuild the named images even when their tag exists')
    .action(async (names: string[], opts: { force?: boolean }) => {
      const app = appFor(program);
      try {
        await app.images.build(names, { force: opts.force, onBuilt: (name, image) => process.stdout.write(`${name}: ${image.ref}\n`) });
      } finally {
        app.close();
      }
    });

  images
    .command('ls')
    .description('List the catalog with each image\'s current tag and whether it is built')
    .option('--json', 'print as JSON')
    .action(async (opts: { json?: boolean }) => {
      const app = appFor(program);
      try {
        const rows = await app.images.list();
        if (opts.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        else process.stdout.write(`${table([['NAME', 'PROVIDER', 'TAG', 'BUILT', 'FROM'], ...rows.map((r) => [r.name, r.provider, r.tag, r.built ? 'yes' : 'no', r.from ?? '-'])])}\n`);
      } finally {
        app.close();
      }
    });
}
