import { hostAddress, intToIp, parseCidr, vmMacAddress, type LabNetwork } from '../providers/index.js';
import type { Scenario } from '../scenario/index.js';
import type { LabRecord, LabTopology } from './lab-store.js';

/** Addresses for every machine: the host numbers the scenario gives, others from .10 up. */
export function planTopology(scenario: Scenario, networks: LabNetwork[]): LabTopology {
  const taken = new Map<string, Set<number>>(networks.map((n) => [n.name, new Set([1])]));
  for (const m of scenario.machines) for (const a of m.networks ?? []) if (a.host !== undefined) taken.get(a.network)?.add(a.host);
  const nextFree = (network: string) => {
    const used = taken.get(network) as Set<number>;
    let host = 10;
    while (used.has(host)) host++;
    used.add(host);
    return host;
  };
  const machines = scenario.machines.map((m) => {
    const attachments = m.networks?.length ? m.networks : [{ network: networks[0]?.name as string, host: undefined }];
    const addresses: Record<string, string> = {};
    for (const a of attachments) {
      const net = networks.find((n) => n.name === a.network) as LabNetwork;
      addresses[a.network] = hostAddress(net.subnet, a.host ?? nextFree(a.network));
    }
    return {
      name: m.name,
      provider: m.provider,
      hostname: m.hostname ?? m.name,
      address: addresses[attachments[0]?.network as string] as string,
      addresses,
      loginUser: m.login?.user,
    };
  });
  return { networks, machines };
}

/** Values for `{{ }}`: the candidate's variables and the lab's facts. */
export function valuesFor(lab: LabRecord, topology: LabTopology): Map<string, string> {
  const values = new Map<string, string>(Object.entries(lab.variables));
  values.set('lab.id', lab.id);
  for (const n of topology.networks) {
    const { base } = parseCidr(n.subnet);
    values.set(`networks.${n.name}.subnet`, n.subnet);
    values.set(`networks.${n.name}.prefix`, intToIp(base).split('.').slice(0, 3).join('.'));
    values.set(`networks.${n.name}.gateway`, n.gateway);
    values.set(`networks.${n.name}.netmask`, '255.255.255.0');
  }
  for (const m of topology.machines) {
    values.set(`machines.${m.name}.ip`, m.address);
    values.set(`machines.${m.name}.hostname`, m.hostname);
    values.set(`machines.${m.name}.login.user`, m.loginUser ?? '');
    for (const [network, address] of Object.entries(m.addresses)) values.set(`machines.${m.name}.${network}.ip`, address);
    // A VM's cards have known MAC addresses (a DHCP reservation names them); a container's are its engine's.
    if (m.provider === 'libvirt') {
      const networks = Object.keys(m.addresses);
      networks.forEach((network, i) => {
        const mac = vmMacAddress(lab.id, m.name, network);
        values.set(`machines.${m.name}.${network}.mac`, mac);
        if (i === 0) values.set(`machines.${m.name}.mac`, mac);
      });
    }
  }
  return values;
}
