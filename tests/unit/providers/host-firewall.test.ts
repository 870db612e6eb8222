import { describe, expect, test } from '@jest/globals';
import { ensureHostIsolation, LAB_SEGMENT_RULE, type FirewallRunner } from '../../../src/providers/docker/host-firewall.js';

/** A firewall that records every command and holds a set of rules (`-C` answers from it). */
function fakeFirewall(options: { dockerUser: boolean; physdev?: boolean; rules?: string[] }) {
  const rules = new Set(options.rules ?? []);
  const calls: string[] = [];
  const run: FirewallRunner = async (tool, args) => {
    const line = `${tool} ${args.join(' ')}`;
    calls.push(line);
    const [, op, chain, ...rest] = args; // args[0] is -w
    if (op === '-S' && chain === 'DOCKER-USER' && !options.dockerUser) throw new Error('No chain/target/match by that name.');
    if (op === '-C' && !rules.has(`${tool} ${chain} ${rest.join(' ')}`)) throw new Error('Bad rule');
    if (op === '-I' && chain === 'DOCKER-USER' && options.physdev === false) throw new Error("Couldn't load match `physdev'");
    if (op === '-I') rules.add(`${tool} ${chain} ${rest.slice(1).join(' ')}`);
    return '';
  };
  return { run, calls, rules };
}

const segmentRule = `iptables DOCKER-USER ${LAB_SEGMENT_RULE.join(' ')}`;

describe('host firewall', () => {
  test("frames bridged inside a lab's own bridge are accepted first in DOCKER-USER, before Docker's isolation", async () => {
    const fw = fakeFirewall({ dockerUser: true });
    expect(await ensureHostIsolation(fw.run)).toEqual([]);
    expect(fw.calls).toContain(`iptables -w -I DOCKER-USER 1 ${LAB_SEGMENT_RULE.join(' ')}`);
    expect(LAB_SEGMENT_RULE).toEqual(['-i', 'exl+', '-m', 'physdev', '--physdev-is-bridged', '-j', 'ACCEPT']);
    // Only IPv4 (DHCP); IPv6 keeps Docker's rules untouched.
    expect(fw.calls.filter((c) => c.startsWith('ip6tables') && c.includes('DOCKER-USER'))).toEqual([]);
  });

  test('installed once: a second start finds the rule and inserts nothing', async () => {
    const fw = fakeFirewall({ dockerUser: true, rules: [segmentRule] });
    await ensureHostIsolation(fw.run);
    expect(fw.calls.filter((c) => c.includes('-I DOCKER-USER'))).toEqual([]);
  });

  test('no DOCKER-USER chain (Docker manages no iptables, so isolates nothing): nothing added', async () => {
    const fw = fakeFirewall({ dockerUser: false });
    expect(await ensureHostIsolation(fw.run)).toEqual([]);
    expect(fw.calls.filter((c) => c.includes('DOCKER-USER') && !c.includes('-S'))).toEqual([]);
  });

  test('a host without the physdev match: a warning, and the host stays isolated', async () => {
    const fw = fakeFirewall({ dockerUser: true, physdev: false });
    const warnings = await ensureHostIsolation(fw.run);
    expect(warnings).toEqual([expect.stringContaining('DHCP and lab routers will not work')]);
    expect(fw.calls).toContain('iptables -w -I INPUT 1 -i exl+ -j EXAMLAB-INPUT');
  });

  /** The lab chain as an ordered list of rules; after every command, what a packet from a lab not answering the host would meet. */
  function chainFirewall(initial: string[] | undefined) {
    let chain = initial ? [...initial] : undefined;
    const verdicts: string[] = [];
    const changes: string[] = [];
    const run: FirewallRunner = async (tool, args) => {
      if (tool !== 'iptables' || args[2] !== 'EXAMLAB-INPUT') return { stdout: '' };
      const [, op, , ...rest] = args;
      if (op === '-N') {
        if (chain) throw new Error('Chain already exists.');
        chain = [];
      } else if (op === '-S') {
        return { stdout: ['-N EXAMLAB-INPUT', ...(chain ?? []).map((r) => `-A EXAMLAB-INPUT ${r}`)].join('\n') + '\n' };
      } else if (op === '-A') chain?.push(rest.join(' '));
      else if (op === '-I') chain?.splice(Number(rest[0]) - 1, 0, rest.slice(1).join(' '));
      else if (op === '-D') {
        if (!chain || chain.length < Number(rest[0])) throw new Error('Index of deletion too big.');
        chain.splice(Number(rest[0]) - 1, 1);
      }
      if (op !== '-S') {
        changes.push(`${op} ${rest.join(' ')}`.trim());
        // A new packet: the first rule that is not about answers decides; none is the INPUT policy, ACCEPT.
        verdicts.push((chain ?? []).find((r) => !r.includes('RELATED,ESTABLISHED')) ?? 'fall through');
      }
      return { stdout: '' };
    };
    return { run, verdicts, changes, chain: () => chain };
  }
  const RIGHT = ['-m conntrack --ctstate RELATED,ESTABLISHED -j RETURN', '-j DROP'];

  test('a chain already right is left alone: a daemon restarting beside running labs opens no gap', async () => {
    const fw = chainFirewall(RIGHT);
    await ensureHostIsolation(fw.run);
    expect(fw.changes).toEqual([]);
    expect(fw.chain()).toEqual(RIGHT);
  });

  test('a chain that is wrong is put right with a DROP in front all along: never a moment a lab reaches the host', async () => {
    const fw = chainFirewall(['-j ACCEPT', '-s 10.0.0.0/8 -j RETURN', '-j DROP']);
    await ensureHostIsolation(fw.run);
    expect(fw.chain()).toEqual(RIGHT);
    expect(fw.verdicts.length).toBeGreaterThan(3);
    expect(fw.verdicts.every((v) => v === '-j DROP')).toBe(true);
  });

  test('a new chain gets its rules before anything jumps to it', async () => {
    const fw = chainFirewall(undefined);
    await ensureHostIsolation(fw.run);
    expect(fw.chain()).toEqual(RIGHT);
  });
});
