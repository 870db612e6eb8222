import type Dockerode from 'dockerode';
import { EnvironmentError, TimeoutError } from '../../util/errors.js';
import { withTimeout } from '../../util/retry.js';

/**
 * Runs a one-shot container on the engine's host to its end, then removes
 * it (nothing of examlab stays there): it must exit 0, else the error says
 * `what` exited with its status and quotes its output. `timeoutMs` bounds the wait.
 */
export async function runOnce(docker: Dockerode, options: Dockerode.ContainerCreateOptions, what: string, timeoutMs?: number): Promise<void> {
  const container = await docker.createContainer(options);
  try {
    await container.start();
    const waiting = container.wait() as Promise<{ StatusCode: number }>;
    const { StatusCode } =
      timeoutMs === undefined
        ? await waiting
        : await withTimeout(waiting, timeoutMs, what).catch((err: unknown) => {
            throw err instanceof TimeoutError ? new EnvironmentError(`${what} did not finish within ${timeoutMs / 1000} s`) : err;
          });
    if (StatusCode !== 0) {
      const logs = (await container.logs({ stdout: true, stderr: true })) as Buffer;
      // The log comes framed (an 8-byte header a chunk): the control bytes of the headers go.
      const output = logs.toString('utf8').replace(/[\x00-\x08]/g, '').trim();
      throw new EnvironmentError(`${what} exited ${StatusCode}${output ? `: ${output}` : ''}`);
    }
  } finally {
    await container.remove({ force: true }).catch(() => undefined);
  }
}
