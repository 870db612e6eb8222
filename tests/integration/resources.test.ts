import { statfsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import Dockerode from 'dockerode';
import { createTestApp, inlineScenario, scenarioHead } from './helpers.js';
import { withSession } from '../../src/remote/ssh-client.js';
import { requireTarget } from '../../src/labs/access.js';

const docker = new Dockerode();
const MIB = 1024 ** 2;

/** A machine with small, explicit bounds, and checks that read a little of everything. */
const scenario = `${scenarioHead('bounded')}machines:
  - name: box
    image: systemd
    resources: { memory: 192M, pids: 256, cpus: 1, disk: 200M }
setup:
  - machine: box
    run: echo ready > /etc/ready && useradd -m alice
checks:
  - { id: ready, title: t, machine: box, kind: file, path: /etc/ready }
  - { id: alice, title: t, machine: box, kind: user, name: alice }
  - { id: sshd, title: t, machine: box, kind: service, name: ssh }
  - { id: port, title: t, machine: box, kind: port, port: 22 }
`;

type App = Awaited<ReturnType<typeof createTestApp>>;

async function onMachine(app: App, labId: string, command: string) {
  return withSession(requireTarget(app.stores.labs.get(labId), 'box'), 20_000, (s) => s.exec(command, { timeoutMs: 60_000 }));
}

async function timedGrade(app: App, labId: string): Promise<number> {
  const started = performance.now();
  const run = await app.labs.grade(labId);
  expect(run.results.map((r) => `${r.checkId}:${r.status}`)).toEqual(['ready:pass', 'alice:pass', 'sshd:pass', 'port:pass']);
  return performance.now() - started;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] as number;

/**
 * One candidate turns hostile inside their lab (root): a fork bomb, a
 * memory hog, a disk filler and two CPU spinners at once. The bounds of
 * their machine hold them, the other labs are graded within a stated bound
 * of their quiet time, and the filesystem of the store keeps its space.
 */
describe('one lab exhausting its resources', () => {
  let app: App;
  let hostile: string;
  let others: string[];
  let quietMs: number;

  beforeAll(async () => {
    app = await createTestApp();
    const ids = await Promise.all([0, 1, 2].map(() => app.labs.up(inlineScenario(scenario)).then((l) => l.id)));
    [hostile, ...others] = ids as [string, ...string[]];
    // The quiet time: the median of three gradings of each other lab, before anything starts.
    const times: number[] = [];
    for (let i = 0; i < 3; i++) for (const id of others) times.push(await timedGrade(app, id));
    quietMs = median(times);
  }, 300_000);

  afterAll(async () => {
    for (const id of [hostile, ...(others ?? [])]) if (id) await app.labs.destroy(id);
    app?.cleanup();
  }, 180_000);

  test('its disk is bounded: a filler stops at the machine\'s room, and the engine\'s filesystem keeps its space', async () => {
    const root = (await docker.info()) as { DockerRootDir: string };
    const freeBefore = freeBytes(root.DockerRootDir);
    const fill = await onMachine(app, hostile, 'fallocate -l 4G /big; echo "fallocate=$?"; dd if=/dev/zero of=/filler bs=1M count=4096 2>&1 | tail -1; sync; du -sm /filler | cut -f1');
    expect(fill.stdout).toMatch(/fallocate=1/);
    expect(fill.stdout + fill.stderr).toMatch(/quota exceeded|No space left/i);
    const written = Number(fill.stdout.trim().split('\n').pop()) * MIB;
    expect(written).toBeLessThanOrEqual(200 * MIB);
    // Not a lucky stop: the filesystem the labs live on lost no more than that room.
    expect(freeBefore - freeBytes(root.DockerRootDir)).toBeLessThan(400 * MIB);
  }, 120_000);

  test('no btrfs subvolume or snapshot can be made in a machine (each would have a disk quota of its own, outside the machine\'s), however the request is spelled', async () => {
    // btrfs lets any owner of a directory make a subvolume there (ioctl 0x94/14, /24 with quota groups to join), and of a subvolume a snapshot (/1, /23).
    // The kernel reads the request as 32 bits: the upper ones are the caller's to fill, so each is tried plain and with them set.
    const made = await onMachine(
      app,
      hostile,
      // The disk is full from the test before: the script goes to a tmpfs.
      `cat > /dev/shm/subvolumes.pl <<'PERL'
use Fcntl;
sysopen(my $dir, "/var/tmp", O_RDONLY | O_DIRECTORY) or die "open: $!";
sysopen(my $top, "/", O_RDONLY | O_DIRECTORY) or die "open /: $!";
my $n = 0;
for my $request (0x5000940E, 0x50009401, 0x50009418, 0x50009417) {
  for my $high (0, 0x100000000, 0xFFFFFFFF00000000) {
    my $fd = ($request & 0xff) == 0x01 || ($request & 0xff) == 0x17 ? fileno($top) : 0;
    my $args = ($request & 0xff) >= 0x17 ? pack("q Q Q Q Q Q Q a4040", $fd, 0, 0, 0, 0, 0, 0, "v" . $n++) : pack("q a4088", $fd, "v" . $n++);
    my $r = syscall(16, fileno($dir), $request | $high, $args);
    printf "%#x %s\n", $request | $high, $r == -1 ? "refused: $!" : "MADE";
  }
}
PERL
perl /dev/shm/subvolumes.pl; ls /var/tmp`,
    );
    const lines = made.stdout.trim().split('\n').filter((l) => l.startsWith('0x'));
    expect({ lines: lines.length, stderr: made.stderr }).toEqual({ lines: 12, stderr: '' });
    for (const line of lines) expect(line).toMatch(/refused: Operation not permitted$/);
    expect(made.stdout).not.toMatch(/^v\d+$/m);
  }, 120_000);

  test('inotify instances opened by one machine by the ten thousand leave the other labs theirs (every lab is the same root user to the kernel)', async () => {
    // Four processes of 10,000 instances each: five times the per-user limit a room used to get (8,192), well within the
    // machine's memory, which the kernel charges for them and which bounds how many one machine can hold.
    const flood = await onMachine(
      app,
      hostile,
      `ulimit -n 12000; for i in 1 2 3 4; do setsid perl -e 'open(my $o, ">", "/dev/shm/inotify-$$") or die; my $n = 0; while ($n < 10000) { last if syscall(294, 0) < 0; $n++ } print $o "$n\n"; close $o; sleep 30' </dev/null >/dev/null 2>&1 & done
sleep 10; cat /dev/shm/inotify-* | awk '{ n += $1 } END { print n + 0 }'`,
    );
    expect(Number(flood.stdout.trim().split('\n').pop())).toBe(40_000);
    const other = others[0] as string;
    const still = await onMachine(app, other, `perl -e 'print syscall(294, 0) < 0 ? "inotify: $!\n" : "inotify: ok\n"'; systemctl restart ssh && systemctl is-active ssh`);
    expect(still.stdout).toBe('inotify: ok\nactive\n');
    await onMachine(app, hostile, 'pkill -KILL perl; rm -f /dev/shm/inotify-*; true');
  }, 120_000);

  test('a fork bomb stops at the PID limit, a memory hog at the memory limit', async () => {
    // Read from outside while the attack runs: the kernel's OOM killer may end the machine's PID 1 (systemd) too, after
    // which the engine reports nothing more; what was seen until then is the bound holding.
    const container = docker.getContainer(`exl-${hostile}-box`);
    const seen = { pids: 0, maxUsage: 0, usage: 0 };
    let attacking = true;
    const watching = (async () => {
      while (attacking) {
        const s = await container.stats({ stream: false }).catch(() => undefined);
        if (s?.pids_stats?.current) {
          seen.pids = Math.max(seen.pids, s.pids_stats.current);
          seen.maxUsage = Math.max(seen.maxUsage, s.memory_stats.max_usage ?? 0);
          seen.usage = Math.max(seen.usage, s.memory_stats.usage ?? 0);
        }
        await new Promise((resolve) => setTimeout(resolve, 300));
      }
    })();
    const bomb = await onMachine(
      app,
      hostile,
      // Spawned detached: the bomb and the hog keep running through the next test.
      `setsid nohup bash -c 'f(){ f | f & }; f' >/dev/null 2>&1 &
       setsid nohup bash -c 'x=a; while true; do x="$x$x"; done' >/dev/null 2>&1 &
       for i in 1 2; do setsid nohup sh -c 'while :; do :; done' >/dev/null 2>&1 & done
       sleep 5; echo ok`,
    ).catch((err: Error) => ({ stdout: '', stderr: err.message }));
    // The session itself may be refused a process once the bomb fills the table: either way, the bounds are read from outside.
    expect(bomb.stdout + bomb.stderr).toBeDefined();
    attacking = false;
    await watching;
    // The attack is real (the table is full, the memory limit was hit) and held.
    expect(seen.pids).toBeGreaterThan(200);
    expect(seen.pids).toBeLessThanOrEqual(256);
    expect(seen.maxUsage).toBeGreaterThanOrEqual(0.95 * 192 * MIB);
    expect(seen.usage).toBeLessThanOrEqual(192 * MIB);
    const inspect = await container.inspect();
    expect(inspect.HostConfig).toMatchObject({ PidsLimit: 256, Memory: 192 * MIB, NanoCpus: 1e9 });
  }, 120_000);

  test('meanwhile the other labs are graded within 4 times their quiet time (or 10 s more), and the store stays writable', async () => {
    const loaded: number[] = [];
    for (let i = 0; i < 3; i++) for (const id of others) loaded.push(await timedGrade(app, id));
    const bound = Math.max(4 * quietMs, quietMs + 10_000);
    // eslint-disable-next-line no-console
    console.log(`grading the other labs: quiet ${Math.round(quietMs)} ms, under attack median ${Math.round(median(loaded))} ms, worst ${Math.round(Math.max(...loaded))} ms (bound ${Math.round(bound)} ms)`);
    expect(Math.max(...loaded)).toBeLessThanOrEqual(bound);
    // Every grading above was written to the store: six runs more per lab than before the attack.
    for (const id of others) expect(app.stores.labs.runs(id).length).toBe(6);
  }, 240_000);
});

function freeBytes(path: string): number {
  const fs = statfsSync(path);
  return fs.bavail * fs.bsize;
}
