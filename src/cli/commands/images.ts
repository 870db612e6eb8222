import type { Command } from 'commander';
import { appFor } from '../main.js';
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
        const catalog = await app.catalog();
        const wanted = names.length ? names : catalog.names().sort((a, b) => Number(isVm(a)) - Number(isVm(b)));
        function isVm(name: string) {
          return catalog.get(name).definition.provider === 'libvirt';
        }
        for (const name of wanted) {
          if (isVm(name)) {
            const image = await (await app.vmImages()).ensure(name, { force: opts.force });
            process.stdout.write(`${name}: ${image.disk}\n`);
          } else {
            const image = await (await app.dockerImages()).ensure(name, { force: opts.force });
            process.stdout.write(`${name}: ${image.tag}\n`);
          }
        }
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
        const catalog = await app.catalog();
        const rows = await Promise.all(
          catalog.names().map(async (n) => {
            const image = catalog.get(n);
            const built = image.definition.provider === 'docker' ? await (await app.dockerImages()).isPresent(image.tag) : Boolean(await (await app.vmImages()).find(n));
            return { name: n, provider: image.definition.provider, tag: image.tag, built, from: image.parent?.name };
          }),
        );
        if (opts.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
        else process.stdout.write(`${table([['NAME', 'PROVIDER', 'TAG', 'BUILT', 'FROM'], ...rows.map((r) => [r.name, r.provider, r.tag, r.built === undefined ? '-' : r.built ? 'yes' : 'no', r.from ?? '-'])])}\n`);
      } finally {
        app.close();
      }
    });
}
