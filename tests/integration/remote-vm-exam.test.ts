import { execFileSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { api, OPERATOR, sshExec, startedExam, startTestDaemon, type TestDaemon } from '../api/helpers.js';
import { startLabHosts, type LabHost, type LabHosts } from '../hosts/lab-hosts.js';

/**
 * An exam through the daemon whose lab mixes a container and a VM, on a lab
 * host that runs both: its Docker engine and its libvirtd reached over SSH,
 * as `daemon.yaml` names them. This machine's engine holds a host too, which
 * the scenario's hostLabels rule out. The lab is placed on the VM host, built
 * there (the VM on that host's lab bridge, beside the container), reached
 * by the candidate through the daemon's gateway, graded, and removed from
 * the host at the end.
 */

const SCENARIO = `apiVersion: examlab/v1
id: remote-vm-exam
title: Poste distant
ccp: CCP2
competencies:
  - id: C1
    title: Diagnostiquer
duration: 30m
hostLabels: { libvirt: true }
machines:
  - name: box
    image: base
  - name: vm
    provider: libvirt
    image: debian-vm
    resources: { memory: 384M }
    login: { user: technicien }
setup:
  - machine: vm
    run: echo ok > /etc/etat
faults:
  - id: etat
    title: État cassé
    machine: vm
    run: echo casse > /etc/etat
instructions:
  fr: Réparez /etc/etat sur le poste.
checks:
  - { id: etat, title: Le fichier d'état est réparé, machine: vm, kind: file, path: /etc/etat, content: { matches: "^ok$" }, points: 2, competency: C1 }
  - { id: voisin, title: Le poste joint le serveur, machine: vm, kind: reachable, to: box, port: 22, points: 1, competency: C1, baseline: pass }
`;

/** Runs a command on the lab host (its container on this machine). */
const onHost = (host: LabHost, ...argv: string[]) => execFileSync('docker', ['exec', host.name, ...argv], { encoding: 'utf8' }).trim();

describe('an exam whose VMs run on a lab host\'s libvirt', () => {
  let hosts: LabHosts;
  let host: LabHost;
  let d: TestDaemon;
  let examId: string;
  let tokens: Record<string, string>;

  beforeAll(async () => {
    hosts = await startLabHosts(1, { name: 'vm-exam', vm: true });
    host = hosts.hosts[0] as LabHost;
    const ssh = { sshKey: host.docker.sshPrivateKeyFile, sshHostKey: host.docker.sshHostKey };
    d = await startTestDaemon({
      hosts: [
        { name: 'here', docker: 'unix:///var/run/docker.sock' },
        { name: 'vmhost', docker: { url: host.docker.ssh, ...ssh }, libvirt: `qemu+ssh://root@${host.ip}/system`, labels: { libvirt: true, kvm: false } },
      ],
    });
    ({ examId, tokens } = await startedExam(d.url, { scenarioYaml: SCENARIO, candidates: [{ id: 'alice', name: 'Alice Martin' }], end: { keepLabs: false } }, 600_000));
  }, 900_000);

  afterAll(async () => {
    await d?.close();
    await hosts?.close();
  }, 300_000);

  test('the lab is on the VM host: its domain runs there, its container is that host\'s, nothing on this machine', async () => {
    const alice = (await api(d.url, OPERATOR).get(`/api/exams/${examId}/candidates/alice`)).body;
    expect(onHost(host, 'virsh', '-c', 'qemu:///system', 'list', '--name')).toContain(alice.lab.id);
    expect(onHost(host, 'docker', 'ps', '--format', '{{.Names}}')).toContain(alice.lab.id);
    expect(execFileSync('virsh', ['-c', 'qemu:///system', 'list', '--all', '--name'], { encoding: 'utf8' })).not.toContain(alice.lab.id);
    expect(execFileSync('docker', ['ps', '-a', '--format', '{{.Names}}'], { encoding: 'utf8' })).not.toContain(alice.lab.id);
  });

  test('the candidate repairs the VM through the daemon\'s gateway, and the grade says so', async () => {
    const sudo = (await api(d.url, tokens.alice).get('/api/me')).body.access.sudoPassword as string;
    const fixed = await sshExec(d.sshPort, 'alice+vm', tokens.alice as string, `hostname && echo '${sudo}' | sudo -S -p '' sh -c 'echo ok > /etc/etat'`, 120_000);
    expect(fixed).toMatchObject({ code: 0 });
    const run = await api(d.url, OPERATOR).post(`/api/exams/${examId}/candidates/alice/grade`);
    expect(run.status).toBe(200);
    const status = Object.fromEntries(run.body.results.map((r: { checkId: string; status: string }) => [r.checkId, r.status]));
    expect(status).toEqual({ etat: 'pass', voisin: 'pass' });
  }, 300_000);

  test('the end grades the lab and removes it from the host', async () => {
    const op = api(d.url, OPERATOR);
    expect((await op.post(`/api/exams/${examId}/end`)).status).toBe(202);
    for (const started = Date.now(); (await op.get(`/api/exams/${examId}`)).body.status !== 'ended'; ) {
      if (Date.now() - started > 300_000) throw new Error('the exam did not end within 5 minutes');
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
    const alice = (await op.get(`/api/exams/${examId}/candidates/alice`)).body;
    expect(alice.runs.find((r: { id: string }) => r.id === alice.finalRunId)).toMatchObject({ purpose: 'final', status: 'done' });
    // A lab whose final grade is complete is removed (keepLabs: false): from the host, domain and container.
    const gone = async () => !onHost(host, 'virsh', '-c', 'qemu:///system', 'list', '--all', '--name').includes(alice.lab.id) && !onHost(host, 'docker', 'ps', '-a', '--format', '{{.Names}}').includes(alice.lab.id);
    for (const started = Date.now(); !(await gone()); ) {
      if (Date.now() - started > 120_000) throw new Error(`lab ${alice.lab.id} was not removed from the lab host within 2 minutes`);
      await new Promise((resolve) => setTimeout(resolve, 1000));
    }
  }, 600_000);
});
