import { describe, expect, test } from '@jest/globals';
import { InputError } from '../../../src/util/errors.js';
import { commandKind } from '../../../src/checks/kinds/command.js';
import { powershellCommand } from '../../../src/remote/powershell.js';
import { parseScenario } from '../../../src/scenario/index.js';
import { scenarioProblems } from '../../fakes/scenario-problems.js';

const scenario = (machines: string, rest = '') => `
apiVersion: examlab/v1
id: vm
title: VM
ccp: CCP2
competencies: [{ id: C, title: c }]
duration: 10m
instructions: { fr: Rien. }
machines:
${machines}
${rest}
`;

const problems = (text: string) => scenarioProblems(text, 'vm.yaml');

describe('virtual machines in the scenario format', () => {
  test('a VM takes a boot mode, extra disks and reboot steps', () => {
    const s = parseScenario(
      scenario(
        `  - { name: pc, provider: libvirt, image: debian-vm, boot: disk, disks: [{ size: 1G }], resources: { disk: 4G } }`,
        `faults:\n  - { machine: pc, reboot: true, timeout: 4m }\nchecks:\n  - { id: up, title: t, machine: pc, kind: file, path: /etc/hostname }`,
      ),
      'vm.yaml',
    );
    expect(s.machines[0]).toMatchObject({ boot: 'disk', disks: [{ size: 1024 ** 3 }], shell: 'sh', resources: { disk: 4 * 1024 ** 3 } });
    expect(s.faults[0]).toMatchObject({ reboot: true, timeout: 240_000 });
  });

  test('containers have no boot mode, disks, reboot steps or Windows shell, each said where it is', () => {
    const found = problems(
      scenario(
        `  - { name: box, image: base, boot: disk, disks: [{ size: 1G }], shell: powershell }`,
        `setup:\n  - { machine: box, reboot: true }\nchecks:\n  - { id: up, title: t, machine: box, kind: file, path: /etc/hostname }`,
      ),
    );
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^vm\.yaml:\d+:\d+ machines\[0\]\.boot: only virtual machines/),
        expect.stringMatching(/^vm\.yaml:\d+:\d+ machines\[0\]\.disks: only virtual machines/),
        expect.stringMatching(/^vm\.yaml:\d+:\d+ machines\[0\]\.shell: only virtual machines/),
        expect.stringMatching(/^vm\.yaml:\d+:\d+ setup\[0\]\.reboot: only virtual machines .* box is a container/),
      ]),
    );
  });

  test('a Windows guest: command checks default to PowerShell; toolbox kinds, logins and Linux-only step options are refused', () => {
    const windows = `  - { name: win, provider: libvirt, image: debian-vm, boot: disk, shell: powershell }`;
    const s = parseScenario(scenario(windows, `checks:\n  - { id: svc, title: t, machine: win, kind: command, run: "(Get-Service sshd).Status", stdout: Running }`), 'vm.yaml');
    expect(s.checks[0]?.shell).toBe('powershell');
    const plan = commandKind.plan(s.checks[0] as never, {} as never);
    expect(plan).toEqual({ machine: 'win', powershell: '(Get-Service sshd).Status' });

    const found = problems(
      scenario(
        `${windows.replace(' }', ', login: { user: eleve } }')}\n  - { name: lin, provider: libvirt, image: debian-vm }`,
        `setup:\n  - { machine: win, file: 'C:/x.txt', content: x, mode: "0644" }\nchecks:\n  - { id: f, title: t, machine: win, kind: file, path: /etc/hostname }\n  - { id: p, title: t, machine: lin, kind: command, run: hostname, shell: powershell }`,
      ),
    );
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/machines\[0\]\.login: candidate accounts are made with Linux tools/),
        expect.stringMatching(/setup\[0\]\.mode: not supported on a Windows guest/),
        expect.stringMatching(/checks\[0\]\.kind: on a Windows guest .* only command checks run/),
        expect.stringMatching(/checks\[1\]\.shell: lin is not a Windows guest/),
      ]),
    );
  });

  test('an image runs only on its own provider', () => {
    const text = scenario(`  - { name: pc, image: debian-vm }\n  - { name: box, provider: libvirt, image: base }`, `checks:\n  - { id: up, title: t, machine: pc, kind: file, path: /etc/hostname }`);
    const found = (() => {
      try {
        parseScenario(text, 'vm.yaml', { imageProviders: { 'debian-vm': 'libvirt', base: 'docker' } });
        return [];
      } catch (err) {
        return (err as InputError).details.map((d) => `${d.where}: ${d.message}`);
      }
    })();
    expect(found).toEqual([
      expect.stringMatching(/machines\[0\]\.image: image "debian-vm" runs on libvirt \(a VM image\): add provider: libvirt$/),
      expect.stringMatching(/machines\[1\]\.image: image "base" runs on docker \(a container image\), not on libvirt$/),
    ]);
  });

  test('a blank VM boots from the network: no image, a blank disk of a given size, and its MAC addresses as lab facts', () => {
    const s = parseScenario(
      scenario(
        `  - { name: srv, image: server }\n  - { name: pc, provider: libvirt, boot: network, resources: { disk: 3G } }`,
        `setup:\n  - { machine: srv, run: "echo {{ machines.pc.mac }} {{ machines.pc.lan.mac }}" }\nsolution:\n  - { machine: pc, run: "true" }\nchecks:\n  - { id: up, title: t, machine: pc, kind: file, path: /etc/hostname }`,
      ),
      'vm.yaml',
    );
    expect(s.machines[1]).toMatchObject({ boot: 'network', resources: { disk: 3 * 1024 ** 3 } });
    expect(s.machines[1]?.image).toBeUndefined();
  });

  test('a blank VM has no image, needs its disk size, gets no examlab account and runs no step before it is deployed', () => {
    const found = problems(
      scenario(
        `  - { name: pc, provider: libvirt, boot: network, image: debian-vm, login: { user: eleve } }\n  - { name: box, image: base, networks: [{ network: lan }] }\n  - { name: nothing, provider: libvirt }`,
        `setup:\n  - { machine: pc, run: "true" }\nfaults:\n  - { machine: pc, run: "true" }\nchecks:\n  - { id: up, title: t, machine: pc, kind: file, path: /etc/hostname }\n  - { id: mac, title: "{{ machines.box.mac }}", machine: box, kind: file, path: /etc/hostname }`,
      ),
    );
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/machines\[0\]\.image: a machine that boots from the network starts blank/),
        expect.stringMatching(/machines\[0\]\.resources\.disk: required with boot: network/),
        expect.stringMatching(/machines\[0\]\.login: examlab makes candidate accounts on machines it builds/),
        expect.stringMatching(/machines\[2\]\.image: required/),
        expect.stringMatching(/setup\[0\]\.machine: pc boots from the network: it is blank until deployed, so only a solution can run steps on it/),
        expect.stringMatching(/faults\[0\]\.machine: pc boots from the network/),
        // A container's MAC address is its engine's: not a lab fact.
        expect.stringMatching(/unknown variable "machines\.box\.mac"/),
      ]),
    );
  });

  test('PowerShell scripts travel as -EncodedCommand (UTF-16LE, base64), so no quoting applies', () => {
    const script = `Write-Output 'l''été'; exit 3`;
    const command = powershellCommand(script);
    expect(command).toMatch(/^powershell -NoProfile -NonInteractive -ExecutionPolicy Bypass -EncodedCommand [A-Za-z0-9+/=]+$/);
    expect(Buffer.from(command.split(' ').at(-1) as string, 'base64').toString('utf16le')).toBe(script);
  });
});
