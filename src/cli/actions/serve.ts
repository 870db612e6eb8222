import type { Command } from 'commander';
import { createApp, Daemon, ensureDemoExam, labHostsOf, loadConfig, loadDaemonConfig, watchDemo } from '../../daemon/index.js';
import { errorMessage, InputError } from '../../util/errors.js';
import { createLogger } from '../../util/log.js';
import type { GlobalOptions } from '../context.js';

export interface ServeOptions {
  port?: string;
  sshPort?: string;
  host?: string;
  config?: string;
  demo?: boolean;
}

const port = (value: string | undefined, flag: string): number | undefined => {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InputError(`${flag} must be a port number (0-65535), got "${value}"`);
  return n;
};

export async function serve(program: Command, opts: ServeOptions): Promise<void> {
  const global = program.opts<GlobalOptions>();
  const { config, file } = loadDaemonConfig(opts.config);
  const httpPort = port(opts.port, '--port');
  const sshPort = port(opts.sshPort, '--ssh-port');
  if (httpPort !== undefined) config.http.port = httpPort;
  if (sshPort !== undefined) config.ssh.port = sshPort;
  if (opts.host) config.http.host = config.ssh.host = opts.host;
  const log = createLogger({ level: global.verbose ? 'debug' : (process.env.EXAMLAB_LOG_LEVEL ?? 'info'), pretty: process.stderr.isTTY });
  const app = createApp(loadConfig({ dataDir: global.data ?? config.dataDir, labHosts: labHostsOf(config) }), log);
  const daemon = new Daemon(app, config, log);
  let started;
  try {
    started = await daemon.start();
  } catch (err) {
    await daemon.stop().catch(() => app.close());
    throw err;
  }
  const say = (line = '') => process.stdout.write(`${line}\n`);
  say(`examlab daemon: data ${app.config.dataDir}${file ? `, configuration ${file}` : ''}`);
  say(`  API          ${started.httpUrl}/api   (OpenAPI: ${started.httpUrl}/api/openapi.json)`);
  say(`  SSH gateway  port ${started.ssh.port}, host key ${started.hostKeyFingerprint}`);
  const r = started.recovery;
  if (r.adopted || r.rebuilt || r.provisioningResumed || r.gradingResumed || r.cleaned || r.outageSeconds) {
    say(`  recovered    ${r.adopted} lab(s) adopted, ${r.provisioningResumed} being built, ${r.gradingResumed} being graded, ${r.rebuilt} rebuilt, ${r.cleaned} cleaned; candidates got ${r.outageSeconds} s back`);
  }
  const chain = started.audit;
  say(
    chain.ok
      ? `  audit log    ${chain.checked} record(s), chain intact${chain.anchor ? `, anchor ${chain.anchor.text}` : ''}`
      : `  audit log    BROKEN${chain.brokenAt ? ` at record ${chain.brokenAt}` : ''}: ${chain.problem} (GET /api/audit)`,
  );
  for (const t of started.newTokens) say(`  ${t.role} token (shown once, keep it): ${t.token}`);

  if (opts.demo) {
    const demo = await ensureDemoExam(daemon);
    say();
    say(`Demo exam ${demo.examId}${demo.resumed ? ' (picked up where it was; new candidate tokens)' : ': the labs are being built'}; follow it with`);
    say(`  curl -s -H 'Authorization: Bearer ${demo.operatorToken}' ${started.httpUrl}/api/exams/${demo.examId}`);
    say(`Operator token for this demo: ${demo.operatorToken}`);
    say('Each candidate connects with their own token as the SSH password (it opens only their lab):');
    for (const c of demo.candidates) say(`  ${c.name.padEnd(14)} ssh -p ${started.ssh.port} ${c.id}@${started.sshHost}   token ${c.token}`);
    say(`Their page (time left, instructions, sudo password, report): ${started.httpUrl}/candidate.html`);
    say(`End the exam (freeze, grade) with: curl -s -X POST -H 'Authorization: Bearer ${demo.operatorToken}' ${started.httpUrl}/api/exams/${demo.examId}/end`);
    say('Ctrl-C stops the daemon; the labs keep running and the next start picks them up.');
    say();
    watchDemo(daemon, demo.examId, say);
  }

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) {
        log.warn({ signal }, 'second signal: exiting now');
        process.exit(1);
      }
      stopping = true;
      log.info({ signal }, 'stopping');
      daemon.stop().then(resolve, (err) => {
        log.error({ err: errorMessage(err) }, 'stop failed');
        resolve();
      });
    };
    process.on('SIGTERM', () => stop('SIGTERM'));
    process.on('SIGINT', () => stop('SIGINT'));
  });
  process.exit(0);
}
