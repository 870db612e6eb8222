import { writeFileSync } from 'node:fs';
import { makeDirs } from '../../util/dirs.js';
import { join } from 'node:path';
import type { Command } from 'commander';
import type { App } from '../../daemon/index.js';
import type { LabRecord } from '../../labs/index.js';
import { formatDateTime, hostTimeZone, type Language } from '../../util/dates.js';
import { InputError } from '../../util/errors.js';
import type { FaultDraw, Scenario } from '../../scenario/index.js';
import { appFor, Exit, EXIT, labRecordsFor } from '../context.js';
import { connectionInfo, scoreReport, table } from '../output.js';

/** Writes the candidate's private key where `ssh -i` can use it (the data dir is root's only). */
export function candidateKeyFile(app: App, lab: LabRecord): string {
  const dir = join(app.config.dataDir, 'labs', lab.id);
  makeDirs(dir);
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

/**
 * The language of each lab's scenario, for the dates printed about it. The
 * scenario parser is loaded only when there is a lab to print, and a text is
 * parsed once however many labs of an exam share it.
 */
async function scenarioLanguages(): Promise<(lab: LabRecord) => Language> {
  const { parseScenario } = await import('../../scenario/index.js');
  const known = new Map<string, Language>();
  return (lab) => {
    let language = known.get(lab.scenarioText);
    if (!language) {
      try {
        language = parseScenario(lab.scenarioText, lab.scenarioFile).language;
      } catch {
        language = 'fr';
      }
      known.set(lab.scenarioText, language);
    }
    return language;
  };
}

export async function labUp(program: Command, file: string, opts: { candidate?: string; fault?: string[]; json?: boolean }): Promise<void> {
  const app = await appFor(program);
  try {
    const loaded = await app.loadScenario(file);
    const draw = opts.fault ? faultChoice(loaded.scenario, opts.fault) : undefined;
    if (!opts.json) process.stderr.write(`… provisioning ${loaded.scenario.id}\n`);
    const record = await app.labs.up(loaded, { candidateId: opts.candidate, draw });
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
}

/** `--fault pool=option` as a draw: every pool named once, with one of its options. */
function faultChoice(scenario: Scenario, given: readonly string[]): FaultDraw {
  const draw: FaultDraw = {};
  for (const item of given) {
    const [pool, option] = item.split('=', 2);
    const found = scenario.faultPools.find((p) => p.id === pool);
    if (!found) throw new InputError(`--fault ${item}: no fault pool "${pool}"; pools: ${scenario.faultPools.map((p) => p.id).join(', ') || '(none)'}`);
    if (!found.options.some((o) => o.id === option)) throw new InputError(`--fault ${item}: pool "${pool}" has no option "${option ?? ''}"; options: ${found.options.map((o) => o.id).join(', ')}`);
    draw[found.id] = option as string;
  }
  const missing = scenario.faultPools.filter((p) => !(p.id in draw)).map((p) => p.id);
  if (missing.length) throw new InputError(`--fault: name an option for every pool; missing: ${missing.join(', ')}`);
  return draw;
}

/** Reads the store only: listing labs starts no engine. */
export async function labLs(program: Command, opts: { all?: boolean; json?: boolean }): Promise<void> {
  const records = await labRecordsFor(program);
  try {
    const labs = records.list({ includeDestroyed: opts.all });
    if (opts.json) process.stdout.write(`${JSON.stringify(labs.map(publicView), null, 2)}\n`);
    else if (!labs.length) process.stdout.write('no labs\n');
    else {
      const languageOf = await scenarioLanguages();
      process.stdout.write(`${table([['ID', 'SCENARIO', 'CANDIDATE', 'STATE', 'CREATED'], ...labs.map((l) => [l.id, l.scenarioId, l.candidateId ?? '-', l.state, formatDateTime(l.createdAt, { language: languageOf(l), timeZone: hostTimeZone() })])])}\n`);
    }
  } finally {
    records.close();
  }
}

export async function labShow(program: Command, id: string, opts: { lang?: string; json?: boolean }): Promise<void> {
  const app = await appFor(program);
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
}

export async function labGrade(program: Command, id: string, opts: { json?: boolean }): Promise<void> {
  const app = await appFor(program);
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
}

export async function labDown(program: Command, id: string): Promise<void> {
  const app = await appFor(program);
  try {
    const record = await app.labs.destroy(id);
    process.stdout.write(`lab ${record.id} destroyed\n`);
  } finally {
    app.close();
  }
}
