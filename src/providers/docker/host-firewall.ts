import { execFile } from 'node:child_process';
import type Dockerode from 'dockerode';
import { promisify } from 'node:util';
import { EnvironmentError, errorMessage } from '../../util/errors.js';

/** Runs one firewall tool with its arguments; rejects when it exits non-zero. */
export type FirewallRunner = (tool: string, args: string[]) => Promise<unknown>;

const execFileAsync = promisify(execFile);
const runTool: FirewallRunner = (tool, args) => execFileAsync(tool, args);

/** Every lab bridge is named exl…; iptables matches them all with this wildcard. */
export const LAB_BRIDGE_WILDCARD = 'exl+';
const CHAIN = 'EXAMLAB-INPUT';

/**
 * Frames bridged inside one lab bridge, from one port of it to another: the
 * lab's own network segment. With bridge netfilter on, they cross the host's
 * FORWARD chain, where Docker's isolation of internal networks drops every
 * packet whose source or destination lies outside the network's subnet. A
 * segment legitimately carries such packets: DHCP (from 0.0.0.0, to
 * 255.255.255.255) and what a lab's own router forwards. Accepted in
 * DOCKER-USER, before that isolation. Routed traffic between two bridges is
 * not bridged and stays under Docker's rules; bridged frames never reach the
 * host's INPUT chain.
 */
export const LAB_SEGMENT_RULE = ['-i', LAB_BRIDGE_WILDCARD, '-m', 'physdev', '--physdev-is-bridged', '-j', 'ACCEPT'];

/**
 * Lab machines must not reach the host (the daemon, its SSH, anything
 * listening): traffic coming in from a lab bridge is dropped unless it
 * answers a connection the host opened (the grader's SSH). Lab-to-lab and
 * lab-to-outside traffic is already dropped by Docker for internal networks;
 * a lab's own segment carries what any Ethernet segment does (LAB_SEGMENT_RULE).
 * Idempotent: safe to call at every start. Returns warnings (what could not
 * be installed without making labs less isolated).
 */
export async function ensureHostIsolation(run: FirewallRunner = runTool): Promise<string[]> {
  const warnings: string[] = [];
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
  const warning = await acceptLabSegments(run);
  if (warning) warnings.push(warning);
  return warnings;
}

/** Installs LAB_SEGMENT_RULE first in DOCKER-USER (IPv4: DHCP); none when Docker manages no iptables. */
async function acceptLabSegments(run: FirewallRunner): Promise<string | undefined> {
  const dockerManaged = await run('iptables', ['-w', '-S', 'DOCKER-USER']).then(
    () => true,
    () => false,
  );
  if (!dockerManaged) return undefined;
  const present = await run('iptables', ['-w', '-C', 'DOCKER-USER', ...LAB_SEGMENT_RULE]).then(
    () => true,
    () => false,
  );
  if (present) return undefined;
  try {
    await run('iptables', ['-w', '-I', 'DOCKER-USER', '1', ...LAB_SEGMENT_RULE]);
    return undefined;
  } catch (err) {
    return `cannot accept frames inside a lab's own bridge before Docker's isolation (iptables physdev match): DHCP and lab routers will not work: ${errorMessage(err)}`;
  }
}

/**
 * The firewall of an engine's own host when that host is another machine:
 * each tool runs in a one-shot container entering the host's mount and
 * network namespaces (its own iptables binary, its own rules), removed
 * once done: nothing of examlab stays on the host. `image` is any image
 * on that engine with nsenter (util-linux: every Debian image).
 */
export function engineHostFirewall(docker: Dockerode, image: string): FirewallRunner {
  return async (tool, args) => {
    const container = await docker.createContainer({
      Image: image,
      Entrypoint: ['nsenter'],
      Cmd: ['-t', '1', '-m', '-n', '--', tool, ...args],
      Labels: { 'examlab.managed': 'true', 'examlab.role': 'host-firewall' },
      HostConfig: { PidMode: 'host', NetworkMode: 'host', CapDrop: ['ALL'], CapAdd: ['SYS_ADMIN', 'SYS_PTRACE', 'SYS_CHROOT', 'NET_ADMIN', 'NET_RAW'], SecurityOpt: ['apparmor=unconfined'] },
    });
    try {
      await container.start();
      const { StatusCode } = (await container.wait()) as { StatusCode: number };
      if (StatusCode !== 0) {
        const logs = (await container.logs({ stdout: true, stderr: true })) as Buffer;
        throw new EnvironmentError(`${tool} ${args.join(' ')} exited ${StatusCode} on the engine's host: ${logs.toString('utf8').replace(/[\x00-\x08]/g, '').trim()}`);
      }
    } finally {
      await container.remove({ force: true }).catch(() => undefined);
    }
  };
}
