import { describe, expect, test } from '@jest/globals';
import { probeKernel } from '../../../src/providers/libvirt/accel.js';
import { failedUnitJournals } from '../../../src/providers/libvirt/boot-report.js';
import { AGENT_PORT, domainAddress, domainOwner, domainXml, type DomainPlan } from '../../../src/providers/libvirt/domain-xml.js';
import { macAddress } from '../../../src/providers/libvirt/libvirt-provider.js';
import { seedFiles } from '../../../src/providers/libvirt/seed.js';

const plan: DomainPlan = {
  name: 'exl-abc123-pc',
  type: 'qemu',
  owner: { labId: 'abc123', examId: 'exam<1>', machine: 'pc' },
  vcpus: 2,
  memoryBytes: 512 * 1024 ** 2,
  boot: { mode: 'kernel', kernel: '/img/vmlinuz', initrd: '/img/initrd.img', cmdline: "root=LABEL=root ro console=ttyS0 x='y'" },
  disks: [
    { path: '/labs/abc123/pc.qcow2', serial: 'root' },
    { path: '/labs/abc123/pc-disk1.qcow2', serial: 'disk1' },
  ],
  seed: '/labs/abc123/pc-seed.iso',
  interfaces: [{ bridge: 'exl0123456789ab', mac: '52:54:00:aa:bb:cc' }],
  console: { socket: '/labs/abc123/pc.console.sock', log: '/data/labs/abc123/pc.console.log' },
  agentSocket: '/labs/abc123/pc.agent.sock',
};

describe('libvirt domain XML', () => {
  const xml = domainXml(plan);

  test('asks for what the plan says: type, resources, direct kernel boot, disks in order, bridge, console and agent sockets', () => {
    expect(xml).toContain("<domain type='qemu'>");
    expect(xml).toContain(`<memory unit='b'>${512 * 1024 ** 2}</memory>`);
    expect(xml).toContain('<vcpu>2</vcpu>');
    expect(xml).toContain('<kernel>/img/vmlinuz</kernel>');
    expect(xml).toContain('<cmdline>root=LABEL=root ro console=ttyS0 x=&apos;y&apos;</cmdline>');
    expect(xml.indexOf("/labs/abc123/pc.qcow2'/>\n      <target dev='vda'")).toBeGreaterThan(0);
    expect(xml).toContain("<source file='/labs/abc123/pc-disk1.qcow2'/>\n      <target dev='vdb' bus='virtio'/>");
    expect(xml).toContain("<source bridge='exl0123456789ab'/>");
    expect(xml).toContain("<source mode='bind' path='/labs/abc123/pc.console.sock'/>\n      <log file='/data/labs/abc123/pc.console.log' append='on'/>");
    expect(xml).toContain(`<target type='virtio' name='${AGENT_PORT}'/>`);
    expect(xml).not.toContain('<boot dev=');
  });

  test('disk boot uses the disk\'s boot loader; kvm passes the host CPU through', () => {
    const disk = domainXml({ ...plan, type: 'kvm', boot: { mode: 'disk' } });
    expect(disk).toContain("<boot dev='hd'/>");
    expect(disk).not.toContain('<kernel>');
    expect(disk).toContain("<cpu mode='host-passthrough'/>");
  });

  test('a blank machine boots from its disk, then from the network, retrying when nothing boots; it has no seed CD', () => {
    const network = domainXml({ ...plan, boot: { mode: 'network' }, seed: undefined });
    expect(network).toContain("<boot dev='hd'/>\n    <boot dev='network'/>\n    <bios useserial='yes' rebootTimeout='5000'/>");
    expect(network).not.toContain("device='cdrom'");
    expect(network).not.toContain('<kernel>');
    expect(xml).toContain("device='cdrom'");
  });

  test('the owner recorded in the metadata reads back, escaped values included', () => {
    expect(domainOwner(xml)).toEqual({ labId: 'abc123', examId: 'exam<1>', candidateId: undefined, machine: 'pc' });
    expect(domainOwner('<domain><name>someone-else</name></domain>')).toBeUndefined();
  });

  test('a lab host\'s VM records the address it is reached at through the host; a VM of this host records none', () => {
    const remote = domainXml({ ...plan, address: '10.231.4.20' });
    expect(domainAddress(remote)).toBe('10.231.4.20');
    expect(domainOwner(remote)).toEqual(domainOwner(xml));
    expect(/<examlab:machine[^>]*>/.exec(xml)?.[0]).not.toContain('address');
    expect(domainAddress(xml)).toBeUndefined();
    expect(domainAddress('<domain><name>someone-else</name></domain>')).toBeUndefined();
  });
});

describe('VM seed', () => {
  test('plain files for examlab images and NoCloud files for cloud-init agents carry the same facts', () => {
    const files = seedFiles({
      instanceId: 'exl-abc-pc-1',
      hostname: 'pc-atelier',
      authorizedKeys: 'ssh-ed25519 AAAA grader\n',
      interfaces: [
        { mac: '52:54:00:00:00:01', address: '10.231.4.20', prefix: 24, gateway: '10.231.4.1' },
        { mac: '52:54:00:00:00:02', address: '10.231.5.20', prefix: 24 },
      ],
    });
    expect(files['examlab/hostname']).toBe('pc-atelier\n');
    expect(files['examlab/authorized_keys']).toBe('ssh-ed25519 AAAA grader\n');
    expect(files['examlab/network']).toBe('52:54:00:00:00:01 10.231.4.20/24 10.231.4.1\n52:54:00:00:00:02 10.231.5.20/24\n');
    expect(files['meta-data']).toContain('local-hostname: "pc-atelier"');
    expect(files['meta-data']).toContain('  - "ssh-ed25519 AAAA grader"');
    expect(files['network-config']).toContain('mac_address: "52:54:00:00:00:02"');
    expect(files['network-config']).toContain('gateway: "10.231.4.1"');
    expect(files['network-config']?.match(/gateway/g)).toHaveLength(1);
  });

  test('MAC addresses are stable per lab, machine and network, and differ between them', () => {
    const a = macAddress({ labId: 'l1' }, 'pc', 'lan');
    expect(a).toMatch(/^52:54:00(:[0-9a-f]{2}){3}$/);
    expect(macAddress({ labId: 'l1' }, 'pc', 'lan')).toBe(a);
    expect(new Set([a, macAddress({ labId: 'l2' }, 'pc', 'lan'), macAddress({ labId: 'l1' }, 'pc', 'dmz')]).size).toBe(3);
  });
});

describe('KVM probe kernel', () => {
  test('is a valid multiboot image: magic, flags and checksum sum to zero, entry right after the header', () => {
    const k = probeKernel();
    const words = [0, 1, 2].map((i) => k.readUInt32LE(i * 4));
    expect(words[0]).toBe(0x1badb002);
    expect((words.reduce((a, b) => a + b, 0) >>> 0) & 0xffffffff).toBe(0);
    expect(k.readUInt32LE(28)).toBe(0x100020);
    expect(k.subarray(32, 42)).toEqual(Buffer.from([0x66, 0xba, 0xf4, 0x00, 0xb0, 0x10, 0xee, 0xf4, 0xeb, 0xfd]));
  });
});

describe('boot failure report', () => {
  const journal = (unit: string, line: string) => `\r\nexamlab: ${unit} failed; its journal:\r\n[   12.000000] vm0 ${line}\r\nexamlab: end of the journal of ${unit}\r\n`;

  test('finds the journals the image printed for failed units in the last boot only, even after a prompt without a newline', () => {
    const log = [
      '[    0.000000] Linux version 6.1.0-40-amd64\r\n',
      journal('examlab-seed.service', 'examlab-seed[201]: examlab-seed: no CD labelled cidata after 10 minutes'),
      '[    0.000000] Linux version 6.1.0-40-amd64\r\n\x1b[0;1;31mFAILED\x1b[0m] Failed to start ssh.service\r\nvm0 login: ',
      journal('ssh.service', 'sshd[293]: sshd: no hostkeys available -- exiting.').slice(2),
      journal('systemd-networkd.service', 'systemd-networkd[180]: could not load configuration files'),
    ].join('');
    expect(failedUnitJournals(log)).toEqual([
      { unit: 'ssh.service', journal: '[   12.000000] vm0 sshd[293]: sshd: no hostkeys available -- exiting.' },
      { unit: 'systemd-networkd.service', journal: '[   12.000000] vm0 systemd-networkd[180]: could not load configuration files' },
    ]);
  });

  test('keeps the end of a long journal (the last attempts of a restarted unit)', () => {
    const lines = Array.from({ length: 40 }, (_, i) => `line ${i}`).join('\n');
    const [found] = failedUnitJournals(`examlab: ssh.service failed; its journal:\n${lines}\nexamlab: end of the journal of ssh.service\n`);
    expect(found?.journal.split('\n')).toHaveLength(20);
    expect(found?.journal.endsWith('line 39')).toBe(true);
  });

  test('a console without failures, or a block cut off by the end of the log, quotes nothing', () => {
    expect(failedUnitJournals('[    0.000000] Linux version 6.1.0\nvm0 login: ')).toEqual([]);
    expect(failedUnitJournals('examlab: ssh.service failed; its journal:\n[ 1.0 ] half')).toEqual([]);
  });
});
