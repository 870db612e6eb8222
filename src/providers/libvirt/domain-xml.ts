/**
 * The libvirt domain of one lab VM, as XML. Pure: everything it needs is in
 * the plan, so what examlab asks libvirt for can be read and tested as is.
 */

export const METADATA_NS = 'https://examlab.dev/xmlns/libvirt/1';
/** Name of the virtio-serial port the guest agent listens on (not org.qemu.guest_agent.0: libvirtd would take that one). */
export const AGENT_PORT = 'org.examlab.agent.0';

export interface DomainPlan {
  name: string;
  type: 'kvm' | 'qemu';
  owner: { labId: string; examId?: string; candidateId?: string; machine: string };
  /** The address the grader reaches it at (its first network's), kept with the domain: a lab host's VMs are reached through that host, by it. */
  address?: string;
  vcpus: number;
  memoryBytes: number;
  /** `network`: the disk first, then the network card's PXE ROM (iPXE) while the disk boots nothing. */
  boot: { mode: 'kernel'; kernel: string; initrd?: string; cmdline: string } | { mode: 'disk' } | { mode: 'network' };
  /** qcow2 files; the first is the root disk (vda), the others vdb, vdc… */
  disks: { path: string; serial: string }[];
  /** The lab's seed for the guest (a CD-ROM); none for a machine that boots from the network (nothing of examlab is on it). */
  seed?: string;
  interfaces: { bridge: string; mac: string }[];
  /** Serial console: a unix socket for people, and a log of everything the guest printed. */
  console: { socket: string; log: string };
  /** virtio-serial unix socket of the guest agent (steps and grading when SSH is down). */
  agentSocket: string;
}

export function domainXml(plan: DomainPlan): string {
  const { owner } = plan;
  const os =
    plan.boot.mode === 'kernel'
      ? [
          `<kernel>${esc(plan.boot.kernel)}</kernel>`,
          plan.boot.initrd ? `<initrd>${esc(plan.boot.initrd)}</initrd>` : '',
          `<cmdline>${esc(plan.boot.cmdline)}</cmdline>`,
        ]
      : plan.boot.mode === 'network'
        ? [
            // Disk first: a blank disk boots nothing and the card's iPXE takes over; once deployed, the machine boots its
            // own system, as a workstation does after its deployment. When nothing boots (the deployment server not
            // answering yet), the BIOS tries again 5 s later rather than stopping for good; its messages and iPXE's
            // (through sgabios) go to the serial console.
            `<boot dev='hd'/>`,
            `<boot dev='network'/>`,
            `<bios useserial='yes' rebootTimeout='5000'/>`,
          ]
        : [`<boot dev='hd'/>`];
  const disks = plan.disks.map(
    (d, i) => `<disk type='file' device='disk'>
      <driver name='qemu' type='qcow2' discard='unmap'/>
      <source file='${esc(d.path)}'/>
      <target dev='vd${String.fromCharCode(97 + i)}' bus='virtio'/>
      <serial>${esc(d.serial)}</serial>
    </disk>`,
  );
  const interfaces = plan.interfaces.map(
    (n) => `<interface type='bridge'>
      <source bridge='${esc(n.bridge)}'/>
      <mac address='${esc(n.mac)}'/>
      <model type='virtio'/>
    </interface>`,
  );
  return `<domain type='${plan.type}'>
  <name>${esc(plan.name)}</name>
  <metadata>
    <examlab:machine xmlns:examlab='${METADATA_NS}' lab='${esc(owner.labId)}' exam='${esc(owner.examId ?? '')}' candidate='${esc(owner.candidateId ?? '')}' name='${esc(owner.machine)}'${plan.address === undefined ? '' : ` address='${esc(plan.address)}'`}/>
  </metadata>
  <memory unit='b'>${plan.memoryBytes}</memory>
  <vcpu>${plan.vcpus}</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    ${os.filter(Boolean).join('\n    ')}
  </os>
  <features><acpi/><apic/></features>
  ${plan.type === 'kvm' ? `<cpu mode='host-passthrough'/>` : ''}
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    ${[...disks, ...(plan.seed === undefined ? [] : [seedCd(plan.seed)])].join('\n    ')}
    ${interfaces.join('\n    ')}
    <serial type='unix'>
      <source mode='bind' path='${esc(plan.console.socket)}'/>
      <log file='${esc(plan.console.log)}' append='on'/>
      <target port='0'/>
    </serial>
    <channel type='unix'>
      <source mode='bind' path='${esc(plan.agentSocket)}'/>
      <target type='virtio' name='${AGENT_PORT}'/>
    </channel>
    <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng>
    <memballoon model='none'/>
    <video><model type='none'/></video>
  </devices>
</domain>
`;
}

function seedCd(path: string): string {
  return `<disk type='file' device='cdrom'>
      <driver name='qemu' type='raw'/>
      <source file='${esc(path)}'/>
      <target dev='hdc' bus='ide'/>
      <readonly/>
    </disk>`;
}

/** The owner recorded in a domain's XML by `domainXml`, or undefined for a domain examlab did not make. */
export function domainOwner(xml: string): DomainPlan['owner'] | undefined {
  const attr = metadataOf(xml);
  const labId = attr('lab');
  const machine = attr('name');
  if (!labId || !machine) return undefined;
  return { labId, machine, examId: attr('exam') || undefined, candidateId: attr('candidate') || undefined };
}

/** The address recorded in a domain's XML by `domainXml`, if any. */
export function domainAddress(xml: string): string | undefined {
  return metadataOf(xml)('address') || undefined;
}

/** The attributes of examlab's metadata element of a domain's XML. */
function metadataOf(xml: string): (name: string) => string | undefined {
  // libvirt gives metadata back with the prefix it was given.
  const element = /<examlab:machine\s[^>]*>/.exec(xml)?.[0];
  return (name) => {
    const value = element === undefined ? undefined : new RegExp(`\\s${name}=(['"])(.*?)\\1`).exec(element)?.[2];
    return value === undefined ? undefined : unesc(value);
  };
}

function esc(value: string): string {
  return value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/'/g, '&apos;').replace(/"/g, '&quot;');
}

function unesc(value: string): string {
  return value.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&apos;/g, "'").replace(/&quot;/g, '"').replace(/&amp;/g, '&');
}
