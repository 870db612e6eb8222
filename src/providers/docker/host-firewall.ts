import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { EnvironmentError, errorMessage } from '../../util/errors.js';

const run = promisify(execFile);

/** Every lab bridge is named exl…; iptables matches them all with this wildcard. */
export const LAB_BRIDGE_WILDCARD = 'exl+';
const CHAIN = 'EXAMLAB-INPUT';

/**
 * Lab machines must not reach the host (the daemon, its SSH, anything
 * listening): traffic coming in from a lab bridge is dropped unless it
 * answers a connection the host opened (the grader's SSH). Lab-to-lab and
 * lab-to-outside traffic is already dropped by Docker for internal networks.
 * Idempotent: safe to call at every start.
 */
export async function ensureHostIsolation(): Promise<void> {
  for (const tool of ['iptables', 'ip6tables']) {
    try {
      await run(tool, ['-w', '-N', CHAIN]).catch(() => undefined); // exists already
      await run(tool, ['-w', '-F', CHAIN]);
      await run(tool, ['-w', '-A', CHAIN, '-m', 'conntrack', '--ctstate', 'ESTABLISHED,RELATED', '-j', 'RETURN']);
      await run(tool, ['-w', '-A', CHAIN, '-j', 'DROP']);
      const present = await run(tool, ['-w', '-C', 'INPUT', '-i', LAB_BRIDGE_WILDCARD, '-j', CHAIN]).then(
        () => true,
        () => false,
      );
      if (!present) await run(tool, ['-w', '-I', 'INPUT', '1', '-i', LAB_BRIDGE_WILDCARD, '-j', CHAIN]);
    } catch (err) {
      if (tool === 'ip6tables' && /ENOENT/.test(errorMessage(err))) continue;
      throw new EnvironmentError(
        `cannot install the firewall rule that keeps labs away from this host (${tool}): ${errorMessage(err)}. examlab must run as root on a host with iptables.`,
      );
    }
  }
}
