import type { Command } from 'commander';
import { ScenarioLibrary } from '../../scenario/index.js';
import { appFor } from '../context.js';
import { table } from '../output.js';

export async function doctor(program: Command, files: string[], opts: { json?: boolean; config?: string }): Promise<void> {
  const { loadDaemonConfig, labHostsOf } = await import('../../daemon/index.js');
  const hosts = labHostsOf(loadDaemonConfig(opts.config).config);
  const app = await appFor(program, { labHosts: hosts });
  const where = hosts.length ? `the ${hosts.length} lab hosts` : 'this host';
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
        process.stdout.write(`${r.scenario}: the engine cannot say what ${where} can hold\n\n`);
        continue;
      }
      const labs = r.capacity.labs === Number.MAX_SAFE_INTEGER ? 'an unknown number of' : String(r.capacity.labs);
      process.stdout.write(`${r.scenario}: ${labs} more labs fit on ${where} (limited by ${r.capacity.limitedBy})\n`);
      process.stdout.write(`${table([[hosts.length ? 'HOST' : 'RESOURCE', 'A LAB TAKES', hosts.length ? 'IT HAS' : 'THE HOST HAS', 'LABS'], ...r.capacity.lines.map((l) => [l.resource, l.perLab, l.available, l.labs === undefined ? '-' : String(l.labs)])])}\n\n`);
    }
  } finally {
    app.close();
  }
}
