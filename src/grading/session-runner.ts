import { randomBytes } from 'node:crypto';
import type { UploadingSession } from '../remote/index.js';
import { EnvironmentError } from '../util/errors.js';
import { withTimeout } from '../util/retry.js';
import type { MachineRunner } from './machine-run.js';
import { runPowershellScripts } from './powershell-run.js';
import { MAX_PROBE_OUTPUT } from './probe-protocol.js';
import type { Toolbox } from './toolbox.js';

/** Time for the transport itself (connection, upload, teardown) on top of the probe's own deadline. */
const TRANSPORT_MS = 20_000;

/**
 * Asking a machine over a root session (a VM): the probe is uploaded fresh
 * into a new private directory for each run and started with its work on
 * stdin. Every step has a deadline, so a machine that stalls the session
 * (a slow SFTP server, a shell that never returns) costs a bounded time.
 */
/** `open` bounds its own connection time. */
export function sessionRunner(open: () => Promise<UploadingSession>, toolbox: () => Promise<Toolbox>): MachineRunner {
  return {
    async probe(work, { deadlineMs }) {
      const { probe } = await toolbox();
      const session = await open();
      try {
        const dir = await withTimeout(
          session.uploadToNewDir(`.examlab-${randomBytes(6).toString('hex')}`, [{ name: 'examlab-probe', data: probe, mode: 0o700 }]),
          TRANSPORT_MS,
          'uploading the grader\'s probe',
        );
        const result = await session.exec(`${dir}/examlab-probe serve; rm -rf ${dir}`, { stdin: work, timeoutMs: deadlineMs + TRANSPORT_MS, maxOutputBytes: MAX_PROBE_OUTPUT });
        if (result.truncated) throw new EnvironmentError(`the machine sent more than ${MAX_PROBE_OUTPUT} bytes`);
        return result.stdoutBytes;
      } finally {
        session.close();
      }
    },
    async runScripts(scripts) {
      const session = await open();
      try {
        return await runPowershellScripts(session, scripts);
      } finally {
        session.close();
      }
    },
  };
}
