import { checkKind, type ProbeContext, type ProbeRecord } from '../../../src/checks/registry.js';
import { parseProcNet } from '../../../src/checks/kinds/port.js';
import { lockReason } from '../../../src/checks/kinds/accounts.js';
import { oneLine } from '../../../src/checks/kinds/command.js';
import { checkSchema, type Check } from '../../../src/scenario/schema.js';
import { execFileSync } from 'node:child_process';

/** A check as the scenario would give it (defaults applied). */
function check(fields: Record<string, unknown>): Check {
  return checkSchema.parse({ id: 'c', title: 'c', machine: 'pc', ...fields }) as Check;
}

type Answer = string | Buffer | [ProbeRecord['status'], string | Buffer];

/** The probe's answers by key: a string is an `ok` record. */
function answers(records: Record<string, Answer>): Map<string, ProbeRecord> {
  return new Map(
    Object.entries(records).map(([key, a]) => {
      const [status, data] = Array.isArray(a) ? a : (['ok', a] as const);
      return [key, { status, data: Buffer.from(data) }];
    }),
  );
}

const missing: Answer = ['neg', 'missing'];

const context: ProbeContext = {
  addressOf: () => '10.0.0.1',
  trySshLogin: async () => ({ ok: true, detail: '' }),
  servicePrograms: (_machine, unit) => (unit === 'cups.service' ? ['/usr/sbin/cupsd'] : undefined),
};

function evaluate(c: Check, records: Record<string, Answer> = {}, observed?: unknown) {
  return checkKind(c.kind).evaluate(c, { probe: answers(records), observed }, context);
}

const passes = (r: ReturnType<typeof evaluate>) => r.assertions.every((a) => a.pass);
const stat = (type: string, mode: string, uid: number, gid: number) => `type=${type}\nmode=${mode}\nuid=${uid}\ngid=${gid}\nsize=4096\n`;
const passwd = 'root:x:0:0:root:/root:/bin/bash\nalice:x:1001:1001::/home/alice:/bin/bash\nwww-data:x:33:33::/var/www:/usr/sbin/nologin\n';
const group = 'root:x:0:\nalice:x:1001:\ncompta:x:1002:bob,alice\nsudo:x:27:\n';

describe('check kinds read what the probe saw', () => {
  test('file: mode, owner, group and type, names from the account files', () => {
    const c = check({ kind: 'file', path: '/srv/x', type: 'directory', mode: '2770', group: 'compta' });
    expect(passes(evaluate(c, { stat: stat('directory', '2770', 0, 1002), passwd, group }))).toBe(true);
    const broken = evaluate(c, { stat: stat('directory', '0700', 0, 0), passwd, group });
    expect(broken.assertions.filter((a) => !a.pass).map((a) => a.actual)).toEqual(['mode "0700"', 'group "root"']);
    expect(broken.evidence).toContain('mode 0700, owner root:root');
  });

  test('file: a missing file fails exists and says so; a probe error is an error', () => {
    const r = evaluate(check({ kind: 'file', path: '/nope' }), { stat: missing, passwd, group });
    expect(passes(r)).toBe(false);
    expect(r.evidence).toMatch(/no such file/);
    expect(() => evaluate(check({ kind: 'file', path: '/x' }), { stat: ['err', 'Permission denied'], passwd, group })).toThrow(/Permission denied/);
  });

  test('file: content from the probe\'s read; a non-regular file has none', () => {
    const c = check({ kind: 'file', path: '/etc/motd', content: { contains: 'Bienvenue' } });
    expect(passes(evaluate(c, { stat: stat('file', '0644', 0, 0), content: 'Bienvenue\n', passwd, group }))).toBe(true);
    const fifo = evaluate(c, { stat: stat('fifo', '0644', 0, 0), content: ['err', 'not a regular file (fifo)'], passwd, group });
    expect(fifo.assertions.at(-1)?.actual).toBe('content (not a regular file)');
  });

  test('service: running when its cgroup holds the program it ran in the sound system', () => {
    const c = check({ kind: 'service', name: 'cups', active: true, enabled: true });
    const unit = '[Service]\nExecStart=/usr/sbin/cupsd -l\n';
    const base = { file0: missing, file1: missing, file2: unit, file3: missing, masked: missing };
    const links = (enabled: boolean) => Object.fromEntries(['multi-user', 'graphical', 'default', 'sockets', 'timers', 'sysinit', 'basic', 'network-online', 'remote-fs', 'printer', 'getty'].flatMap((t) => [[`wants-${t}`, enabled && t === 'multi-user' ? 'type=symlink\n' : missing], [`runtime-${t}`, missing]]));
    expect(passes(evaluate(c, { ...base, ...links(true), cgroup: '120\t/usr/sbin/cupsd\t/usr/sbin/cupsd -l\n' }))).toBe(true);
    expect(evaluate(c, { ...base, ...links(false), cgroup: missing }).assertions.map((a) => a.pass)).toEqual([false, false]);
    // A process planted in the unit's cgroup is not the service.
    const planted = evaluate(c, { ...base, ...links(true), cgroup: '300\t/usr/bin/sleep\tsleep infinity\n' });
    expect(planted.assertions[0]).toMatchObject({ pass: false, actual: 'not running its program (/usr/bin/sleep)' });
    // Nor is a unit file rewritten to run something else: the reference is the sound system's.
    const rewritten = { ...base, file0: '[Service]\nExecStart=/bin/sleep infinity\n' };
    expect(evaluate(c, { ...rewritten, ...links(true), cgroup: '300\t/usr/bin/sleep\tsleep infinity\n' }).assertions[0]?.pass).toBe(false);
    // Merged /usr: /sbin/x and /usr/sbin/x are the same program.
    const other = check({ kind: 'service', name: 'ssh' });
    expect(passes(evaluate(other, { ...base, file2: '[Service]\nExecStart=/sbin/sshd -D\n', ...links(true), cgroup: '7\t/usr/sbin/sshd\tsshd: listener\n' }))).toBe(true);
  });

  test('service: a masked unit (its /etc link to /dev/null) is neither running nor enabled, and not an error', () => {
    const c = check({ kind: 'service', name: 'cups', active: true, enabled: true });
    const none = Object.fromEntries(['multi-user', 'graphical', 'default', 'sockets', 'timers', 'sysinit', 'basic', 'network-online', 'remote-fs', 'printer', 'getty'].flatMap((t) => [[`wants-${t}`, missing], [`runtime-${t}`, missing]]));
    const masked = evaluate(c, {
      file0: ['err', 'not a regular file (character)'],
      file1: missing,
      file2: '[Service]\nExecStart=/usr/sbin/cupsd -l\n',
      file3: missing,
      masked: 'type=symlink\ntarget=/dev/null\n',
      ...none,
      cgroup: missing,
    });
    expect(masked.assertions.map((a) => [a.name, a.pass, a.actual])).toEqual([
      ['active', false, 'inactive'],
      ['enabled', false, 'masked'],
    ]);
    expect(masked.evidence).toContain('cups.service: masked');
  });

  test('service: an explicit program matcher wins; an unknown program is an error', () => {
    const c = check({ kind: 'service', name: 'apache2', program: '/usr/sbin/apache2' });
    const base = { file0: missing, file1: missing, file2: '[Service]\nExecStart=/usr/sbin/apachectl start\n', file3: missing, masked: missing };
    const none = Object.fromEntries(['multi-user', 'graphical', 'default', 'sockets', 'timers', 'sysinit', 'basic', 'network-online', 'remote-fs', 'printer', 'getty'].flatMap((t) => [[`wants-${t}`, missing], [`runtime-${t}`, missing]]));
    expect(passes(evaluate(c, { ...base, ...none, cgroup: '9\t/usr/sbin/apache2\t/usr/sbin/apache2 -k start\n' }))).toBe(true);
    const noExec = check({ kind: 'service', name: 'odd' });
    expect(() => evaluate(noExec, { ...base, file2: '[Unit]\n', ...none, cgroup: missing })).toThrow(/program of odd.service is unknown/);
  });

  test('service: an instance of a template unit is looked for in the template\'s slice and file', () => {
    const c = check({ kind: 'service', name: 'openvpn-server@siege' });
    const plan = checkKind('service').plan(c, context);
    expect(plan.probe?.cgroup).toEqual({ verb: 'cgroup', args: ['system.slice/system-openvpn\\x2dserver.slice/openvpn-server@siege.service'] });
    expect(plan.probe?.file6).toEqual({ verb: 'read', args: ['/lib/systemd/system/openvpn-server@.service', 65536] });
    const files = Object.fromEntries([0, 1, 2, 3, 4, 5, 7].map((i) => [`file${i}`, missing]));
    const none = Object.fromEntries(['multi-user', 'graphical', 'default', 'sockets', 'timers', 'sysinit', 'basic', 'network-online', 'remote-fs', 'printer', 'getty'].flatMap((t) => [[`wants-${t}`, missing], [`runtime-${t}`, missing]]));
    const r = evaluate(c, { ...files, file6: '[Service]\nExecStart=/usr/sbin/openvpn --config %i.conf\n', masked: missing, ...none, cgroup: '88\t/usr/sbin/openvpn\t/usr/sbin/openvpn --config siege.conf\n' });
    expect(passes(r)).toBe(true);
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
    expect(passes(evaluate(check({ kind: 'port', port: 631 }), { v4, v6 }))).toBe(true);
    expect(passes(evaluate(check({ kind: 'port', port: 80 }), { v4, v6: missing }))).toBe(false);
    expect(passes(evaluate(check({ kind: 'port', port: 631, address: { not: '127.0.0.1' } }), { v4, v6 }))).toBe(false);
  });

  test('package: installed version from the dpkg database; a cut database is an error', () => {
    const status = 'Package: cups\nStatus: install ok installed\nVersion: 2.4.2-3\n\nPackage: cups-daemon\nStatus: install ok installed\nVersion: 2.4.2-3\n';
    expect(passes(evaluate(check({ kind: 'package', name: 'cups-daemon', version: { matches: '^2\\.4' } }), { status }))).toBe(true);
    const removed = 'Package: cups-daemon\nStatus: deinstall ok config-files\nVersion: 2.4.2-3\n';
    expect(passes(evaluate(check({ kind: 'package', name: 'cups-daemon' }), { status: removed }))).toBe(false);
    // apt-mark hold on a package that is not installed: held, still absent.
    const heldAbsent = 'Package: p7zip-full\nStatus: hold ok not-installed\nArchitecture: amd64\n';
    expect(passes(evaluate(check({ kind: 'package', name: 'p7zip-full' }), { status: heldAbsent }))).toBe(false);
    const heldInstalled = 'Package: p7zip-full\nStatus: hold ok installed\nVersion: 16.02\n';
    expect(passes(evaluate(check({ kind: 'package', name: 'p7zip-full' }), { status: heldInstalled }))).toBe(true);
    expect(() => evaluate(check({ kind: 'package', name: 'cups' }), { status: ['part', status] })).toThrow(/larger than the grader reads/);
  });

  test('user: groups, shell and lock state; the date is the grader\'s', () => {
    const shadow = 'root:*:1::::::\nalice:!$y$hash:19000:0:99999:7::0:\n';
    const r = evaluate(check({ kind: 'user', name: 'alice', groups: { contains: 'compta' }, shell: '/bin/bash', locked: false }), { passwd, shadow, group });
    expect(r.assertions.map((a) => [a.name, a.pass])).toEqual([['exists', true], ['shell', true], ['groups', true], ['locked', false]]);
    expect(lockReason('alice:$y$hash:19000:0:99999:7::1:', Date.UTC(2026, 0, 1))).toMatch(/expired on 1970-01-02/);
    expect(lockReason('alice:$y$hash:19000:0:99999:7:::', Date.UTC(2026, 0, 1))).toBeUndefined();
  });

  test('user: the login observation decides the login assertion', () => {
    const c = check({ kind: 'user', name: 'alice', login: { password: 'pw' } });
    const facts = { passwd, shadow: 'alice:$y$h:1::::::\n', group };
    expect(passes(evaluate(c, facts, { ok: true, detail: 'alice logged in' }))).toBe(true);
    expect(passes(evaluate(c, facts, { ok: false, detail: 'refused' }))).toBe(false);
  });

  test('user: a directory account is known by its login, and no local account may stand in for it', () => {
    const c = check({ kind: 'user', name: 'jdupont', directory: true, login: { password: 'pw' } });
    const facts = { passwd, shadow: 'alice:$y$h:1::::::\n', group };
    const ok = evaluate(c, facts, { ok: true, detail: 'jdupont logged in' });
    expect(ok.assertions.map((a) => [a.name, a.pass])).toEqual([['local account', true], ['login works', true]]);
    expect(passes(evaluate(c, facts, { ok: false, detail: 'refused' }))).toBe(false);
    const impostor = evaluate(c, { ...facts, passwd: `${passwd}jdupont:x:1002:1002::/home/jdupont:/bin/bash\n` }, { ok: true, detail: 'jdupont logged in' });
    expect(impostor.assertions[0]).toMatchObject({ pass: false, gate: true, actual: 'a local account jdupont (uid 1002) in /etc/passwd' });
    const kind = checkKind('user');
    expect(kind.validate(check({ kind: 'user', name: 'jdupont', directory: true }))).toEqual(['a directory account is checked by its `login`']);
    expect(kind.validate(check({ kind: 'user', name: 'jdupont', directory: true, login: { password: 'pw' }, shell: '/bin/bash', exists: false }))).toEqual([
      '`shell`: read from the local account files, not for a directory account',
      '`exists: false` is for local accounts',
    ]);
  });

  test('group: members include users whose primary group it is', () => {
    const facts = { group: 'compta:x:1002:bob\n', passwd: 'carol:x:1003:1002::/home/carol:/bin/sh\n' };
    expect(passes(evaluate(check({ kind: 'group', name: 'compta', members: { equals: ['bob', 'carol'] } }), facts))).toBe(true);
  });

  test('process: by executable, not by a name any process can take', () => {
    const procs = '1\t0\t0\tsystemd\t/usr/lib/systemd/systemd\t/init.scope\t/sbin/init\n42\t1\t33\tnginx\t/usr/sbin/nginx\t/system.slice/nginx.service\tnginx: worker process\n77\t1\t0\tcupsd\t/usr/bin/sleep\t/\tcupsd -l\n';
    expect(passes(evaluate(check({ kind: 'process', name: 'nginx', user: { contains: 'www-data' } }), { procs, passwd }))).toBe(true);
    // A sleep renamed cupsd (comm and argv) is not cupsd.
    expect(passes(evaluate(check({ kind: 'process', name: 'cupsd', running: false }), { procs, passwd }))).toBe(true);
    expect(passes(evaluate(check({ kind: 'process', executable: '/usr/sbin/nginx' }), { procs, passwd }))).toBe(true);
    expect(passes(evaluate(check({ kind: 'process', command: { matches: 'worker' }, count: 1 }), { procs, passwd }))).toBe(true);
  });

  test('dns: answers from the probe; no server answering is a fail with the reason', () => {
    const c = check({ kind: 'dns', name: 'intranet.lan', addresses: { contains: '10.0.0.5' } });
    expect(passes(evaluate(c, { dns: 'server=10.0.0.5\nrcode=NOERROR\nanswer=A 10.0.0.5\n' }))).toBe(true);
    const silent = evaluate(c, { dns: ['neg', 'server=10.0.0.254\nreason=no answer within 2000 ms\n'] });
    expect(passes(silent)).toBe(false);
    expect(silent.assertions[0]?.actual).toMatch(/no answer within 2000 ms/);
    expect(evaluate(c, { dns: 'server=10.0.0.5\nrcode=NXDOMAIN\n' }).assertions[0]?.actual).toBe('NXDOMAIN');
  });

  test('dns: SRV answers read "priority weight port target"', () => {
    const c = check({ kind: 'dns', type: 'SRV', name: '_ldap._tcp.entreprise.lan', addresses: { matches: ' 389 dc01\\.entreprise\\.lan$' } });
    expect(passes(evaluate(c, { dns: 'server=10.0.0.5\nrcode=NOERROR\nanswer=SRV 0 100 389 dc01.entreprise.lan\n' }))).toBe(true);
    expect(passes(evaluate(c, { dns: 'server=10.0.0.5\nrcode=NOERROR\nanswer=SRV 0 100 389 old-dc.entreprise.lan\n' }))).toBe(false);
    expect(evaluate(c, { dns: 'server=10.0.0.5\nrcode=NOERROR\nanswer=A 10.0.0.5\n' }).assertions[0]?.actual).toBe('no SRV record');
  });

  test('dns: a PTR check may name the IPv4 address, asked by its in-addr.arpa name', () => {
    const c = check({ kind: 'dns', type: 'PTR', name: '10.231.4.30', addresses: { contains: 'intranet.agence.lan' } });
    expect(checkKind('dns').plan(c, context).probe?.dns).toEqual({ verb: 'dns', args: ['PTR', '30.4.231.10.in-addr.arpa', 5000] });
    const r = evaluate(c, { dns: 'server=10.231.4.2\nrcode=NOERROR\nanswer=PTR intranet.agence.lan\n' });
    expect(passes(r)).toBe(true);
    expect(r.evidence).toBe('30.4.231.10.in-addr.arpa PTR via 10.231.4.2: intranet.agence.lan');
    // Other types, and a PTR already spelled out, are asked as written.
    expect(checkKind('dns').plan(check({ kind: 'dns', name: '10.231.4.30' }), context).probe?.dns?.args[1]).toBe('10.231.4.30');
    expect(checkKind('dns').plan(check({ kind: 'dns', type: 'PTR', name: '30.4.231.10.in-addr.arpa' }), context).probe?.dns?.args[1]).toBe('30.4.231.10.in-addr.arpa');
  });

  test('http: status and body from the raw response; a refused connection fails with the reason', () => {
    const response = 'HTTP/1.1 200 OK\r\nContent-Type: text/html\r\n\r\n<h1>Intranet</h1>';
    expect(passes(evaluate(check({ kind: 'http', url: 'http://x/', body: { contains: 'Intranet' } }), { http: response }))).toBe(true);
    const down = evaluate(check({ kind: 'http', url: 'http://x/' }), { http: ['neg', 'reason=Connection refused\n'] });
    expect(down.assertions[0]?.actual).toBe('no response (Connection refused)');
  });

  test('reachable: a flow asserted blocked passes when it is, and the result says from where it was tried', () => {
    const blocked = check({ kind: 'reachable', to: 'srv', port: 22, reachable: false });
    const refused = evaluate(blocked, { reach: ['neg', 'reason=Connection refused\n'] });
    expect(passes(refused)).toBe(true);
    expect(refused.assertions[0]?.expected).toBe('not reachable');
    expect(refused.assertions[0]?.actual).toBe('from pc, srv (10.0.0.1):22: Connection refused');
    expect(refused.evidence).toBe('tried from pc (10.0.0.1) to srv (10.0.0.1):22: not reached (Connection refused)');
    const open = evaluate(blocked, { reach: 'ms=3\n' });
    expect(passes(open)).toBe(false);
    expect(open.assertions[0]?.actual).toBe('from pc, reached srv (10.0.0.1):22');
    const ping = evaluate(check({ kind: 'reachable', from: 'ws', to: '192.168.10.254', ping: true }), { reach: ['neg', 'reason=no reply within 2000 ms\n'] });
    expect(passes(ping)).toBe(false);
    expect(ping.evidence).toBe('tried from ws to 192.168.10.254 (ping): not reached (no reply within 2000 ms)');
  });

  test('mount: usage, fstab persistence, options', () => {
    const mounts = 'tmpfs /var/log/appli tmpfs rw,nosuid,nodev,size=65536k 0 0\n/dev/vdb1 /data ext4 rw,relatime 0 0\n';
    const df = 'bsize=1024\nblocks=65536\nbfree=4096\nbavail=4096\nfiles=1\nffree=1\n';
    const full = evaluate(check({ kind: 'mount', path: '/var/log/appli', usedPercent: { lt: 50 } }), { mounts, df });
    expect(passes(full)).toBe(false);
    expect(full.evidence).toContain('94% used');
    const fstab = '# static\nUUID=1234 /data ext4 defaults 0 2\n';
    expect(passes(evaluate(check({ kind: 'mount', path: '/data', fstype: 'ext4', persistent: true, options: { contains: 'rw' } }), { mounts, fstab }))).toBe(true);
  });

  test('command: exit code defaults to 0; stdout is compared without the trailing newline', () => {
    const c = check({ kind: 'command', run: 'hostname', stdout: 'pc-compta' });
    const ran = (exit: number, stdout: string) => `exit=${exit}\nsignal=0\ntimed_out=0\nstdout=${Buffer.byteLength(stdout)}\nstderr=0\n\n${stdout}`;
    expect(passes(evaluate(c, { run: ran(0, 'pc-compta\n') }))).toBe(true);
    expect(passes(evaluate(c, { run: ran(1, 'pc-compta\n') }))).toBe(false);
    expect(() => evaluate(c, { run: 'exit=0\nstdout=5\nstderr=0\n\nabc' })).toThrow(/malformed/);
    expect(() => evaluate(c, { run: 'exit=0\nsignal=9\ntimed_out=1\nstdout=0\nstderr=0\n\n' })).toThrow(/timed out/);
  });

  test('command: a stream cut at the 64 KiB the probe keeps is no verdict where a matcher looks at it; the exit code alone still is', () => {
    const ran = (stdout: string, stderr = '') => `exit=0\nsignal=0\ntimed_out=0\nstdout=${Buffer.byteLength(stdout)}\nstderr=${Buffer.byteLength(stderr)}\n\n${stdout}${stderr}`;
    const flood = 'y\n'.repeat(32768);
    expect(() => evaluate(check({ kind: 'command', run: 'cat /etc/motd', stdout: { not: { contains: 'secret' } } }), { run: ran(flood) })).toThrow(/more than the 64 KiB of stdout/);
    expect(() => evaluate(check({ kind: 'command', run: 'cat /etc/motd', stderr: '' }), { run: ran('', flood) })).toThrow(/more than the 64 KiB of stderr/);
    expect(passes(evaluate(check({ kind: 'command', run: 'cat /etc/motd' }), { run: ran(flood) }))).toBe(true);
    expect(passes(evaluate(check({ kind: 'command', run: 'cat /etc/motd', stderr: '' }), { run: ran(flood) }))).toBe(true);
  });

  test('command: a script of several lines travels as one line and runs the same', () => {
    const script = "echo \"a b\"\nprintf '%s\\n' 'it''s' \\\\ 100%\nexit 3";
    const line = oneLine(script);
    expect(line).not.toMatch(/[\n\t]/);
    const run = (s: string) => {
      try {
        return { out: execFileSync('/bin/sh', ['-c', s]).toString(), code: 0 };
      } catch (err) {
        const e = err as { stdout: Buffer; status: number };
        return { out: e.stdout.toString(), code: e.status };
      }
    };
    expect(run(line)).toEqual(run(script));
  });

  test('sysctl reads /proc/sys', () => {
    expect(passes(evaluate(check({ kind: 'sysctl', key: 'net.ipv4.ip_forward', value: 1 }), { value: '1\n' }))).toBe(true);
  });
});
