import type { Command } from 'commander';
import { ScenarioLibrary } from '../../scenario/index.js';
import { appFor } from '../context.js';
import { table } from '../output.js';

export async function doctor(program: Command, files: string[], opts: { json?: boolean }): Promise<void> {
  const app = await appFor(program);
  try {
    const chosen = files.length ? files : new ScenarioLibrary([app.config.scenariosDir]).list().map((e) => e.file);
    const reports = [];
    for (const file of chosen) {
      const loaded = await app.loadScenario(file);
      reports.push({ scenario: loaded.scenario.id, file, capacity: await app.labs.capacity(loaded) });
    }
    if (opts.json) {
      process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
      return;
    }
    for (const r of reports) {
      if (!r.capacity) {
        process.stdout.write(`${r.scenario}: the engine cannot say what this host holds\n\n`);
        continue;
      }
      process.stdout.write(`${r.scenario}: ${r.capacity.labs} more labs fit on this host (limited by ${r.capacity.limitedBy})\n`);
      process.stdout.write(`${table([['RESOURCE', 'A LAB TAKES', 'THE HOST HAS', 'LABS'], ...r.capacity.lines.map((l) => [l.resource, l.perLab, l.available, l.labs === undefined ? '-' : String(l.labs)])])}\n\n`);
    }
  } finally {
    app.close();
  }
}
