import type { Command } from 'commander';
import type { App, Config, LabRecords } from '../daemon/index.js';
import { EnvironmentError, ExamlabError } from '../util/errors.js';

/**
 * Exit codes: 0 all good; 1 checks failed or input is invalid (a scenario, a
 * score under the pass mark); 2 usage or environment error (bad flag, engine
 * down, unknown lab).
 */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** Thrown by commands to end with a given code after printing their own output. */
export class Exit extends Error {
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

export interface GlobalOptions {
  data?: string;
  verbose?: boolean;
}

/*
 * Every command loads this module: the daemon's modules are imported by the
 * functions below, when a command runs, so that `--help` loads none of them.
 */

/** The configuration, from the global options. */
export async function configFor(program: Command, overrides: Partial<Config> = {}): Promise<Config> {
  const { loadConfig } = await import('../daemon/config.js');
  const opts = program.opts<GlobalOptions>();
  return loadConfig({ dataDir: opts.data, logLevel: opts.verbose ? 'debug' : undefined, ...overrides });
}

/** Makes the App for a command, from the global options (and what the command adds, such as the daemon's lab hosts). */
export async function appFor(program: Command, overrides: Partial<Config> = {}): Promise<App> {
  const [config, { createApp }, { createLogger }] = await Promise.all([configFor(program, overrides), import('../daemon/app.js'), import('../util/log.js')]);
  const verbose = program.opts<GlobalOptions>().verbose;
  const log = createLogger({ level: verbose ? 'debug' : (process.env.EXAMLAB_LOG_LEVEL ?? 'warn'), pretty: process.stderr.isTTY });
  return createApp(config, log);
}

/** The lab records alone, for a command that only reads them: no engine, service or logger is made. */
export async function labRecordsFor(program: Command): Promise<LabRecords> {
  const [config, { openLabRecords }] = await Promise.all([configFor(program), import('../daemon/records.js')]);
  return openLabRecords(config);
}

export function printError(err: unknown): void {
  if (err instanceof ExamlabError) {
    process.stderr.write(`error: ${err.message}\n`);
    for (const d of err.details) process.stderr.write(`  ${d.where ? `${d.where}: ` : ''}${d.message}\n`);
    if (err instanceof EnvironmentError) process.stderr.write('(environment problem: see README, "Requirements")\n');
  } else {
    process.stderr.write(`error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  }
}
