import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import Dockerode from 'dockerode';
import { connectOutcomes, connectScript, createTestApp, hostAddresses, hostConnects, inlineScenario, rootShell, scenarioHead } from './helpers.js';

/**
 * Isolation, seen from inside a lab by its root: two labs up, and lab A's
 * root tries to see, reach or change lab B, the host, the engines and
 * anything outside. Each lab has a systemd workstation given the most a
 * scenario may give (NET_ADMIN, NET_RAW, MKNOD, /dev/net/tun) and a plain
 * machine (sshd as PID 1, the engine's usual cgroup set-up). Every test has
 * a control showing that its probe would have seen the thing had it been
 * there.
 */

const docker = new Dockerode();

const scenario = `${scenarioHead('isolation')}machines:
  - name: ws
    image: workstation
    capabilities: [NET_ADMIN, NET_RAW, MKNOD]
    devices: [/dev/net/tun]
    resources: { memory: 256M, pids: 512 }
  - name: plain
    image: base
    resources: { memory: 128M, pids: 128 }
checks:
  - { id: up, title: t, machine: ws, kind: file, path: /etc/hostname }
`;

/** The engines' TCP ports: Docker's API (plain, TLS), libvirt's (plain, TLS). */
const ENGINE_PORTS = [2375, 2376, 16509, 16514];
const MARKER = 'exl-marker-b';

describe('isolation, tested from inside a lab as root', () => {
  let app: Awaited<ReturnType<typeof createTestApp>>;
  let a: string;
  let b: string;
  const listeners: Server[] = [];
  let anyPort = 0;
  /** Container ids of lab B's machines. */
  let bIds: string[] = [];
  /** A container on the engine's default bridge, in no lab: an address outside every lab, ours to aim at. */
  let outsider: Dockerode.Container | undefined;
  let outsiderAddress = '';

  const root = (lab: string, machine: string, script: string, timeoutMs = 30_000) => rootShell(app, lab, machine, script, timeoutMs, 'bash');
  const topology = (lab: string) => app.stores.labs.get(lab).topology as NonNullable<ReturnType<typeof app.stores.labs.get>['topology']>;
  const address = (lab: string, machine: string) => topology(lab).machines.find((m) => m.name === machine)?.address as string;

  /** Listens on every address of this host, v4 and v6; a port something else holds already is left to it. */
  async function listen(port: number): Promise<number> {
    const server = createServer((socket) => {
      socket.on('error', () => undefined); // a probe timed out and reset: nothing to serve
      socket.end('host service\n');
    });
    const bound = await new Promise<number>((resolve) => {
      server.once('error', () => resolve(0));
      server.listen(port, '::', () => resolve((server.address() as { port: number }).port));
    });
    if (bound) listeners.push(server);
    return bound;
  }

  beforeAll(async () => {
    app = await createTestApp();
    [a, b] = await Promise.all([app.labs.up(inlineScenario(scenario)).then((l) => l.id), app.labs.up(inlineScenario(scenario)).then((l) => l.id)]);
    bIds = await Promise.all(['ws', 'plain'].map(async (m) => (await docker.getContainer(`exl-${b}-${m}`).inspect()).Id));
    anyPort = await listen(0);
    for (const port of [22, ...ENGINE_PORTS]) await listen(port);
    outsider = await docker.createContainer({
      Image: (await app.images.ensure('base')).ref,
      Entrypoint: ['timeout', '600', 'perl', '-MIO::Socket::INET', '-e', 'my $s = IO::Socket::INET->new(LocalPort => 8080, Listen => 5, ReuseAddr => 1) or die; while (my $c = $s->accept) { print $c "outside\n"; close $c }'],
      Cmd: [],
      Labels: { 'examlab.test': 'isolation-outsider' },
      HostConfig: { AutoRemove: true, NetworkMode: 'bridge' },
    });
    await outsider.start();
    outsiderAddress = (await outsider.inspect()).NetworkSettings.Networks.bridge?.IPAddress as string;
    // A process of lab B with a name found nowhere else: lab A must not see it.
    const started = await root(b, 'ws', `cp /bin/sleep /tmp/${MARKER} && setsid /tmp/${MARKER} 600 </dev/null >/dev/null 2>&1 & echo started`);
    expect(started.stdout).toContain('started');
  }, 240_000);

  afterAll(async () => {
    for (const server of listeners) server.close();
    await outsider?.remove({ force: true }).catch(() => undefined);
    for (const id of [a, b]) if (id) await app.labs.destroy(id);
    app?.cleanup();
  }, 120_000);

  test('labs cannot reach each other nor anything outside a lab, even though every machine has a route through the host', async () => {
    const own = address(a, 'plain');
    const others = [address(b, 'ws'), address(b, 'plain')];
    // Control: the container outside every lab answers the host.
    expect(await hostConnects(outsiderAddress, 8080)).toBe(true);
    const targets = [...[...others, own].map((host) => ({ host, port: 22 })), { host: outsiderAddress, port: 8080 }];
    const run = await root(a, 'ws', `ip route; ping -c 2 -W 1 ${others[0]} >/dev/null 2>&1 && echo PING-REACHED\n${connectScript(targets)}`);
    // The path exists (a default route through the host): what blocks is the host's isolation, not a missing route.
    expect(run.stdout).toContain(`default via ${topology(a).networks[0]?.gateway}`);
    const outcomes = connectOutcomes(run.stdout);
    expect(outcomes.get(`${own} 22`)).toBe('reached');
    for (const other of others) expect(outcomes.get(`${other} 22`)).toBe('silent');
    expect(outcomes.get(`${outsiderAddress} 8080`)).toBe('silent');
    expect(run.stdout).not.toContain('PING-REACHED');
  }, 30_000);

  test('a lab cannot reach the host at any of its addresses (own gateway, other labs\' gateways, docker0, its network), even on ports open to everyone', async () => {
    const addresses = hostAddresses();
    expect(addresses).toContain(topology(b).networks[0]?.gateway);
    const targets = addresses.flatMap((host) => [anyPort, 22].map((port) => ({ host, port })));
    // Control: from the host itself, the port answers at each of those addresses (IPv4; the lab has no IPv6).
    const v4 = addresses.filter((h) => h.includes('.'));
    expect(await Promise.all(v4.map((h) => hostConnects(h, anyPort)))).toEqual(v4.map(() => true));
    const run = await root(a, 'ws', connectScript(targets));
    const outcomes = connectOutcomes(run.stdout);
    expect(outcomes.size).toBe(targets.length);
    expect([...outcomes].filter(([, o]) => o === 'reached' || o === 'refused')).toEqual([]);
  }, 30_000);

  test('no engine is reachable from a lab: no Docker, containerd or libvirt socket in its files, nothing on 2375, 2376, 16509 or 16514 at any host address', async () => {
    // Controls: the socket exists on this host, so a bind of it into the lab would be found; the ports answer here.
    expect(existsSync('/var/run/docker.sock')).toBe(true);
    expect(await Promise.all(ENGINE_PORTS.map((port) => hostConnects('127.0.0.1', port)))).toEqual(ENGINE_PORTS.map(() => true));
    const targets = hostAddresses().flatMap((host) => ENGINE_PORTS.map((port) => ({ host, port })));
    for (const machine of ['ws', 'plain']) {
      const files = await root(a, machine, 'find / \\( -path /proc -o -path /sys \\) -prune -o -type s -print 2>/dev/null; ls -d /var/run/docker.sock /run/docker.sock /run/containerd /var/run/libvirt /run/libvirt 2>&1');
      const sockets = files.stdout.split('\n').filter((l) => l.startsWith('/'));
      expect(sockets.filter((s) => /docker|containerd|libvirt|virt\w*d|podman/.test(s))).toEqual([]);
      expect(files.stdout.match(/No such file or directory/g)).toHaveLength(5);
    }
    const run = await root(a, 'ws', connectScript(targets));
    const outcomes = connectOutcomes(run.stdout);
    expect(outcomes.size).toBe(targets.length);
    expect([...outcomes].filter(([, o]) => o === 'reached' || o === 'refused')).toEqual([]);
  }, 30_000);

  test('another lab\'s machine and container names do not resolve in a lab; its own do', async () => {
    const names = [`exl-${b}-ws`, `exl-${b}-plain`, ...bIds.map((id) => id.slice(0, 12))];
    const run = await root(a, 'ws', `export RES_OPTIONS='timeout:2 attempts:1'
getent hosts exl-${a}-plain
${names.map((n) => `getent hosts ${n} || echo "unresolved ${n}" &`).join('\n')}
wait`);
    // Control: the same lookup finds the lab's own machine.
    expect(run.stdout).toMatch(new RegExp(`^${address(a, 'plain').replace(/\./g, '\\.')}\\s+exl-${a}-plain$`, 'm'));
    for (const n of names) expect(run.stdout).toContain(`unresolved ${n}`);
    for (const other of [address(b, 'ws'), address(b, 'plain')]) expect(run.stdout).not.toContain(other);
  }, 30_000);

  test('no name outside the lab resolves: the engine\'s DNS (127.0.0.11) forwards only to the machine itself, never to the host\'s resolvers', async () => {
    const hostResolvers = [...readFileSync('/etc/resolv.conf', 'utf8').matchAll(/^nameserver\s+(\S+)/gm)].map((m) => m[1] as string);
    const probe = `examlab-${Date.now().toString(36)}.example.com`;
    const run = await root(
      a,
      'ws',
      `export RES_OPTIONS='timeout:2 attempts:1'
echo "--- resolv.conf"; cat /etc/resolv.conf; echo "--- lookups"
for n in deb.debian.org example.com; do getent hosts $n || echo "unresolved $n" & done
dig +time=2 +tries=1 +short @127.0.0.11 deb.debian.org A | grep -E '^[0-9a-f.:]+$' | sed 's/^/dig: /'
wait
# A resolver of the machine's own, on its loopback: what the engine forwards lands here.
cat > /tmp/dns.pl <<'EOF'
use IO::Socket::INET;
my $s = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => 53, Proto => "udp") or die "listen: $!";
$s->recv(my $q, 512); my $i = 12; my @l;
while (my $n = ord substr($q, $i, 1)) { push @l, substr($q, $i + 1, $n); $i += $n + 1 }
print "asked: ", join(".", @l), "\\n";
EOF
timeout 8 perl /tmp/dns.pl > /tmp/asked 2>&1 &
sleep 0.5
dig +time=2 +tries=1 @127.0.0.11 ${probe} A >/dev/null
wait
cat /tmp/asked`,
    );
    const conf = run.stdout.split('--- lookups')[0] as string;
    expect(conf.match(/^nameserver\s+\S+/gm)).toEqual(['nameserver 127.0.0.11']);
    for (const resolver of hostResolvers) expect(conf).not.toContain(resolver);
    expect(run.stdout).toContain('unresolved deb.debian.org');
    expect(run.stdout).toContain('unresolved example.com');
    expect(run.stdout).not.toMatch(/^dig: /m);
    expect(run.stdout).toContain(`asked: ${probe}`);
  }, 60_000);

  test('/proc in a lab lists only its own processes: none of another lab\'s', async () => {
    const top = (await docker.getContainer(`exl-${b}-ws`).top({ ps_args: '-o pid,args' })) as { Processes: string[][] };
    const bPids = top.Processes.map((p) => p[0] as string);
    // Controls: the host sees the marker in lab B, and B's own /proc shows it to B.
    expect(top.Processes.some((p) => (p[1] as string).includes(MARKER))).toBe(true);
    const script = `cd /proc; for p in [0-9]*; do echo "pid $p $(tr '\\0' ' ' < $p/cmdline 2>/dev/null) $(cat $p/comm 2>/dev/null)"; done
grep -ls ${MARKER} /proc/timer_list /proc/sched_debug /proc/locks /proc/schedstat
dmesg >/dev/null 2>&1 && echo KERNEL-LOG-READ`;
    expect((await root(b, 'ws', script)).stdout).toContain(MARKER);
    for (const machine of ['ws', 'plain']) {
      const run = await root(a, machine, script);
      expect(run.stdout).toMatch(/^pid 1 /m);
      expect(run.stdout).not.toContain(MARKER);
      expect(run.stdout).not.toContain('KERNEL-LOG-READ');
      const seen = [...run.stdout.matchAll(/^pid (\d+) /gm)].map((m) => m[1] as string);
      expect(seen.filter((p) => bPids.includes(p))).toEqual([]);
    }
  }, 30_000);

  test('cgroups in a lab show nothing of another lab, and no cgroup hierarchy can be mounted', async () => {
    // Control: on the host, lab B's containers have cgroups a lab would find if it saw them.
    const hostFind = bIds.flatMap((id) => ['systemd', 'memory', 'pids'].flatMap((h) => [`/sys/fs/cgroup/${h}/examlab/${id}`, `/sys/fs/cgroup/${h}/docker/${id}`]));
    expect(hostFind.filter((p) => existsSync(p)).length).toBeGreaterThan(0);
    for (const machine of ['ws', 'plain']) {
      const run = await root(
        a,
        machine,
        `find /sys/fs/cgroup 2>/dev/null; grep -rhs . /sys/fs/cgroup --include=cgroup.procs --include=tasks | head -500
cat /proc/self/mountinfo /proc/[0-9]*/cgroup 2>/dev/null
mkdir -p /tmp/cg
for o in memory pids cpu,cpuacct devices freezer none,name=systemd; do mount -t cgroup -o $o none /tmp/cg 2>/dev/null && echo "MOUNTED $o"; done
mount -t cgroup2 none /tmp/cg 2>/dev/null && echo "MOUNTED cgroup2"
unshare -Urm true 2>/dev/null && echo "USER-NAMESPACE"
unshare -C true 2>/dev/null && echo "CGROUP-NAMESPACE"
echo "in /tmp/cg: $(ls -A /tmp/cg | wc -l)"`,
      );
      expect(run.stdout).toContain('in /tmp/cg: 0');
      expect(run.stdout).not.toMatch(/MOUNTED|USER-NAMESPACE|CGROUP-NAMESPACE/);
      for (const id of bIds) expect(run.stdout).not.toContain(id.slice(0, 12));
    }
  }, 30_000);

  test('/sys/class/net in a lab lists only the machine\'s own interfaces', async () => {
    const hostOnly = readFileSync('/proc/net/dev', 'utf8')
      .split('\n')
      .slice(2)
      .map((l) => l.split(':')[0]?.trim() as string)
      .filter((n) => n && n !== 'lo' && n !== 'eth0');
    expect(hostOnly.length).toBeGreaterThan(0);
    const hostEth0 = existsSync('/sys/class/net/eth0/ifindex') ? readFileSync('/sys/class/net/eth0/ifindex', 'utf8').trim() : '';
    const run = await root(a, 'ws', `echo "sys: $(ls /sys/class/net | sort | tr '\\n' ' ')"
echo "netlink: $(ip -o link | awk -F': ' '{print $2}' | cut -d@ -f1 | sort | tr '\\n' ' ')"
echo "eth0: $(cat /sys/class/net/eth0/ifindex) $(ip -o link show eth0 | cut -d: -f1)"`);
    const sys = run.stdout.match(/^sys: (.*)$/m)?.[1]?.trim().split(' ') ?? [];
    const netlink = run.stdout.match(/^netlink: (.*)$/m)?.[1]?.trim().split(' ') ?? [];
    expect(sys).toEqual(netlink);
    expect(sys).toEqual(['eth0', 'lo']);
    for (const name of hostOnly) expect(sys).not.toContain(name);
    const [sysIndex, netlinkIndex] = run.stdout.match(/^eth0: (.*)$/m)?.[1]?.split(' ') ?? [];
    expect(sysIndex).toBe(netlinkIndex);
    expect(sysIndex).not.toBe(hostEth0);
  }, 30_000);

  test('the clock cannot be set from a lab: date -s fails and the host\'s clock does not move', async () => {
    const wall = Date.now();
    const mono = performance.now();
    const run = await root(a, 'ws', `date -s '2001-01-01 00:00:00'; echo "rc=$?"; date +%s`);
    const drift = Date.now() - wall - (performance.now() - mono);
    expect(run.stdout + run.stderr).toMatch(/Operation not permitted/);
    expect(run.stdout).toMatch(/^rc=[1-9]/m);
    expect(Math.abs(drift)).toBeLessThan(1000);
    const inside = Number(run.stdout.trim().split('\n').pop());
    expect(Math.abs(inside * 1000 - Date.now())).toBeLessThan(10_000);
  }, 30_000);

  test('no kernel module can be loaded from a lab (init_module, finit_module refused)', async () => {
    const before = existsSync('/proc/modules') ? readFileSync('/proc/modules', 'utf8') : '';
    const run = await root(a, 'ws', `modprobe dummy 2>/dev/null && echo MODPROBED
perl -e '$r = syscall(175, 0, 0, 0); print "init_module: ", ($r == -1 ? $! : "ok"), "\\n"; $r = syscall(313, 0, 0, 0); print "finit_module: ", ($r == -1 ? $! : "ok"), "\\n"'`);
    expect(run.stdout).toContain('init_module: Operation not permitted');
    expect(run.stdout).toContain('finit_module: Operation not permitted');
    expect(run.stdout).not.toContain('MODPROBED');
    expect(existsSync('/proc/modules') ? readFileSync('/proc/modules', 'utf8') : '').toBe(before);
  }, 30_000);

  test('no vsock socket, user namespace, keyring, BPF or io_uring from a lab: the kernel interfaces that reach past its walls', async () => {
    // vsock reaches the hypervisor's (or the host's virtual machines') services past every network rule; the others are the
    // kernel's largest surfaces for an unprivileged root. Each is tried by its system call, not through a tool that might lack.
    const run = await root(a, 'ws', `perl -e '
use Socket;
print "vsock: ", (socket(my $v, 40, SOCK_STREAM, 0) ? "opened" : $!), "\n";
print "inet: ", (socket(my $i, PF_INET, SOCK_STREAM, 0) ? "opened" : $!), "\n";
for ([unshare => 272, 0x10000000], [keyctl => 250, 0], [bpf => 321, 0], [io_uring_setup => 425, 1], [userfaultfd => 323, 0], [perf_event_open => 298, 0]) {
  my ($name, $nr, $arg) = @$_;
  my $r = syscall($nr, $arg, 0, 0, 0, 0);
  print "$name: ", ($r == -1 ? $! : "ok"), "\n";
}'`);
    expect(run.stdout.trim().split('\n')).toEqual([
      'vsock: Operation not permitted',
      'inet: opened',
      'unshare: Operation not permitted',
      'keyctl: Operation not permitted',
      'bpf: Operation not permitted',
      'io_uring_setup: Operation not permitted',
      'userfaultfd: Operation not permitted',
      'perf_event_open: Operation not permitted',
    ]);
  }, 30_000);

  test('the host\'s disks are neither in a lab\'s /dev nor openable or mountable, even by a machine that may mknod', async () => {
    const disks = readFileSync('/proc/partitions', 'utf8')
      .split('\n')
      .slice(2)
      .map((l) => l.trim().split(/\s+/))
      .filter((f) => f.length === 4)
      .map(([major, minor, , name]) => ({ major, minor, name: name as string }));
    expect(disks.length).toBeGreaterThan(0);
    // Reads only: a write to a host disk is never attempted, even as a test.
    const run = await root(
      a,
      'ws',
      `echo "dev: $(ls /dev | tr '\\n' ' ')"
${disks.map((d) => `mknod /tmp/disk-${d.name} b ${d.major} ${d.minor} && echo "MKNOD ${d.name}"; head -c 512 /tmp/disk-${d.name} >/dev/null 2>&1 && echo "READ ${d.name}"; mount -o ro /tmp/disk-${d.name} /mnt 2>/dev/null && echo "MOUNTED ${d.name}"`).join('\n')}
mknod /tmp/mem c 1 1 && head -c 1 /tmp/mem >/dev/null 2>&1 && echo "READ mem"`,
    );
    const dev = run.stdout.match(/^dev: (.*)$/m)?.[1]?.split(' ') ?? [];
    for (const d of disks) {
      expect(dev).not.toContain(d.name);
      // The machine may create the node (MKNOD): what refuses the disk is the engine's device rules.
      expect(run.stdout).toContain(`MKNOD ${d.name}`);
    }
    expect(run.stdout).not.toMatch(/READ|MOUNTED/);
  }, 30_000);

  test('kernel settings of the host cannot be changed from a lab: sysrq, core_pattern, hostname', async () => {
    const settings = ['/proc/sys/kernel/core_pattern', '/proc/sys/kernel/sysrq', '/proc/sys/kernel/hostname'];
    const read = () => settings.map((p) => (existsSync(p) ? readFileSync(p, 'utf8') : undefined));
    const before = read();
    const host = hostname();
    try {
      const run = await root(
        a,
        'ws',
        `echo h > /proc/sysrq-trigger 2>/dev/null && echo "WROTE sysrq-trigger"
echo 0 > /proc/sys/kernel/sysrq 2>/dev/null && echo "WROTE sysrq"
echo examlab-core > /proc/sys/kernel/core_pattern 2>/dev/null && echo "WROTE core_pattern"
echo examlab-evil > /proc/sys/kernel/hostname 2>/dev/null && echo "WROTE hostname"
hostname examlab-evil 2>/dev/null
echo "hostname now: $(hostname)"`,
      );
      expect(run.stdout).not.toContain('WROTE');
      expect(run.stdout).toContain('hostname now:');
      // The machine's hostname is its own (UTS namespace): whatever happened inside, the host's is unchanged.
      expect(read()).toEqual(before);
      expect(hostname()).toBe(host);
    } finally {
      // Only if the test failed: the host's settings put back.
      const after = read();
      settings.forEach((p, i) => before[i] !== undefined && after[i] !== before[i] && writeFileSync(p, before[i] as string));
    }
  }, 30_000);

  test('reboot and kexec from a lab are refused: the host and the machine keep running', async () => {
    const bootId = readFileSync('/proc/sys/kernel/random/boot_id', 'utf8');
    // reboot(2) asks only to turn Ctrl-Alt-Del off (harmless even if it passed); kexec with nothing to load.
    const run = await root(
      a,
      'ws',
      `perl -e '$r = syscall(169, 0xfee1dead, 672274793, 0, 0); print "reboot: ", ($r == -1 ? $! : "ok"), "\\n"; $r = syscall(246, 0, 0, 0, 0); print "kexec_load: ", ($r == -1 ? $! : "ok"), "\\n"; $r = syscall(320, -1, -1, 0, 0, 0); print "kexec_file_load: ", ($r == -1 ? $! : "ok"), "\\n"'`,
    );
    for (const call of ['reboot', 'kexec_load', 'kexec_file_load']) expect(run.stdout).toContain(`${call}: Operation not permitted`);
    expect(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8')).toBe(bootId);
    expect((await docker.getContainer(`exl-${a}-ws`).inspect()).State.Running).toBe(true);
  }, 30_000);
});
