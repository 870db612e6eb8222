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
});
