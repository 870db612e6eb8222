import type { Command } from 'commander';
import { appFor } from '../context.js';
import { table } from '../output.js';

export async function imagesBuild(program: Command, names: string[], opts: { force?: boolean }): Promise<void> {
  const app = await appFor(program);
  try {
    await app.images.build(names, { force: opts.force, onBuilt: (name, image) => process.stdout.write(`${name}: ${image.ref}\n`) });
  } finally {
    app.close();
  }
}

export async function imagesLs(program: Command, opts: { json?: boolean }): Promise<void> {
  const app = await appFor(program);
  try {
    const rows = await app.images.list();
    if (opts.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    else process.stdout.write(`${table([['NAME', 'PROVIDER', 'TAG', 'BUILT', 'FROM'], ...rows.map((r) => [r.name, r.provider, r.tag, r.built ? 'yes' : 'no', r.from ?? '-'])])}\n`);
  } finally {
    app.close();
  }
}
