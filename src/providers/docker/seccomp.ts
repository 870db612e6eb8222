/**
 * The seccomp profile of lab containers.
 *
 * Why not the engine's default: it allows `ioctl` whatever the request,
 * and btrfs lets any owner of a directory create a subvolume or a snapshot
 * there (ioctls 0x94/1, 14, 23, 24). A subvolume has a quota group of its
 * own, outside the container's, so root in a machine could write past its
 * disk bound until the engine's filesystem is full; a subvolume can even be
 * put into another container's quota group and fill that lab's disk
 * instead. seccomp decides on the request number, which the kernel reads
 * as 32 bits, so the rules match its low 16 bits (type and number) whatever
 * the caller puts above them.
 *
 * The profile allows what is not denied (its own rules, each said below);
 * capabilities do the rest: lab containers keep only a short allowlist,
 * never CAP_SYS_ADMIN, so mount, module, clock, reboot and namespace calls
 * fail in the kernel anyway. What is denied here is what an unprivileged
 * root can still do and should not: make user namespaces (with them, every
 * namespaced privilege), reach the kernel keyrings (not namespaced), BPF,
 * perf events, userfaultfd and io_uring (the kernel's largest attack
 * surfaces for a local user), vsock sockets (the hypervisor's or the host's
 * virtual machines' services, past every network rule), and the btrfs
 * calls above.
 */

const EPERM = 1;
const ENOSYS = 38;
const AF_VSOCK = 40;

/** A request number's type and number (_IOC_TYPE, _IOC_NR), the part seccomp can match on. */
const IOC_TYPE_NR = 0xffff;
/** btrfs subvolume and snapshot creation: BTRFS_IOC_SNAP_CREATE, SUBVOL_CREATE, SNAP_CREATE_V2, SUBVOL_CREATE_V2. */
const BTRFS_CREATE_REQUESTS = [0x9401, 0x940e, 0x9417, 0x9418];

/** clone() flags that make a namespace; each needs CAP_SYS_ADMIN but CLONE_NEWUSER, which needs nothing. */
const CLONE_NAMESPACE_FLAGS = {
  CLONE_NEWNS: 0x00020000,
  CLONE_NEWCGROUP: 0x02000000,
  CLONE_NEWUTS: 0x04000000,
  CLONE_NEWIPC: 0x08000000,
  CLONE_NEWUSER: 0x10000000,
  CLONE_NEWPID: 0x20000000,
  CLONE_NEWNET: 0x40000000,
};

interface Rule {
  names: string[];
  action: 'SCMP_ACT_ERRNO';
  errnoRet: number;
  args?: { index: number; value: number; valueTwo: number; op: 'SCMP_CMP_MASKED_EQ' }[];
}

/** Denied (EPERM) when argument `index`, masked by `mask`, equals `value`. */
const deniedWhen = (names: string[], index: number, mask: number, value: number): Rule => ({ names, action: 'SCMP_ACT_ERRNO', errnoRet: EPERM, args: [{ index, value: mask, valueTwo: value, op: 'SCMP_CMP_MASKED_EQ' }] });

const RULES: Rule[] = [
  // btrfs subvolumes and snapshots: outside the machine's disk bound.
  ...BTRFS_CREATE_REQUESTS.map((request) => deniedWhen(['ioctl'], 1, IOC_TYPE_NR, request)),
  // Namespaces: unshare() always (as the engine's default does without CAP_SYS_ADMIN), clone() with a namespace flag;
  // clone3() passes its flags in memory seccomp cannot read, so it answers "not implemented" and the C library falls back to clone().
  { names: ['unshare', 'setns'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
  ...Object.values(CLONE_NAMESPACE_FLAGS).map((flag) => deniedWhen(['clone'], 0, flag, flag)),
  { names: ['clone3'], action: 'SCMP_ACT_ERRNO', errnoRet: ENOSYS },
  // Kernel interfaces that are not namespaced, or large attack surfaces for an unprivileged user.
  { names: ['keyctl', 'add_key', 'request_key', 'bpf', 'perf_event_open', 'userfaultfd', 'io_uring_setup', 'io_uring_enter', 'io_uring_register'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
  // vsock reaches the hypervisor or the host's virtual machines, past every network rule.
  deniedWhen(['socket'], 0, 0xffffffff, AF_VSOCK),
  // Memory placement across NUMA nodes: the host's, not the machine's to tune.
  { names: ['mbind', 'set_mempolicy', 'get_mempolicy', 'move_pages', 'migrate_pages'], action: 'SCMP_ACT_ERRNO', errnoRet: EPERM },
  // Already refused without their capability; refused here too, whatever a scenario grants.
  {
    names: ['mount', 'umount2', 'pivot_root', 'move_mount', 'open_tree', 'fsopen', 'fsconfig', 'fsmount', 'fspick', 'mount_setattr', 'swapon', 'swapoff', 'reboot', 'kexec_load', 'kexec_file_load', 'init_module', 'finit_module', 'delete_module', 'acct', 'quotactl', 'quotactl_fd', 'settimeofday', 'clock_settime', 'clock_adjtime', 'adjtimex', 'syslog', 'open_by_handle_at', 'lookup_dcookie', 'fanotify_init', 'uselib', 'ustat', 'sysfs', 'vm86', 'vm86old', 'iopl', 'ioperm', 'create_module', 'get_kernel_syms', 'query_module', 'nfsservctl'],
    action: 'SCMP_ACT_ERRNO',
    errnoRet: EPERM,
  },
];

/** The profile as the engine takes it (HostConfig.SecurityOpt "seccomp=<json>"). */
export const LAB_SECCOMP_PROFILE = JSON.stringify({
  defaultAction: 'SCMP_ACT_ALLOW',
  // 64-bit calls only: a 32-bit program could reach socket() through socketcall(), whose arguments seccomp cannot read;
  // a call of another ABI meets the runtime's refusal of a foreign architecture. Lab images are 64-bit.
  architectures: ['SCMP_ARCH_X86_64'],
  syscalls: RULES,
});
