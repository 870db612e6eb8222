/** IPv4 /24 allocation for lab networks, from a pool such as 10.231.0.0/16; the MAC addresses of VMs' cards. */

import { sha256 } from '../util/ids.js';

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, part) => (n << 8) + Number(part), 0) >>> 0;
}

export function intToIp(n: number): string {
  return [24, 16, 8, 0].map((shift) => (n >>> shift) & 255).join('.');
}

export function parseCidr(cidr: string): { base: number; bits: number } {
  const [ip = '', bits = '32'] = cidr.split('/');
  const prefix = Number(bits);
  const mask = prefix === 0 ? 0 : (~0 << (32 - prefix)) >>> 0;
  return { base: (ipToInt(ip) & mask) >>> 0, bits: prefix };
}

function overlaps(a: string, b: string): boolean {
  const x = parseCidr(a);
  const y = parseCidr(b);
  const bits = Math.min(x.bits, y.bits);
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return ((x.base & mask) >>> 0) === ((y.base & mask) >>> 0);
}

/** The /24s of `pool` that overlap none of `taken`, in order. */
function* freeSubnets(pool: string, taken: readonly string[]): Generator<string> {
  const { base, bits } = parseCidr(pool);
  if (bits > 24) throw new Error(`subnet pool ${pool} is smaller than a /24`);
  const count = 2 ** (24 - bits);
  for (let i = 0; i < count; i++) {
    const candidate = `${intToIp((base + i * 256) >>> 0)}/24`;
    if (!taken.some((t) => overlaps(candidate, t))) yield candidate;
  }
}

/** The first /24 of `pool` that overlaps none of `taken`, or undefined when the pool is full. */
export function freeSubnet(pool: string, taken: readonly string[]): string | undefined {
  return freeSubnets(pool, taken).next().value ?? undefined;
}

/** How many /24s of `pool` are still free. */
export function freeSubnetCount(pool: string, taken: readonly string[]): number {
  let count = 0;
  for (const _ of freeSubnets(pool, taken)) count++;
  return count;
}

/** Address of host number `host` in a /24 (e.g. 10 in 10.231.4.0/24 is 10.231.4.10). */
export function hostAddress(subnet: string, host: number): string {
  return intToIp((parseCidr(subnet).base + host) >>> 0);
}

/**
 * The MAC address of a VM's card on a lab network: stable per lab, machine
 * and network (52:54:00 is QEMU's prefix, locally administered). Known before
 * the machine exists, so a scenario can name it (`machines.<m>.mac`): a DHCP
 * reservation for a machine deployed over the network.
 */
export function vmMacAddress(labId: string, machine: string, network: string): string {
  const hash = sha256(`${labId}/${machine}/${network}`);
  return `52:54:00:${hash.slice(0, 2)}:${hash.slice(2, 4)}:${hash.slice(4, 6)}`;
}
