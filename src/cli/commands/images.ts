import type { Command } from 'commander';

/** What the image commands do, loaded when one runs. */
const actions = () => import('../actions/images.js');

export function registerImageCommands(program: Command): void {
  const images = program.command('images').description('Build the lab images offline (debootstrap, Dockerfiles, VM disks)');

  images
    .command('build')
    .description('Build the named images (all by default: Docker images, then VM images); only what changed is rebuilt')
    .argument('[names...]', 'image names (folders of images/)')
    .option('--force', 'rebuild the named images even when their tag exists')
    .option('--scenario <file>', 'the images this scenario\'s machines run, those of the images/ folder beside it included')
    .action(async (names: string[], opts: { force?: boolean; scenario?: string }) => (await actions()).imagesBuild(program, names, opts));

  images
    .command('ls')
    .description('List the catalog with each image\'s current tag and whether it is built')
    .option('--json', 'print as JSON')
    .option('--scenario <file>', 'also the images of the images/ folder beside this scenario')
    .action(async (opts: { json?: boolean; scenario?: string }) => (await actions()).imagesLs(program, opts));
}
