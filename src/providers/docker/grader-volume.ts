import type Dockerode from 'dockerode';
import { Mutex } from '../../util/concurrency.js';
import { EnvironmentError, errorMessage } from '../../util/errors.js';
import { GRADER_TOOLS_DIR } from '../types.js';
import { tarOf } from './tar.js';

export const GRADER_VOLUME_LABEL = 'examlab.grader';

/** The grader's probe, as the engine receives it. */
export interface GraderTools {
  probe: Buffer;
  /** Content hash: names the volume, so a new probe is a new volume and a volume is never changed in use. */
  hash: string;
}

/**
 * The volume that carries the grader's probe into every container,
 * mounted read-only: made once per probe version through the engine's API
 * (so a remote engine gets it the same way), and checked before first use.
 */
export class GraderVolume {
  private readonly lock = new Mutex();
  private ready?: string;

  constructor(
    private readonly docker: Dockerode,
    private readonly tools: () => Promise<GraderTools>,
  ) {}

  /** The volume's name, filled and checked; `image` is any image present on the engine, used to reach the volume. */
  ensure(image: string): Promise<string> {
    return this.lock.run(async () => {
      if (this.ready) return this.ready;
      const tools = await this.tools();
      const name = `examlab-grader-${tools.hash.slice(0, 16)}`;
      await this.docker.createVolume({ Name: name, Labels: { [GRADER_VOLUME_LABEL]: tools.hash } });
      const helper = await this.docker.createContainer({
        Image: image,
        Cmd: ['/bin/true'],
        Labels: { [GRADER_VOLUME_LABEL]: tools.hash },
        HostConfig: { Mounts: [{ Type: 'volume', Source: name, Target: GRADER_TOOLS_DIR }], NetworkMode: 'none' },
      });
      try {
        if (!(await holdsProbe(helper, tools.probe.length))) {
          await helper.putArchive(await tarOf([{ path: 'examlab-probe', content: tools.probe, mode: 0o755 }]), { path: GRADER_TOOLS_DIR });
          if (!(await holdsProbe(helper, tools.probe.length))) throw new EnvironmentError(`the grader's volume ${name} does not hold the probe after it was written`);
        }
      } catch (err) {
        throw new EnvironmentError(`cannot prepare the grader's volume ${name}: ${errorMessage(err)}`);
      } finally {
        await helper.remove({ force: true }).catch(() => undefined);
      }
      this.ready = name;
      return name;
    });
  }
}

/** Whether the volume (seen through `helper`) holds a probe of this size: the engine's stat of the path, no copy. */
async function holdsProbe(helper: Dockerode.Container, size: number): Promise<boolean> {
  try {
    const response = (await helper.infoArchive({ path: `${GRADER_TOOLS_DIR}/examlab-probe` })) as { headers?: Record<string, string | undefined>; resume?: () => void };
    response.resume?.();
    const header = response.headers?.['x-docker-container-path-stat'];
    if (!header) return false;
    const stat = JSON.parse(Buffer.from(header, 'base64').toString('utf8')) as { size?: number };
    return stat.size === size;
  } catch {
    return false;
  }
}
