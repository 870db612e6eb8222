import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@jest/globals';
import { createTestApp, inlineScenario, scenarioHead } from '../integration/helpers.js';
import { PACKAGE_ROOT } from '../../src/daemon/config.js';

const run = promisify(execFile);

/**
 * Grading speed, side by side in one run: examlab's grade of 20 checks on one
 * machine against python3-testinfra (paramiko backend) running the same 20
 * checks on the same container. Also the time to provision and tear down a
 * one-machine lab.
 */
const CHECKS: [string, string][] = [
  ['file', 'kind: file, path: /etc/passwd, owner: root, mode: "0644"'],
  ['file', 'kind: file, path: /etc/hostname, exists: true'],
  ['file', 'kind: file, path: /etc/ssh/sshd_config, content: { contains: Subsystem }'],
  ['file', 'kind: file, path: /tmp, type: directory'],
  ['service', 'kind: service, name: ssh, active: true, enabled: true'],
  ['service', 'kind: service, name: cups, active: true'],
  ['service', 'kind: service, name: systemd-journald, active: true'],
  ['port', 'kind: port, port: 22'],
  ['port', 'kind: port, port: 631'],
  ['package', 'kind: package, name: openssh-server'],
  ['package', 'kind: package, name: cups-daemon'],
  ['package', 'kind: package, name: sudo'],
  ['user', 'kind: user, name: root, shell: /bin/bash'],
  ['user', 'kind: user, name: technicien, groups: { contains: technicien }'],
  ['group', 'kind: group, name: sudo'],
  ['group', 'kind: group, name: adm'],
  ['process', 'kind: process, name: sshd'],
  ['process', 'kind: process, name: systemd-journald'],
  ['command', 'kind: command, run: hostname, stdout: box'],
  ['command', 'kind: command, run: test -d /root'],
];

const SCENARIO = `${scenarioHead('bench')}machines:
  - { name: box, image: workstation, login: { user: technicien } }
checks:
${CHECKS.map(([, c], i) => `  - { id: c${i}, title: t, machine: box, ${c} }`).join('\n')}
`;

const TESTINFRA = `
import sys, time, testinfra
host = testinfra.get_host(f"paramiko://root@{sys.argv[1]}", ssh_identity_file=sys.argv[2])
def checks():
    f = host.file("/etc/passwd"); assert f.user == "root" and f.mode == 0o644
    assert host.file("/etc/hostname").exists
    assert host.file("/etc/ssh/sshd_config").contains("Subsystem")
    assert host.file("/tmp").is_directory
    s = host.service("ssh"); assert s.is_running and s.is_enabled
    assert host.service("cups").is_running
    assert host.service("systemd-journald").is_running
    assert host.socket("tcp://0.0.0.0:22").is_listening
    assert host.socket("tcp://127.0.0.1:631").is_listening
    assert host.package("openssh-server").is_installed
    assert host.package("cups-daemon").is_installed
    assert host.package("sudo").is_installed
    assert host.user("root").shell == "/bin/bash"
    assert "technicien" in host.user("technicien").groups
    assert host.group("sudo").exists
    assert host.group("adm").exists
    assert host.process.filter(comm="sshd")
    assert host.process.filter(comm="systemd-journal")
    assert host.check_output("hostname") == "box"
    assert host.run("test -d /root").rc == 0
runs = []
for i in range(int(sys.argv[3])):
    t = time.perf_counter(); checks(); runs.append(time.perf_counter() - t)
    host = testinfra.get_host(f"paramiko://root@{sys.argv[1]}", ssh_identity_file=sys.argv[2])
print(" ".join(f"{r:.4f}" for r in runs))
`;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

test('grading 20 checks: examlab vs testinfra (paramiko), same container, same run', async () => {
  const app = await createTestApp();
  const rounds = 7;
  try {
    const provisionStart = Date.now();
    const lab = await app.labs.up(inlineScenario(SCENARIO, 'bench'));
    const provisionMs = Date.now() - provisionStart;
    try {
      const record = app.stores.labs.get(lab.id);
      const machine = record.topology?.machines[0] as { address: string };
      const dir = mkdtempSync(join(tmpdir(), 'examlab-bench-'));
      const key = join(dir, 'key');
      writeFileSync(key, record.secrets.graderPrivateKey, { mode: 0o600 });
      const script = join(dir, 'testinfra_bench.py');
      writeFileSync(script, TESTINFRA);

      const examlabMs: number[] = [];
      const testinfraMs: number[] = [];
      // Interleaved rounds, so both tools see the same machine load.
      for (let i = 0; i < rounds; i++) {
        const t = Date.now();
        const graded = await app.labs.grade(lab.id);
        examlabMs.push(Date.now() - t);
        expect(graded.results.filter((r) => r.status !== 'pass').map((r) => `${r.checkId}: ${r.message ?? r.actual}`)).toEqual([]);
        const { stdout } = await run('/usr/bin/python3', [script, machine.address, key, '1']);
        testinfraMs.push(Number(stdout.trim()) * 1000);
      }
      const teardownStart = Date.now();
      await app.labs.destroy(lab.id);
      const teardownMs = Date.now() - teardownStart;

      const figures = {
        checks: CHECKS.length,
        rounds,
        examlabMedianMs: median(examlabMs),
        testinfraMedianMs: Math.round(median(testinfraMs)),
        ratio: Number((median(testinfraMs) / median(examlabMs)).toFixed(2)),
        examlabMs,
        testinfraMs: testinfraMs.map(Math.round),
        provisionOneMachineMs: provisionMs,
        teardownMs,
      };
      mkdirSync(join(PACKAGE_ROOT, 'build/bench'), { recursive: true });
      writeFileSync(join(PACKAGE_ROOT, 'build/bench/grading.json'), `${JSON.stringify(figures, null, 2)}\n`);
      process.stdout.write(`grading bench: ${JSON.stringify(figures)}\n`);
    } finally {
      await app.labs.destroy(lab.id);
    }
  } finally {
    app.cleanup();
  }
}, 600_000);
