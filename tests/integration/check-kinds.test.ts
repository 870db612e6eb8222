import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import type { CheckResult } from '../../src/grading/results.js';
import { createTestApp, inlineScenario, leftovers, scenarioHead } from './helpers.js';

/**
 * Every check kind, passing and failing, against one real lab (a workstation
 * and a server). A check's id says the status it must end with.
 */
const SCENARIO = `${scenarioHead('kinds')}machines:
  - name: ws
    image: workstation
    tmpfs: [{ path: /mnt/data, size: 8M }]
  - name: srv
    image: server
    networks: [{ network: lan, host: 5 }]
setup:
  - machine: ws
    run: |
      printf 'LEVEL=3\\nname=kinds\\n' > /etc/kinds.conf
      chown root:adm /etc/kinds.conf && chmod 640 /etc/kinds.conf
      ln -sf /etc/kinds.conf /etc/kinds.link
      groupadd -f team
      useradd -m -s /bin/bash -G team alice && usermod -L alice
      useradd -m -s /bin/sh bob && echo 'bob:S3cret-pw' | chpasswd
      echo 'UUID=1234 /mnt/data ext4 defaults 0 2' >> /etc/fstab
      head -c 6M /dev/zero > /mnt/data/fill
      nohup sleep 10000 >/dev/null 2>&1 &
      mkdir -p /srv/team /srv/acl /srv/closed/inner
      chown root:team /srv/team && chmod 2770 /srv/team
      chmod 0750 /srv/acl && setfacl -m u:bob:rwx /srv/acl
      chmod 0700 /srv/closed && chmod 0777 /srv/closed/inner
  - machine: srv
    run: |
      printf 'no-resolv\\naddress=/www.kinds.lab/{{ machines.srv.ip }}\\n' > /etc/dnsmasq.d/kinds.conf
      echo 'nameserver 127.0.0.1' > /etc/resolv.conf
      echo '<h1>kinds</h1>' > /var/www/html/index.html
      systemctl restart dnsmasq nginx
checks:
  - { id: pass-command, title: t, machine: ws, kind: command, run: "echo hello; echo oops >&2", stdout: hello, stderr: { contains: oops } }
  - { id: pass-command-as-user, title: t, machine: ws, kind: command, user: bob, run: id -un, stdout: bob }
  - { id: fail-command, title: t, machine: ws, kind: command, run: "exit 3" }
  - { id: error-command-timeout, title: t, machine: ws, kind: command, run: "sleep 30", timeout: 2s }
  - { id: pass-file, title: t, machine: ws, kind: file, path: /etc/kinds.conf, type: file, mode: "0640", owner: root, group: adm, content: { matches: "^LEVEL=3$" }, size: { gt: 5 } }
  - { id: pass-symlink, title: t, machine: ws, kind: file, path: /etc/kinds.link, type: symlink, target: /etc/kinds.conf }
  - { id: pass-file-absent, title: t, machine: ws, kind: file, path: /etc/nothing-here, exists: false }
  - { id: fail-file-mode, title: t, machine: ws, kind: file, path: /etc/kinds.conf, mode: "0644" }
  - { id: fail-file-missing, title: t, machine: ws, kind: file, path: /etc/nothing-here }
  - { id: pass-service, title: t, machine: ws, kind: service, name: cups, active: true, enabled: true }
  - { id: pass-service-stopped, title: t, machine: ws, kind: service, name: appli-absente, active: false }
  - { id: fail-service, title: t, machine: srv, kind: service, name: cups }
  - { id: pass-port, title: t, machine: ws, kind: port, port: 631, address: { contains: 127.0.0.1 } }
  - { id: pass-port-udp, title: t, machine: srv, kind: port, port: 53, protocol: udp }
  - { id: fail-port, title: t, machine: ws, kind: port, port: 8080 }
  - { id: pass-package, title: t, machine: ws, kind: package, name: cups-daemon, version: { matches: "^2\\\\." } }
  - { id: fail-package, title: t, machine: ws, kind: package, name: apache2 }
  - { id: pass-user, title: t, machine: ws, kind: user, name: alice, groups: { contains: team }, shell: /bin/bash, locked: true }
  - { id: pass-user-login, title: t, machine: ws, kind: user, name: bob, login: { password: S3cret-pw } }
  - { id: fail-user-login, title: t, machine: ws, kind: user, name: bob, login: { password: wrong } }
  - { id: fail-user-missing, title: t, machine: ws, kind: user, name: nobody-here }
  - { id: pass-group, title: t, machine: ws, kind: group, name: team, members: { equals: [alice] } }
  - { id: fail-group, title: t, machine: ws, kind: group, name: team, members: { contains: bob } }
  - { id: pass-access-group, title: t, machine: ws, kind: access, path: /srv/team, user: alice, read: true, write: true }
  - { id: fail-access-other, title: t, machine: ws, kind: access, path: /srv/team, user: bob, write: true }
  - { id: pass-access-acl, title: t, machine: ws, kind: access, path: /srv/acl, user: bob, write: true, execute: true }
  - { id: pass-access-denied, title: t, machine: ws, kind: access, path: /srv/acl, user: alice, read: false }
  - { id: fail-access-parent, title: t, machine: ws, kind: access, path: /srv/closed/inner, user: bob, read: true }
  - { id: pass-process, title: t, machine: ws, kind: process, name: sleep, user: { contains: root } }
  - { id: fail-process, title: t, machine: ws, kind: process, name: httpd }
  - { id: pass-http, title: t, machine: ws, kind: http, url: "http://{{ machines.srv.ip }}/", body: { contains: kinds } }
  - { id: pass-http-by-name, title: t, machine: ws, kind: http, url: "http://www.kinds.lab/", from: srv, body: { contains: kinds } }
  - { id: pass-http-grader, title: t, machine: srv, kind: http, from: grader, url: "http://{{ machines.srv.ip }}/" }
  - { id: pass-http-404, title: t, machine: ws, kind: http, url: "http://{{ machines.srv.ip }}/missing", status: 404 }
  - { id: fail-http, title: t, machine: ws, kind: http, url: "http://{{ machines.srv.ip }}:8081/" }
  - { id: pass-dns, title: t, machine: ws, kind: dns, name: www.kinds.lab, server: srv, addresses: { contains: "{{ machines.srv.ip }}" } }
  - { id: pass-dns-grader, title: t, machine: srv, kind: dns, from: grader, server: srv, name: www.kinds.lab }
  - { id: fail-dns, title: t, machine: ws, kind: dns, name: nothing.kinds.lab, server: srv }
  - { id: fail-dns-no-server, title: t, machine: ws, kind: dns, name: www.kinds.lab, server: "{{ networks.lan.prefix }}.250", timeout: 4s }
  - { id: pass-reachable, title: t, machine: ws, kind: reachable, to: srv, port: 80 }
  - { id: pass-ping, title: t, machine: ws, kind: reachable, to: srv, ping: true }
  - { id: pass-reachable-grader, title: t, machine: srv, kind: reachable, from: grader, to: srv, port: 22 }
  - { id: fail-reachable, title: t, machine: ws, kind: reachable, to: srv, port: 81 }
  - { id: pass-unreachable, title: t, machine: ws, kind: reachable, to: srv, port: 81, reachable: false }
  - { id: pass-mount, title: t, machine: ws, kind: mount, path: /mnt/data, fstype: tmpfs, options: { contains: rw }, usedPercent: { gt: 50 }, persistent: true }
  - { id: fail-mount, title: t, machine: ws, kind: mount, path: /mnt/elsewhere }
  - { id: pass-sysctl, title: t, machine: ws, kind: sysctl, key: net.ipv4.ip_forward, value: { oneOf: [0, 1] } }
  - { id: fail-sysctl, title: t, machine: ws, kind: sysctl, key: kernel.hostname, value: not-the-hostname }
  - { id: skipped-after-fail, title: t, machine: ws, kind: file, path: /etc/kinds.conf, prerequisites: [fail-file-mode] }
`;

describe('check kinds on a real lab', () => {
  let app: Awaited<ReturnType<typeof createTestApp>>;
  let labId: string;
  let results: CheckResult[];

  let rootLoginsDuringGrading: number;
  let probeRunsDuringGrading: string[];

  beforeAll(async () => {
    app = await createTestApp();
    const lab = await app.labs.up(inlineScenario(SCENARIO, 'kinds'));
    labId = lab.id;
    const before = await rootLogins(labId, 'ws');
    const since = Date.now() / 1000;
    results = (await app.labs.grade(labId)).results;
    probeRunsDuringGrading = engineExecs(`exl-${labId}-ws`, since, Date.now() / 1000);
    rootLoginsDuringGrading = (await rootLogins(labId, 'ws')) - before;
  }, 300_000);

  afterAll(async () => {
    if (labId) {
      await app.labs.destroy(labId);
      expect(await leftovers(app, labId)).toEqual({ containers: 0, networks: 0, volumes: 0 });
    }
    app?.cleanup();
  }, 120_000);

  test('each check ends with the status its id names', () => {
    const wrong = results
      .map((r) => ({ id: r.checkId, want: r.checkId.split('-')[0], got: r.status, why: r.message ?? `${r.expected} | ${r.actual}` }))
      .filter((r) => r.want !== r.got);
    expect(wrong).toEqual([]);
  });

  test('every kind was exercised both ways', () => {
    const kinds = new Set(results.map((r) => r.kind));
    expect([...kinds].sort()).toEqual(['access', 'command', 'dns', 'file', 'group', 'http', 'mount', 'package', 'port', 'process', 'reachable', 'service', 'sysctl', 'user']);
    for (const kind of kinds) {
      const statuses = new Set(results.filter((r) => r.kind === kind).map((r) => r.status));
      expect([kind, statuses.has('pass') && statuses.has('fail')]).toEqual([kind, true]);
    }
  });

  test('failing checks carry expected, actual and evidence', () => {
    const mode = results.find((r) => r.checkId === 'fail-file-mode') as CheckResult;
    expect(mode.expected).toContain('mode = "0644"');
    expect(mode.actual).toContain('mode "0640"');
    expect(mode.evidence).toContain('/etc/kinds.conf');
    const dns = results.find((r) => r.checkId === 'fail-dns-no-server') as CheckResult;
    expect(dns.actual).toMatch(/no answer/);
  });

  test('a check that runs out of time is an error, not a fail', () => {
    const timeout = results.find((r) => r.checkId === 'error-command-timeout') as CheckResult;
    expect(timeout.message).toMatch(/timed out after 2 s/);
  });

  test('one machine, one round trip: all the checks of ws ran in one start of the probe through the engine, with no SSH login', () => {
    expect(results.filter((r) => r.machine === 'ws').length).toBeGreaterThan(20);
    expect(probeRunsDuringGrading).toEqual(['/.examlab-grader/examlab-probe serve']);
    expect(rootLoginsDuringGrading).toBe(0);
  });
});

/** Root logins sshd accepted so far on a machine, read from its journal by the engine (not over SSH). */
/** The commands the engine started in a container between `since` and `until` (seconds), from its own event log. */
function engineExecs(container: string, since: number, until: number): string[] {
  const out = execFileSync('docker', ['events', '--since', since.toFixed(3), '--until', until.toFixed(3), '--filter', `container=${container}`, '--filter', 'event=exec_start', '--format', '{{.Action}}'], { encoding: 'utf8' });
  return out.split('\n').filter(Boolean).map((line) => line.replace(/^exec_start: /, ''));
}

async function rootLogins(labId: string, machine: string): Promise<number> {
  const docker = new (await import('dockerode')).default();
  const exec = await docker.getContainer(`exl-${labId}-${machine}`).exec({
    Cmd: ['sh', '-c', 'journalctl --no-pager -o cat -u ssh.service | grep -c "Accepted publickey for root" || true'],
    AttachStdout: true,
    AttachStderr: true,
  });
  const stream = await exec.start({});
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  // Docker multiplexes the stream: 8-byte frame headers precede the text.
  const text = Buffer.concat(chunks).toString('latin1').replace(/[\x00-\x08]/g, '');
  return Number(/(\d+)\s*$/.exec(text)?.[1] ?? NaN);
}
