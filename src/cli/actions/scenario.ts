import type { Command } from 'commander';
import { InputError } from '../../util/errors.js';
import type { App } from '../../daemon/index.js';
import { proveScenario, type ScenarioTestReport } from '../../labs/index.js';
import { join } from 'node:path';
import { PACKAGE_ROOT } from '../../daemon/config.js';
import { newScenarioFolder, scenarioJsonSchema, scenarioWarnings } from '../../scenario/index.js';
import { appFor, Exit, EXIT, printError } from '../context.js';
import { connectionInfo, formatPoints } from '../output.js';
import { candidateKeyFile } from './lab.js';

export async function scenarioValidate(program: Command, files: string[], opts: { json?: boolean }): Promise<void> {
  const app = await appFor(program);
  try {
    type Line = { where?: string; message: string };
    const results: { file: string; ok: boolean; problems: Line[]; warnings: Line[] }[] = [];
    for (const file of files) {
      try {
        const loaded = await app.loadScenario(file);
        results.push({ file, ok: true, problems: [], warnings: scenarioWarnings(loaded) });
      } catch (err) {
        if (!(err instanceof InputError)) throw err;
        results.push({ file, ok: false, problems: err.details.length ? err.details : [{ message: err.message }], warnings: [] });
      }
    }
    if (opts.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    else {
      const say = (p: Line, file: string, prefix = '') => process.stdout.write(`${p.where ? `${p.where}: ` : `${file}: `}${prefix}${p.message}\n`);
      for (const r of results) {
        for (const w of r.warnings) say(w, r.file, 'warning: ');
        if (r.ok) process.stdout.write(`${r.file}: ok${r.warnings.length ? ` (${r.warnings.length} warning${r.warnings.length > 1 ? 's' : ''})` : ''}\n`);
        else for (const p of r.problems) say(p, r.file);
      }
    }
    if (results.some((r) => !r.ok)) throw new Exit(EXIT.failed);
  } finally {
    app.close();
  }
}

export async function scenarioTest(program: Command, file: string, opts: { json?: boolean; keep?: boolean }): Promise<void> {
  const app = await appFor(program);
  try {
    const loaded = await app.loadScenario(file);
    const proof = await proveScenario(app.labs, loaded, opts.json ? undefined : (line) => process.stderr.write(`… ${line}\n`), { keep: opts.keep });
    if (opts.json) process.stdout.write(`${JSON.stringify(proof, null, 2)}\n`);
    else {
      for (const report of proof.variants) printReport(app, report, proof.variants.length > 1);
      process.stdout.write(`${file}: scenario test ${proof.ok ? 'passed' : 'FAILED'}${proof.variants.length > 1 ? ` (${proof.variants.filter((v) => v.ok).length}/${proof.variants.length} variants)` : ''}\n`);
    }
    if (!proof.ok) throw new Exit(EXIT.failed);
  } catch (err) {
    if (err instanceof Exit) throw err;
    printError(err);
    throw new Exit(err instanceof InputError ? EXIT.failed : EXIT.usage);
  } finally {
    app.close();
  }
}

function printReport(app: App, report: ScenarioTestReport, named: boolean): void {
  const say = (line: string) => process.stdout.write(`${named ? '  ' : ''}${line}\n`);
  if (named) process.stdout.write(`variant ${Object.entries(report.draw).map(([pool, option]) => `${pool}=${option}`).join(', ')}: ${report.ok ? 'passed' : 'FAILED'}\n`);
  const broken = report.broken?.score;
  const solved = report.solved?.score;
  if (broken) say(`broken state: ${formatPoints(broken.points)}/${formatPoints(broken.maxPoints)} (${broken.percent}%)`);
  if (solved) say(`solved state: ${formatPoints(solved.points)}/${formatPoints(solved.maxPoints)} (${solved.percent}%)`);
  say(`timings: ${Object.entries(report.timings).map(([k, v]) => `${k.replace(/Ms$/, '')} ${(v / 1000).toFixed(1)} s`).join(', ')}`);
  for (const p of report.problems) say(`  - ${p}`);
  if (report.kept && report.labId) {
    const lab = app.labs.get(report.labId);
    say(`the lab is kept, as the solution left it:\n${connectionInfo(lab, candidateKeyFile(app, lab))}`);
    say(`grade it again with: examlab lab grade ${lab.id}\nremove it with: examlab lab down ${lab.id}`);
  }
}

export function scenarioNew(folder: string, opts: { id?: string }): void {
  try {
    const file = newScenarioFolder(join(PACKAGE_ROOT, 'scenarios', 'template'), folder, opts.id);
    process.stdout.write(
      [
        `${file}: new scenario, from the template (an image of its own in ${join(folder, 'images')}, a file it uploads in ${join(folder, 'files')})`,
        'next:',
        `  examlab scenario validate ${file}   # every problem at once, with its line`,
        `  examlab scenario test ${file}       # build it, break it, repair it, on the real engines`,
        'the trainer\'s guide: docs/trainers-guide.md',
        '',
      ].join('\n'),
    );
  } catch (err) {
    printError(err);
    throw new Exit(EXIT.failed);
  }
}

export function scenarioSchema(): void {
  process.stdout.write(`${JSON.stringify(scenarioJsonSchema(), null, 2)}\n`);
}
