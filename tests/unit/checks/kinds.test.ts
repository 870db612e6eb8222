import { checkKind, type FragmentOutput } from '../../../src/checks/registry.js';
import { parseProcNet } from '../../../src/checks/kinds/port.js';
import { lockReason } from '../../../src/checks/kinds/accounts.js';
import { checkSchema, type Check } from '../../../src/scenario/schema.js';

/** A check as the scenario would give it (defaults applied). */
function check(fields: Record<string, unknown>): Check {
  return checkSchema.parse({ id: 'c', title: 'c', machine: 'pc', ...fields }) as Check;
}

/** What a fragment reports with `emit KEY ...`. */
function emitted(facts: Record<string, string>, exitCode = 0): FragmentOutput {
  return { exitCode, stdout: '', stderr: '', facts: new Map(Object.entries(facts)) };
}

/** A fragment's plain output (the probe's KEY=VALUE lines, a command's stdout). */
function printed(stdout: string, exitCode = 0): FragmentOutput {
  return { exitCode, stdout, stderr: '', facts: new Map() };
}

function evaluate(c: Check, fragment?: FragmentOutput, observed?: unknown) {
  return checkKind(c.kind).evaluate(c, { fragment, observed });
}

const passes = (r: ReturnType<typeof evaluate>) => r.assertions.every((a) => a.pass);

describe('check kinds read what the probe saw', () => {
  test('file: mode, owner, group, type', () => {
    const c = check({ kind: 'file', path: '/srv/x', type: 'directory', mode: '2770', group: 'compta' });
    expect(passes(evaluate(c, emitted({ exists: '1', stat: 'directory|2770|root|compta|4096\n' })))).toBe(true);
    const broken = evaluate(c, emitted({ exists: '1', stat: 'directory|700|root|root|4096\n' }));
    expect(broken.assertions.filter((a) => !a.pass).map((a) => a.actual)).toEqual(['mode "0700"', 'group "root"']);
    expect(broken.evidence).toContain('mode 0700');
  });

  test('file: a missing file fails exists and says so', () => {
    const r = evaluate(check({ kind: 'file', path: '/nope' }), emitted({ exists: '0' }));
    expect(passes(r)).toBe(false);
    expect(r.evidence).toMatch(/no such file/);
  });

  test('service: active and enabled from systemd\'s own answer', () => {
    const c = check({ kind: 'service', name: 'cups', active: true, enabled: true });
    const out = (active: string, file: string) => printed(`unit=cups.service\nLoadState=loaded\nActiveState=${active}\nSubState=x\nUnitFileState=${file}\n`);
    expect(passes(evaluate(c, out('active', 'enabled')))).toBe(true);
    expect(evaluate(c, out('inactive', 'disabled')).assertions.map((a) => a.pass)).toEqual([false, false]);
    expect(evaluate(c, out('active', 'disabled')).assertions.map((a) => a.pass)).toEqual([true, false]);
  });

  test('service: a probe that cannot reach systemd is an error, not a fail', () => {
    const c = check({ kind: 'service', name: 'cups' });
    expect(() => evaluate(c, printed('error=systemd is not reachable\n', 3))).toThrow(/systemd is not reachable/);
  });

  test('port: parses the kernel socket tables (IPv4 and IPv6)', () => {
    const v4 = `  sl  local_address rem_address   st\n   0: 0100007F:0277 00000000:0000 0A 00000000:00000000\n   1: 00000000:0016 00000000:0000 0A 0\n   2: 0500E70A:0016 1400E70A:C350 01 0\n`;
    const v6 = `  sl  local_address\n   0: 00000000000000000000000000000000:0016 00000000000000000000000000000000:0000 0A 0\n`;
    expect(parseProcNet(v4)).toEqual([
      { address: '127.0.0.1', port: 631, state: '0A' },
      { address: '0.0.0.0', port: 22, state: '0A' },
      { address: '10.231.0.5', port: 22, state: '01' },
    ]);
    expect(parseProcNet(v6)).toEqual([{ address: '::', port: 22, state: '0A' }]);
    expect(passes(evaluate(check({ kind: 'port', port: 631 }), emitted({ v4, v6 })))).toBe(true);
    expect(passes(evaluate(check({ kind: 'port', port: 80 }), emitted({ v4, v6 })))).toBe(false);
    expect(passes(evaluate(check({ kind: 'port', port: 631, address: { not: '127.0.0.1' } }), emitted({ v4, v6 })))).toBe(false);
  });

  test('package: installed version from the dpkg database', () => {
    const status = 'Package: cups-daemon\nStatus: install ok installed\nVersion: 2.4.2-3\n';
    expect(passes(evaluate(check({ kind: 'package', name: 'cups-daemon', version: { matches: '^2\\.4' } }), emitted({ status })))).toBe(true);
    const removed = 'Package: cups-daemon\nStatus: deinstall ok config-files\nVersion: 2.4.2-3\n';
    expect(passes(evaluate(check({ kind: 'package', name: 'cups-daemon' }), emitted({ status: removed })))).toBe(false);
  });

  test('user: groups, shell and lock state; the date is the grader\'s', () => {
    const facts = {
      passwd: 'alice:x:1001:1001::/home/alice:/bin/bash\n',
      shadow: 'alice:!$y$hash:19000:0:99999:7::0:\n',
      group: 'alice:x:1001:\ncompta:x:1002:bob,alice\nsudo:x:27:\n',
    };
    const r = evaluate(check({ kind: 'user', name: 'alice', groups: { contains: 'compta' }, shell: '/bin/bash', locked: false }), emitted(facts));
    expect(r.assertions.map((a) => [a.name, a.pass])).toEqual([['exists', true], ['shell', true], ['groups', true], ['locked', false]]);
    expect(lockReason('alice:$y$hash:19000:0:99999:7::1:', Date.UTC(2026, 0, 1))).toMatch(/expired on 1970-01-02/);
    expect(lockReason('alice:$y$hash:19000:0:99999:7:::', Date.UTC(2026, 0, 1))).toBeUndefined();
  });

  test('user: the login observation decides the login assertion', () => {
    const c = check({ kind: 'user', name: 'alice', login: { password: 'pw' } });
    const facts = emitted({ passwd: 'alice:x:1001:1001::/home/alice:/bin/bash\n', shadow: 'alice:$y$h:1::::::\n', group: '' });
    expect(passes(evaluate(c, facts, { ok: true, detail: 'alice logged in' }))).toBe(true);
    expect(passes(evaluate(c, facts, { ok: false, detail: 'refused' }))).toBe(false);
  });

  test('group: members include users whose primary group it is', () => {
    const facts = emitted({ group: 'compta:x:1002:bob\n', passwd: 'carol:x:1003:1002::/home/carol:/bin/sh\n' });
    expect(passes(evaluate(check({ kind: 'group', name: 'compta', members: { equals: ['bob', 'carol'] } }), facts))).toBe(true);
  });

  test('process: by name, with the user resolved from /etc/passwd', () => {
    const facts = emitted({ procs: '1\t0\tsystemd\t/sbin/init\n42\t33\tnginx\tnginx: worker process\n', passwd: 'www-data:x:33:33::/var/www:/usr/sbin/nologin\n' });
    expect(passes(evaluate(check({ kind: 'process', name: 'nginx', user: { contains: 'www-data' } }), facts))).toBe(true);
    expect(passes(evaluate(check({ kind: 'process', name: 'cupsd', running: false }), facts))).toBe(true);
    expect(passes(evaluate(check({ kind: 'process', command: { matches: 'worker' }, count: 1 }), facts))).toBe(true);
  });

  test('dns: answers from the probe; no server answering is a fail with the reason', () => {
    const c = check({ kind: 'dns', name: 'intranet.lan', addresses: { contains: '10.0.0.5' } });
    const ok = printed('server=10.0.0.5\nrcode=NOERROR\nanswer=A 10.0.0.5\n', 0);
    expect(passes(evaluate(c, ok))).toBe(true);
    const silent = evaluate(c, printed('server=10.0.0.254\nreason=no answer within 2000 ms\n', 1));
    expect(passes(silent)).toBe(false);
    expect(silent.assertions[0]?.actual).toMatch(/no answer within 2000 ms/);
    const nx = evaluate(c, printed('server=10.0.0.5\nrcode=NXDOMAIN\n', 0));
    expect(nx.assertions[0]?.actual).toBe('NXDOMAIN');
  });

  test('http: the last status line after redirects, and the body', () => {
    const log = '  HTTP/1.1 301 Moved\n  Location: /x\n  HTTP/1.1 200 OK\n';
    expect(passes(evaluate(check({ kind: 'http', url: 'http://x/', body: { contains: 'Intranet' } }), emitted({ rc: '0', log, body: '<h1>Intranet</h1>' })))).toBe(true);
    const down = evaluate(check({ kind: 'http', url: 'http://x/' }), emitted({ rc: '1', log: "wget: can't connect to remote host: Connection refused\n" }));
    expect(down.assertions[0]?.actual).toMatch(/no response \(wget: can't connect/);
  });

  test('mount: usage, fstab persistence, options', () => {
    const mounts = 'tmpfs /var/log/appli tmpfs rw,nosuid,nodev,size=65536k 0 0\n/dev/vdb1 /data ext4 rw,relatime 0 0\n';
    const df = 'Filesystem 1024-blocks Used Available Capacity Mounted on\ntmpfs 65536 61440 4096 94% /var/log/appli\n';
    expect(passes(evaluate(check({ kind: 'mount', path: '/var/log/appli', usedPercent: { lt: 50 } }), emitted({ mounts, df })))).toBe(false);
    const fstab = '# static\nUUID=1234 /data ext4 defaults 0 2\n';
    expect(passes(evaluate(check({ kind: 'mount', path: '/data', fstype: 'ext4', persistent: true, options: { contains: 'rw' } }), emitted({ mounts, fstab })))).toBe(true);
  });

  test('command: exit code defaults to 0; stdout is compared without the trailing newline', () => {
    const c = check({ kind: 'command', run: 'hostname', stdout: 'pc-compta' });
    expect(passes(evaluate(c, printed('pc-compta\n', 0)))).toBe(true);
    expect(passes(evaluate(c, printed('pc-compta\n', 1)))).toBe(false);
  });

  test('sysctl reads /proc/sys', () => {
    expect(passes(evaluate(check({ kind: 'sysctl', key: 'net.ipv4.ip_forward', value: 1 }), emitted({ value: '1\n' })))).toBe(true);
  });
});
