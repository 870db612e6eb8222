import { execFile } from 'node:child_process';
import type Dockerode from 'dockerode';
import { runOnce } from './one-shot.js';
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
      await ensureChain(run, tool);
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

const ANSWERS = ['-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', 'RETURN'];
/** The chain as `iptables -S` prints it when it is right. */
const CHAIN_LISTING = [`-N ${CHAIN}`, `-A ${CHAIN} ${ANSWERS.join(' ')}`, `-A ${CHAIN} -j DROP`].join('\n');
/** A bound on the rules removed, should another process keep adding to the chain meanwhile. */
const MAX_STRAY_RULES = 1000;

/**
 * The chain made if missing, and left as it is when it is right (a daemon
 * restarting, another examlab process starting beside it: labs keep
 * running). Otherwise (new and empty, or changed) it is put right without a
 * moment when it lets a packet through: a DROP goes first, the rules after
 * it go, then the rule for answers goes before it.
 */
async function ensureChain(run: FirewallRunner, tool: string): Promise<void> {
  await run(tool, ['-w', '-N', CHAIN]).catch(() => undefined); // exists already
  const listed = (await run(tool, ['-w', '-S', CHAIN])) as { stdout?: string } | undefined;
  if (listed?.stdout?.trim() === CHAIN_LISTING) return;
  await run(tool, ['-w', '-I', CHAIN, '1', '-j', 'DROP']);
  for (let i = 0; i < MAX_STRAY_RULES; i++) {
    const removed = await run(tool, ['-w', '-D', CHAIN, '2']).then(
      () => true,
      () => false, // the DROP is the only rule left
    );
    if (!removed) break;
  }
  await run(tool, ['-w', '-I', CHAIN, '1', ...ANSWERS]);
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
  return (tool, args) =>
    runOnce(
      docker,
      {
        Image: image,
        Entrypoint: ['nsenter'],
        Cmd: ['-t', '1', '-m', '-n', '--', tool, ...args],
        Labels: { 'examlab.managed': 'true', 'examlab.role': 'host-firewall' },
        HostConfig: { PidMode: 'host', NetworkMode: 'host', CapDrop: ['ALL'], CapAdd: ['SYS_ADMIN', 'SYS_PTRACE', 'SYS_CHROOT', 'NET_ADMIN', 'NET_RAW'], SecurityOpt: ['apparmor=unconfined'] },
      },
      `${tool} ${args.join(' ')} on the engine's host`,
    );
}
