import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import Dockerode from 'dockerode';
import type { RunRecord } from '../../src/labs/index.js';
import { createTestApp, inlineScenario, rootShell, scenarioHead } from './helpers.js';

/**
 * The candidate is root in their lab, knows examlab's source and wants a
 * better grade, the hidden checks, or a stalled grading. Each test plays one
 * attack on a lab still in its broken state (as a candidate would, through
 * a root shell) and shows the grade does not move and nothing leaks.
 */
const SCENARIO = `${scenarioHead('trust')}machines:
  - name: pc
    image: workstation
    # Room for the process flood below (a scenario may allow this many).
    resources: { pids: 4096, memory: 1G }
setup:
  - machine: pc
    run: systemctl enable --now cups.service
  # SSH hardening is exam content: root may no longer log in over SSH, and the steps after it still run.
  - machine: pc
    run: |
      sed -i 's/^#\\?PermitRootLogin.*/PermitRootLogin no/' /etc/ssh/sshd_config
      systemctl reload ssh
  - machine: pc
    run: touch /etc/after-hardening
faults:
  - machine: pc
    run: |
      systemctl disable --now cups.service cups.socket cups.path
      printf 'nameserver {{ networks.lan.prefix }}.250\\n' > /etc/resolv.conf
      useradd -M -s /usr/sbin/nologin intrus
checks:
  - { id: cups-active, title: t, machine: pc, kind: service, name: cups, active: true, enabled: true, timeout: 3s }
  - { id: cups-port, title: t, machine: pc, kind: port, port: 631, timeout: 3s }
  - { id: cupsd-process, title: t, machine: pc, kind: process, executable: /usr/sbin/cupsd, timeout: 3s }
  - { id: dns, title: t, machine: pc, kind: dns, name: www.example.lab, timeout: 3s }
  - { id: intruder-gone, title: t, machine: pc, kind: user, name: intrus, exists: false, timeout: 3s }
  - { id: hidden-marker, title: t, machine: pc, kind: file, path: /etc/examlab-hidden-7f3a, hidden: true, timeout: 3s }
`;

const BROKEN = [
  ['cups-active', 'fail'],
  ['cups-port', 'fail'],
  ['cupsd-process', 'fail'],
  ['dns', 'fail'],
  ['intruder-gone', 'fail'],
  ['hidden-marker', 'fail'],
];

const statuses = (run: RunRecord) => run.results.map((r) => [r.checkId, r.status]);

describe('the grader does not take a hostile machine\'s word for it', () => {
  let app: Awaited<ReturnType<typeof createTestApp>>;
  let labId: string;
  const shell = (script: string, timeoutMs?: number) => rootShell(app, labId, 'pc', script, timeoutMs);

  beforeAll(async () => {
    app = await createTestApp();
    labId = (await app.labs.up(inlineScenario(SCENARIO, 'trust'))).id;
  }, 300_000);

  afterAll(async () => {
    if (labId) await app.labs.destroy(labId);
    app?.cleanup();
  }, 120_000);

  test('a lab whose setup refuses root over SSH is provisioned and graded all the same', async () => {
    expect((await shell('grep -c "^PermitRootLogin no" /etc/ssh/sshd_config; test -e /etc/after-hardening && echo after')).stdout).toBe('1\nafter\n');
    const run = await app.labs.grade(labId);
    expect(statuses(run)).toEqual(BROKEN);
    expect(run.score?.points).toBe(0);
  }, 120_000);

  test('an SFTP server that never answers, and sshd stopped, neither stall nor move the grade', async () => {
    const sftp = `sed -i 's|^Subsystem.*sftp.*|Subsystem sftp /bin/sleep 86400|' /etc/ssh/sshd_config
grep -q '^Subsystem sftp /bin/sleep' /etc/ssh/sshd_config && systemctl stop ssh.service ssh.socket 2>/dev/null; true`;
    expect((await shell(sftp)).exitCode).toBe(0);
    const started = Date.now();
    expect(statuses(await app.labs.grade(labId))).toEqual(BROKEN);
    expect(Date.now() - started).toBeLessThan(30_000);
  }, 120_000);

  test("a socket planted on systemd's private bus, answering in its name, is not asked", async () => {
    const socket = `rm -f /run/systemd/private
cat > /etc/systemd/system/liar.socket <<'EOF'
[Socket]
ListenStream=/run/systemd/private
Accept=yes
EOF
cat > /etc/systemd/system/liar@.service <<'EOF'
[Service]
ExecStart=/bin/sh -c 'printf "OK 0123456789abcdef\\\\r\\\\n"; cat >/dev/null'
StandardInput=socket
EOF
systemctl daemon-reload && systemctl start liar.socket && test -S /run/systemd/private`;
    expect((await shell(socket)).exitCode).toBe(0);
    expect(statuses(await app.labs.grade(labId))).toEqual(BROKEN);
  }, 120_000);

  test("a process named like the service, even moved into the service's cgroup, is not the service", async () => {
    const fake = `cp /bin/sleep /usr/local/sbin/cupsd
mkdir -p /sys/fs/cgroup/systemd/system.slice/cups.service
setsid bash -c 'echo $$ > /sys/fs/cgroup/systemd/system.slice/cups.service/cgroup.procs; exec -a cupsd /usr/local/sbin/cupsd 100000' </dev/null >/dev/null 2>&1 &
sleep 0.5
cat /sys/fs/cgroup/systemd/system.slice/cups.service/cgroup.procs | wc -l; cat /proc/$(cat /sys/fs/cgroup/systemd/system.slice/cups.service/cgroup.procs | head -1)/comm`;
    const planted = await shell(fake);
    expect(planted.stdout).toBe('1\ncupsd\n');
    const run = await app.labs.grade(labId);
    expect(statuses(run)).toEqual(BROKEN);
    expect(run.results[0]?.actual).toMatch(/not running its program \(\/usr\/local\/sbin\/cupsd\)/);
  }, 120_000);

  test("a watcher racing the grader finds no file to change and cannot read the probe's work", async () => {
    const watcher = `cat > /usr/local/bin/watch-grader <<'EOF'
#!/bin/sh
# Anything new of the grader's in the writable places, and the stdin of any probe, as fast as it can.
while :; do
  for d in /root /tmp /var/tmp /dev/shm /run; do ls -a "$d" 2>/dev/null | grep -i examlab >> /var/tmp/seen; done
  for p in /proc/[0-9]*; do
    case "$(cat $p/cmdline 2>/dev/null | tr '\\0' ' ')" in
      *examlab-probe*) cat $p/cmdline >> /var/tmp/cmdlines 2>/dev/null; echo >> /var/tmp/cmdlines; cat $p/fd/0 >> /var/tmp/stolen 2>/dev/null; cat $p/environ >> /var/tmp/stolen 2>/dev/null ;;
    esac
  done
done
EOF
chmod 755 /usr/local/bin/watch-grader
: > /var/tmp/seen; : > /var/tmp/stolen; : > /var/tmp/cmdlines
setsid /usr/local/bin/watch-grader </dev/null >/dev/null 2>&1 &
echo started`;
    expect((await shell(watcher)).stdout).toBe('started\n');
    for (let i = 0; i < 3; i++) expect(statuses(await app.labs.grade(labId))).toEqual(BROKEN);
    const found = await shell('pkill -f watch-grader; echo seen:$(wc -c < /var/tmp/seen) stolen:$(wc -c < /var/tmp/stolen); grep -c examlab-hidden /var/tmp/stolen; sort -u /var/tmp/cmdlines | tr "\\0" " "');
    const [counts, hidden, ...cmdlines] = found.stdout.trim().split('\n');
    expect(counts).toBe('seen:0 stolen:0');
    expect(hidden).toBe('0');
    // The probe's command line says nothing of the checks.
    expect(cmdlines.map((l) => l.trim()).filter(Boolean).every((l) => l === '/.examlab-grader/examlab-probe serve')).toBe(true);
  }, 180_000);

  test('liars on PATH and a preloaded library do not move the grade', async () => {
    const planted = await shell(LIARS);
    expect(planted.exitCode).toBe(0);
    // The liars are in place: the machine's own tools now claim everything works.
    const lie = await shell('LD_PRELOAD= /usr/bin/systemctl is-active cups; /usr/bin/ss -ltn');
    expect(lie.stdout).toContain('active');
    expect(lie.stdout).toContain('0.0.0.0:631');
    expect(statuses(await app.labs.grade(labId))).toEqual(BROKEN);
  }, 120_000);

  test("root's login shell and profiles replaced: the grader never runs them", async () => {
    const wrap = `cat > /usr/local/bin/wrap <<'EOF'
#!/bin/sh
echo "$(date +%s) $*" >> /var/tmp/wrapper-ran
exec /bin/bash "$@"
EOF
chmod 755 /usr/local/bin/wrap
usermod -s /usr/local/bin/wrap root
for f in /root/.bashrc /root/.profile /etc/profile /etc/bash.bashrc; do echo 'echo "$(date +%s) profile" >> /var/tmp/wrapper-ran' >> "$f"; done
: > /var/tmp/wrapper-ran`;
    expect((await shell(wrap)).exitCode).toBe(0);
    expect(statuses(await app.labs.grade(labId))).toEqual(BROKEN);
    expect((await shell('wc -c < /var/tmp/wrapper-ran')).stdout.trim()).toBe('0');
  }, 120_000);

  test('the probe cannot be changed or covered: its volume is read-only and root cannot mount', async () => {
    const tamper = await shell(`echo x > /.examlab-grader/examlab-probe 2>&1; rm -f /.examlab-grader/examlab-probe 2>&1; mv /.examlab-grader /x 2>&1; mount -t tmpfs none /.examlab-grader 2>&1; true`);
    expect(tamper.stdout).toMatch(/Read-only file system/);
    expect(tamper.stdout).toMatch(/(busy|Read-only)/);
    expect(tamper.stdout).toMatch(/mount: .*(permission denied|must be superuser)/i);
    expect(statuses(await app.labs.grade(labId))).toEqual(BROKEN);
  }, 120_000);

  test('an account database padded past what the grader reads hides nothing: the check is an error, never a pass', async () => {
    const pad = `cp /etc/passwd /var/tmp/passwd.orig
grep -v '^intrus:' /var/tmp/passwd.orig > /etc/passwd
i=0; while [ $i -lt 24000 ]; do echo "pad$i:x:$((20000+i)):100::/nonexistent:/usr/sbin/nologin"; i=$((i+1)); done >> /etc/passwd
grep '^intrus:' /var/tmp/passwd.orig >> /etc/passwd
wc -c < /etc/passwd`;
    expect(Number((await shell(pad, 120_000)).stdout.trim())).toBeGreaterThan(1 << 20);
    const run = await app.labs.grade(labId);
    const intruder = run.results.find((r) => r.checkId === 'intruder-gone');
    expect(intruder).toMatchObject({ status: 'error', points: 0 });
    expect(intruder?.message).toMatch(/whole/);
    expect(run.score?.complete).toBe(false);
    await shell('cp /var/tmp/passwd.orig /etc/passwd');
    expect(statuses(await app.labs.grade(labId))).toEqual(BROKEN);
  }, 180_000);

  test('a probe stopped by the candidate ends the run within its bound: errors, never a hung grading', async () => {
    const stall = `cat > /usr/local/bin/stall-grader <<'EOF'
#!/bin/sh
while :; do pkill -STOP -x examlab-probe; done
EOF
chmod 755 /usr/local/bin/stall-grader
setsid /usr/local/bin/stall-grader </dev/null >/dev/null 2>&1 &
echo started`;
    expect((await shell(stall)).stdout).toBe('started\n');
    const started = Date.now();
    const run = await app.labs.grade(labId);
    const seconds = (Date.now() - started) / 1000;
    // Six checks of 3 s each: an 18 s run, and 5 s for the engine.
    expect(seconds).toBeLessThan(30);
    expect(run.results.every((r) => r.status === 'error' && r.points === 0)).toBe(true);
    expect(run.results[0]?.message).toMatch(/did not finish within/);
    await shell('pkill -KILL -f stall-grader; sleep 0.2; pkill -KILL -x examlab-probe; true');
    expect(statuses(await app.labs.grade(labId))).toEqual(BROKEN);
  }, 180_000);

  test('a flood of processes past what the grader lists: the check that needs the whole list is an error, the others keep their verdicts, the run ends in time', async () => {
    // 1300 processes, each executing a file under a 4 KB path with a 4 KB command line: about 10 MB of process listing, past the probe's 8 MiB.
    const flood = `d=/var/tmp; i=0; while [ $i -lt 16 ]; do d="$d/$(printf '%0250d' $i)"; i=$((i+1)); done
mkdir -p "$d" && cp /bin/sleep "$d/s"
arg=$(printf '%04000d' 0)
i=0; while [ $i -lt 1300 ]; do setsid "$d/s" 3600 "$arg" </dev/null >/dev/null 2>&1 & i=$((i+1)); done
sleep 2; pgrep -c -x s`;
    expect(Number((await shell(flood, 120_000)).stdout.trim())).toBeGreaterThanOrEqual(1300);
    const started = Date.now();
    const run = await app.labs.grade(labId);
    expect((Date.now() - started) / 1000).toBeLessThan(30);
    const process = run.results.find((r) => r.checkId === 'cupsd-process');
    expect(process).toMatchObject({ status: 'error', points: 0 });
    expect(process?.message).toMatch(/whole/);
    expect(statuses(run).filter(([id]) => id !== 'cupsd-process')).toEqual(BROKEN.filter(([id]) => id !== 'cupsd-process'));
    expect(run.score?.complete).toBe(false);
    await shell('pkill -KILL -x s; sleep 1; pgrep -c -x s; true');
    expect(statuses(await app.labs.grade(labId))).toEqual(BROKEN);
  }, 240_000);

  test("a directory tree nested past the kernel's path limit does not keep the lab from being removed", async () => {
    // The engine's btrfs driver walks a layer by full path: past 4096 bytes it cannot, and the container would stay.
    const deep = `mk() { p=$1; i=0; while [ $i -lt 12 ]; do p="$p/$(printf '%0250d' $i)"; i=$((i+1)); done; mkdir -p "$p"; echo "$p"; }
outer=$(mk /var/tmp/deep-a); inner=$(mk /var/tmp/deep-b)
mv /var/tmp/deep-b "$outer/" && chmod 000 "$outer"
find /var/tmp/deep-a | awk '{ if (length($0) > m) m = length($0) } END { print m }'`;
    expect(Number((await shell(deep, 60_000)).stdout.trim())).toBeGreaterThan(6000);
    const docker = new Dockerode();
    const ofLab = () => docker.listContainers({ all: true, filters: { label: [`examlab.lab=${labId}`] } });
    expect(await ofLab()).toHaveLength(1);
    await app.labs.destroy(labId);
    expect(await ofLab()).toEqual([]);
    labId = '';
  }, 600_000);
});

/** Liars: each prints what a grader that trusted it would take as a pass. */
const LIARS = `
for f in /usr/bin/systemctl /bin/systemctl; do
  cat > "$f" <<'EOF'
#!/bin/sh
case "$*" in
  *is-enabled*) echo enabled ;;
  *show*) printf 'ActiveState=active\\nUnitFileState=enabled\\nLoadState=loaded\\n' ;;
  *) echo active ;;
esac
exit 0
EOF
  chmod 755 "$f"
done
for f in /usr/bin/ss /bin/ss /usr/sbin/ss; do
  printf '#!/bin/sh\\necho "LISTEN 0 128 0.0.0.0:631 0.0.0.0:*"\\n' > "$f"; chmod 755 "$f"
done
printf '#!/bin/sh\\necho "  PID TTY TIME CMD"; echo "  77 ?  00:00:00 cupsd"\\n' > /usr/bin/ps; chmod 755 /usr/bin/ps
for f in /usr/bin/nslookup /usr/bin/host /usr/bin/dig /usr/bin/getent; do
  printf '#!/bin/sh\\necho "www.example.lab has address 10.0.0.5"\\n' > "$f"; chmod 755 "$f"
done
# A library preloaded into every dynamically linked program.
printf '/usr/lib/examlab-liar.so\\n' > /etc/ld.so.preload
head -c 64 /dev/urandom > /usr/lib/examlab-liar.so
`;
