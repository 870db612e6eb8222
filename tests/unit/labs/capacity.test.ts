import { CONTAINER_MEMORY, INOTIFY_PER_SYSTEMD_CONTAINER, fitLabs, labNeeds } from '../../../src/labs/capacity.js';
import { parseScenario } from '../../../src/scenario/index.js';

const GIB = 1024 ** 3;
const scenario = parseScenario(
  `apiVersion: examlab/v1
id: room
title: room
ccp: CCP1
competencies: [{ id: C, title: c }]
duration: 10m
instructions: { fr: x }
networks: [{ name: lan }, { name: dmz }]
machines:
  - { name: pc, image: workstation, networks: [{ network: lan }] }
  - { name: srv, image: server, networks: [{ network: lan }, { network: dmz }] }
  - { name: tiny, image: base, networks: [{ network: dmz }], resources: { memory: 32M } }
checks: [{ id: c, title: t, machine: pc, kind: file, path: /etc/hostname }]
`,
  'room.yaml',
);

describe('what a host can hold', () => {
  const needs = labNeeds(scenario, (image) => image !== 'base');

  test('a lab takes what its machines do: systemd containers hold inotify instances; memory is what containers use, never above their limit', () => {
    expect(needs).toMatchObject({ containers: 3, systemdContainers: 2, vms: 0, networks: 2 });
    expect(needs.memoryBytes).toBe(2 * CONTAINER_MEMORY + 32 * 1024 ** 2);
  });

  test('the scarcest resource sets the number, and says so', () => {
    const host = { provider: 'docker', memoryBytes: 24 * GIB, cpus: 2, freeSubnets: 251, diskFreeBytes: 80 * GIB, inotifyInstancesFree: 118 };
    const report = fitLabs(needs, host, 0);
    expect(report.labs).toBe(Math.floor(118 / (2 * INOTIFY_PER_SYSTEMD_CONTAINER)));
    expect(report.limitedBy).toMatch(/^inotify instances: 16 \(2 systemd machines\) a lab, 118 free/);
    expect(fitLabs(needs, { ...host, inotifyInstancesFree: 8180, freeSubnets: 9 }, 0)).toMatchObject({ labs: 4, limitedBy: expect.stringMatching(/^lab networks/) });
  });

  test('labs already on the host count against its memory; a remote engine\'s unknowns are no limit', () => {
    const host = { provider: 'docker', memoryBytes: 2 * GIB + 10 * needs.memoryBytes, cpus: 2 };
    expect(fitLabs(needs, host, 0).labs).toBe(10);
    expect(fitLabs(needs, host, 7).labs).toBe(3);
    expect(fitLabs(needs, host, 12).labs).toBe(0);
    expect(fitLabs(needs, host, 0).lines.filter((l) => l.labs === undefined).map((l) => l.resource)).toEqual(['lab networks', 'inotify instances', 'cpu', 'disk']);
  });
});
