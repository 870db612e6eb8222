import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { labHostsOf, loadDaemonConfig } from '../../../src/daemon/settings.js';

/** The daemon's `hosts:` as a centre writes it, and what is refused, by field. */
describe('daemon.yaml: lab hosts', () => {
  let dir: string;
  beforeEach(() => (dir = mkdtempSync(join(tmpdir(), 'examlab-hosts-settings-'))));
  afterEach(() => rmSync(dir, { recursive: true, force: true }));
  const load = (yaml: string) => {
    const file = join(dir, 'daemon.yaml');
    writeFileSync(file, yaml);
    return loadDaemonConfig(file).config;
  };
  const refusal = (yaml: string) => {
    try {
      load(yaml);
    } catch (err) {
      return (err as { details: { where?: string; message: string }[] }).details.map((d) => `${(d.where ?? '').replace(/^\S+ /, '')}: ${d.message}`);
    }
    throw new Error('accepted');
  };

  test('labels are strings; libvirt over SSH takes the docker entry\'s key and host key unless it has its own', () => {
    const hosts = labHostsOf(
      load(`hosts:
  - name: here
    docker: unix:///var/run/docker.sock
  - name: salle-b
    docker: { url: ssh://root@salle-b, sshKey: /etc/examlab/id_ed25519, sshHostKey: ssh-ed25519 AAAAB }
    libvirt: qemu+ssh://root@salle-b/system
    labels: { kvm: true, room: B12, seats: 14 }
  - name: salle-c
    docker: { url: tcp://salle-c:2376, tls: /etc/examlab/salle-c }
    libvirt: { url: qemu+ssh://examlab@salle-c:2200/system, sshKey: /etc/examlab/c_key, sshHostKey: ssh-ed25519 AAAAC }
`),
    );
    expect(hosts[0]).toEqual({ name: 'here', engine: { url: 'unix:///var/run/docker.sock' }, capacity: undefined, labels: {} });
    expect(hosts[1]).toMatchObject({ libvirt: { url: 'qemu+ssh://root@salle-b/system', sshKey: '/etc/examlab/id_ed25519', sshHostKey: 'ssh-ed25519 AAAAB' }, labels: { kvm: 'true', room: 'B12', seats: '14' } });
    expect(hosts[2]).toMatchObject({ engine: { tls: { ca: '/etc/examlab/salle-c/ca.pem' } }, libvirt: { url: 'qemu+ssh://examlab@salle-c:2200/system', sshKey: '/etc/examlab/c_key', sshHostKey: 'ssh-ed25519 AAAAC' } });
  });

  test('each mistake is named by its field', () => {
    expect(
      refusal(`hosts:
  - name: far
    docker: { url: tcp://far:2376, tls: /etc/examlab/far }
    libvirt: qemu:///system
  - name: nokey
    docker: { url: tcp://nokey:2376, tls: /etc/examlab/nokey }
    libvirt: qemu+ssh://root@nokey/system
  - name: odd
    docker: unix:///var/run/docker.sock
    libvirt: xen:///system
  - name: shouting
    docker: unix:///var/run/docker.sock
    labels: { Kvm: yes }
`),
    ).toEqual([
      'hosts[0].libvirt: qemu:///system is this host\'s libvirt: its VMs cannot join the lab networks of an engine on another host (give qemu+ssh://user@host/system)',
      'hosts[1].libvirt.sshKey: the private key file examlab logs in to the host with (or an ssh:// docker entry\'s)',
      'hosts[1].libvirt.sshHostKey: the host\'s public key, as in known_hosts (ssh-ed25519 AAAA…)',
      'hosts[2].libvirt: xen:///system: expected qemu:///system or qemu+ssh://user@host[:port]/system',
      'hosts[3].labels.Kvm: label names are lowercase: letters, digits, ".", "_", "-"',
    ]);
  });
});
