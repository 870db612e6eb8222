import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { runCommand } from '../../util/command.js';

/**
 * What a VM must know before its first boot: its name, its addresses and the
 * grader's key. It gets them from a small CD-ROM labelled `cidata`, in two
 * forms read by two kinds of guests:
 *
 * - `examlab/` plain files, applied by the examlab images' `examlab-seed`
 *   service (a shell script: no YAML parser in the guest);
 * - the NoCloud files (`meta-data`, `network-config` v1, `user-data`) that
 *   cloud-init and cloudbase-init read, so a Windows or cloud image with one
 *   of those agents is configured without examlab code in the guest.
 */
export interface SeedPlan {
  instanceId: string;
  hostname: string;
  authorizedKeys: string;
  /** The machine's SSH host key (ed25519, OpenSSH format), made on the host where it is fast. */
  hostKey?: { privateKey: string; publicKey: string };
  /** The first interface carries the default route, as in a container. */
  interfaces: { mac: string; address: string; prefix: number; gateway?: string }[];
}

export function seedFiles(plan: SeedPlan): Record<string, string> {
  const q = (s: string) => JSON.stringify(s); // a JSON string is a YAML string
  const network = plan.interfaces.map((n) => `${n.mac} ${n.address}/${n.prefix}${n.gateway ? ` ${n.gateway}` : ''}\n`).join('');
  const nocloudNetwork = [
    'version: 1',
    'config:',
    ...plan.interfaces.flatMap((n, i) => [
      `  - type: physical`,
      `    name: ${q(`eth${i}`)}`,
      `    mac_address: ${q(n.mac)}`,
      `    subnets:`,
      `      - type: static`,
      `        address: ${q(`${n.address}/${n.prefix}`)}`,
      ...(n.gateway ? [`        gateway: ${q(n.gateway)}`] : []),
    ]),
  ].join('\n');
  return {
    'examlab/hostname': `${plan.hostname}\n`,
    'examlab/authorized_keys': `${plan.authorizedKeys.trim()}\n`,
    'examlab/network': network,
    ...(plan.hostKey
      ? { 'examlab/ssh_host_ed25519_key': plan.hostKey.privateKey.trim() + '\n', 'examlab/ssh_host_ed25519_key.pub': `${plan.hostKey.publicKey.trim()}\n` }
      : {}),
    'meta-data': `instance-id: ${q(plan.instanceId)}\nlocal-hostname: ${q(plan.hostname)}\npublic-keys:\n${plan.authorizedKeys.trim().split('\n').map((k) => `  - ${q(k)}\n`).join('')}`,
    'network-config': `${nocloudNetwork}\n`,
    'user-data': '#cloud-config\n',
  };
}

/** Writes the seed as an ISO 9660 image at `path` (genisoimage: no mount, no root needed). */
export async function writeSeedIso(path: string, plan: SeedPlan): Promise<void> {
  const dir = `${path}.d`;
  await rm(dir, { recursive: true, force: true });
  try {
    for (const [name, content] of Object.entries(seedFiles(plan))) {
      await mkdir(dirname(join(dir, name)), { recursive: true });
      await writeFile(join(dir, name), content);
    }
    await runCommand('genisoimage', ['-quiet', '-output', path, '-volid', 'cidata', '-joliet', '-rock', dir]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
