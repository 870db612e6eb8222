import type { Command } from 'commander';
import { createApp, loadConfig, type App } from '../daemon/index.js';
import { EnvironmentError, ExamlabError } from '../util/errors.js';
import { createLogger } from '../util/log.js';

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

/** Makes the App for a command, from the global options. */
export function appFor(program: Command): App {
  const opts = program.opts<GlobalOptions>();
  const config = loadConfig({ dataDir: opts.data, logLevel: opts.verbose ? 'debug' : undefined });
  const log = createLogger({ level: opts.verbose ? 'debug' : (process.env.EXAMLAB_LOG_LEVEL ?? 'warn'), pretty: process.stderr.isTTY });
  return createApp(config, log);
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
