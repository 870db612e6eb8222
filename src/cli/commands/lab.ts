import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { App } from '../../daemon/index.js';
import type { LabRecord } from '../../labs/index.js';
import { parseScenario } from '../../scenario/index.js';
import { formatDateTime, hostTimeZone, type Language } from '../../util/dates.js';
import { appFor, Exit, EXIT } from '../context.js';
import { connectionInfo, scoreReport, table } from '../output.js';

/** Writes the candidate's private key where `ssh -i` can use it (the data dir is root's only). */
export function candidateKeyFile(app: App, lab: LabRecord): string {
  const dir = join(app.config.dataDir, 'labs', lab.id);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, 'candidate_key');
  writeFileSync(file, lab.secrets.candidatePrivateKey, { mode: 0o600 });
  return file;
}

function publicView(lab: LabRecord) {
  return {
    id: lab.id,
    scenario: lab.scenarioId,
    candidate: lab.candidateId,
    exam: lab.examId,
    state: lab.state,
    detail: lab.stateDetail,
    createdAt: lab.createdAt,
    machines: (lab.topology?.machines ?? []).map((m) => ({ name: m.name, provider: m.provider, hostname: m.hostname, address: m.address, loginUser: m.loginUser })),
  };
}

/** The language of the lab's scenario, for the dates printed about it. */
function languageOf(lab: LabRecord): Language {
  try {
    return parseScenario(lab.scenarioText, lab.scenarioFile).language;
  } catch {
    return 'fr';
  }
}

export function registerLabCommands(program: Command): void {
  const lab = program.command('lab').description('Run single labs by hand');

  lab
    .command('up')
    .description('Provision a lab from a scenario: machines, setup, faults; prints how to connect')
    .argument('<file>', 'scenario YAML file')
    .option('--candidate <id>', 'candidate id (varies the per-candidate values)')
    .option('--json', 'print the lab as JSON')
    .action(async (file: string, opts: { candidate?: string; json?: boolean }) => {
      const app = appFor(program);
      try {
        const loaded = await app.loadScenario(file);
        if (!opts.json) process.stderr.write(`… provisioning ${loaded.scenario.id}\n`);
        const record = await app.labs.up(loaded, { candidateId: opts.candidate });
        const keyFile = candidateKeyFile(app, record);
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ ...publicView(record), candidateKey: keyFile, candidatePassword: record.secrets.candidatePassword }, null, 2)}\n`);
        } else {
          process.stdout.write(`lab ${record.id} is ${record.state}\n${connectionInfo(record, keyFile)}\n`);
          process.stdout.write(`grade it with: examlab lab grade ${record.id}\nremove it with: examlab lab down ${record.id}\n`);
        }
      } finally {
        app.close();
      }
    });

  lab
    .command('ls')
    .description('List labs')
    .option('--all', 'include destroyed labs')
    .option('--json', 'print as JSON')
    .action((opts: { all?: boolean; json?: boolean }) => {
      const app = appFor(program);
      try {
        const labs = app.labs.list({ includeDestroyed: opts.all });
        if (opts.json) process.stdout.write(`${JSON.stringify(labs.map(publicView), null, 2)}\n`);
        else if (!labs.length) process.stdout.write('no labs\n');
        else process.stdout.write(`${table([['ID', 'SCENARIO', 'CANDIDATE', 'STATE', 'CREATED'], ...labs.map((l) => [l.id, l.scenarioId, l.candidateId ?? '-', l.state, formatDateTime(l.createdAt, { language: languageOf(l), timeZone: hostTimeZone() })])])}\n`);
      } finally {
        app.close();
      }
    });

  lab
    .command('show')
    .description('Show a lab: state, machines, how the candidate connects, and the instructions as the candidate reads them')
    .argument('<id>', 'lab id')
    .option('--lang <language>', 'language of the instructions (fr, en)')
    .option('--json', 'print as JSON')
    .action((id: string, opts: { lang?: string; json?: boolean }) => {
      const app = appFor(program);
      try {
        const record = app.labs.get(id);
        const scenario = record.topology ? app.labs.render(record) : undefined;
        const language = opts.lang ?? scenario?.language ?? 'fr';
        const instructions = scenario?.instructions[language as 'fr' | 'en'];
        if (opts.json) {
          process.stdout.write(`${JSON.stringify({ ...publicView(record), events: app.labs.events(id), instructions }, null, 2)}\n`);
          return;
        }
        process.stdout.write(`lab ${record.id} (${record.scenarioId}) is ${record.state}${record.stateDetail ? `: ${record.stateDetail}` : ''}\n`);
        if (record.topology) {
          process.stdout.write(`${table(record.topology.machines.map((m) => [m.name, m.hostname, m.address, m.provider]), { indent: '  ' })}\n`);
          if (record.state !== 'destroyed') process.stdout.write(`${connectionInfo(record, candidateKeyFile(app, record))}\n`);
        }
        if (instructions) process.stdout.write(`\n${instructions}`);
        else if (scenario) process.stdout.write(`\n(no instructions in "${language}")\n`);
      } finally {
        app.close();
      }
    });

  lab
    .command('grade')
    .description('Grade a lab now; exit 1 when the score is under the pass mark or a check could not be decided')
    .argument('<id>', 'lab id')
    .option('--json', 'print the run as JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      const app = appFor(program);
      try {
        const run = await app.labs.grade(id);
        const score = run.score;
        if (!score) throw new Error(`run ${run.id} has no score`);
        if (opts.json) process.stdout.write(`${JSON.stringify({ lab: id, run: run.id, score, results: run.results }, null, 2)}\n`);
        else process.stdout.write(`${scoreReport(run.results, score)}\n`);
        if (!score.passed || !score.complete) throw new Exit(EXIT.failed);
      } finally {
        app.close();
      }
    });

  lab
    .command('down')
    .description('Destroy a lab: no container, network or volume of it survives')
    .argument('<id>', 'lab id')
    .action(async (id: string) => {
      const app = appFor(program);
      try {
        const record = await app.labs.destroy(id);
        process.stdout.write(`lab ${record.id} destroyed\n`);
      } finally {
        app.close();
      }
    });
}

export { Exit };
