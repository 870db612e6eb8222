import { dirname } from 'node:path';
import type { Command } from 'commander';
import { appFor } from '../context.js';
import { table } from '../output.js';

export async function imagesBuild(program: Command, names: string[], opts: { force?: boolean; scenario?: string }): Promise<void> {
  const app = await appFor(program);
  try {
    // For a scenario: the images its machines run (its own folder's included), unless names are given.
    const wanted = opts.scenario && !names.length ? [...new Set((await app.loadScenario(opts.scenario)).scenario.machines.flatMap((m) => (m.image ? [m.image] : [])))] : names;
    const scenarioDir = opts.scenario ? dirname(opts.scenario) : undefined;
    await app.images.build(wanted, { force: opts.force, scenarioDir, onBuilt: (name, image) => process.stdout.write(`${name}: ${image.ref}\n`) });
  } finally {
    app.close();
  }
}

export async function imagesLs(program: Command, opts: { json?: boolean; scenario?: string }): Promise<void> {
  const app = await appFor(program);
  try {
    const rows = await app.images.list(opts.scenario ? dirname(opts.scenario) : undefined);
    if (opts.json) process.stdout.write(`${JSON.stringify(rows, null, 2)}\n`);
    else process.stdout.write(`${table([['NAME', 'PROVIDER', 'TAG', 'BUILT', 'FROM'], ...rows.map((r) => [r.name, r.provider, r.tag, r.built ? 'yes' : 'no', r.from ?? '-'])])}\n`);
  } finally {
    app.close();
  }
}
