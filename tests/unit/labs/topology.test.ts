import type { LabRecord } from '../../../src/labs/lab-store.js';
import { planTopology, valuesFor } from '../../../src/labs/topology.js';
import type { LabNetwork } from '../../../src/providers/types.js';
import { macAddress } from '../../../src/providers/libvirt/libvirt-provider.js';
import { parseScenario, type Scenario } from '../../../src/scenario/index.js';

const network = (name: string, n: number): LabNetwork => ({ name, subnet: `10.231.${n}.0/24`, gateway: `10.231.${n}.1`, bridge: `br${n}` });

function scenario(machines: string, networks = '[{ name: lan }]'): Scenario {
  return parseScenario(
    `apiVersion: examlab/v1
id: topo
title: Topologie
ccp: CCP1
competencies: [{ id: C1, title: c }]
duration: 10m
networks: ${networks}
machines:
${machines}
instructions: { fr: rien }
checks:
  - { id: c, title: c, machine: a, kind: command, run: "true" }
`,
    'topo.yaml',
  );
}

describe('topology planning', () => {
  test('fixed host numbers are kept; the others get .10 upwards, skipping the fixed ones', () => {
    const plan = planTopology(
      scenario(`  - { name: a, image: base }
  - { name: b, image: base, networks: [{ network: lan, host: 10 }] }
  - { name: c, image: base }
  - { name: d, image: base, networks: [{ network: lan, host: 11 }] }
  - { name: e, image: base }`),
      [network('lan', 4)],
    );
    expect(Object.fromEntries(plan.machines.map((m) => [m.name, m.address]))).toEqual({
      a: '10.231.4.12',
      b: '10.231.4.10',
      c: '10.231.4.13',
      d: '10.231.4.11',
      e: '10.231.4.14',
    });
  });

  test('a fixed host number below 10 does not move the others', () => {
    const plan = planTopology(
      scenario(`  - { name: a, image: base }
  - { name: gw, image: base, networks: [{ network: lan, host: 2 }] }`),
      [network('lan', 1)],
    );
    expect(plan.machines.map((m) => m.address)).toEqual(['10.231.1.10', '10.231.1.2']);
  });

  test('several networks: one address per attachment, numbered per network; the first attachment is the main address', () => {
    const plan = planTopology(
      scenario(
        `  - { name: a, image: base }
  - { name: router, image: base, networks: [{ network: dmz, host: 254 }, { network: lan }] }
  - { name: web, image: base, networks: [{ network: dmz }] }`,
        '[{ name: lan }, { name: dmz }]',
      ),
      [network('lan', 1), network('dmz', 2)],
    );
    const [a, router, web] = plan.machines;
    // A machine without networks joins the first network of the scenario.
    expect(a?.addresses).toEqual({ lan: '10.231.1.10' });
    expect(router?.addresses).toEqual({ dmz: '10.231.2.254', lan: '10.231.1.11' });
    expect(router?.address).toBe('10.231.2.254');
    expect(web?.addresses).toEqual({ dmz: '10.231.2.10' });
    expect(plan.networks.map((n) => n.name)).toEqual(['lan', 'dmz']);
  });

  test('each machine keeps its provider, hostname and login user', () => {
    const plan = planTopology(
      scenario(`  - { name: a, image: base, hostname: "poste-{{ candidate.id }}", login: { user: technicien } }
  - { name: b, image: vm, provider: libvirt }`),
      [network('lan', 1)],
    );
    expect(plan.machines.map(({ name, provider, hostname, loginUser }) => ({ name, provider, hostname, loginUser }))).toEqual([
      { name: 'a', provider: 'docker', hostname: 'poste-{{ candidate.id }}', loginUser: 'technicien' },
      { name: 'b', provider: 'libvirt', hostname: 'b', loginUser: undefined },
    ]);
  });
});

describe('template values of a lab', () => {
  test('the candidate variables, the lab id, each network and each machine on each network', () => {
    const topology = planTopology(
      scenario(
        `  - { name: a, image: base, login: { user: technicien } }
  - { name: router, image: base, networks: [{ network: lan, host: 2 }, { network: dmz, host: 3 }] }`,
        '[{ name: lan }, { name: dmz }]',
      ),
      [network('lan', 7), network('dmz', 8)],
    );
    const lab = { id: 'lab1', variables: { user: 'alice', 'candidate.id': 'c1' } } as Pick<LabRecord, 'id' | 'variables'> as LabRecord;
    expect(Object.fromEntries(valuesFor(lab, topology))).toEqual({
      user: 'alice',
      'candidate.id': 'c1',
      'lab.id': 'lab1',
      'networks.lan.subnet': '10.231.7.0/24',
      'networks.lan.prefix': '10.231.7',
      'networks.lan.gateway': '10.231.7.1',
      'networks.lan.netmask': '255.255.255.0',
      'networks.dmz.subnet': '10.231.8.0/24',
      'networks.dmz.prefix': '10.231.8',
      'networks.dmz.gateway': '10.231.8.1',
      'networks.dmz.netmask': '255.255.255.0',
      'machines.a.ip': '10.231.7.10',
      'machines.a.hostname': 'a',
      'machines.a.login.user': 'technicien',
      'machines.a.lan.ip': '10.231.7.10',
      'machines.router.ip': '10.231.7.2',
      'machines.router.hostname': 'router',
      'machines.router.login.user': '',
      'machines.router.lan.ip': '10.231.7.2',
      'machines.router.dmz.ip': '10.231.8.3',
    });
  });

  test('a VM\'s cards have MAC addresses known in advance, the ones its provider gives them (a DHCP reservation names them)', () => {
    const topology = planTopology(scenario(`  - { name: a, image: base }\n  - { name: pc, provider: libvirt, boot: network, resources: { disk: 3G } }`), [network('lan', 7)]);
    const values = valuesFor({ id: 'lab1', variables: {} } as Pick<LabRecord, 'id' | 'variables'> as LabRecord, topology);
    expect(values.get('machines.pc.mac')).toBe(macAddress({ labId: 'lab1' }, 'pc', 'lan'));
    expect(values.get('machines.pc.lan.mac')).toBe(values.get('machines.pc.mac'));
    expect(values.has('machines.a.mac')).toBe(false);
  });
});
