/**
 * Scenarios written for the fake machines (see FakeMachineAccess): steps
 * set and clear flags, `command` checks read them. Two machines: `pc`, where
 * the candidate logs in and the fault is, and `srv`, whose flag guards
 * against a regression (baseline: pass).
 */
export interface FlagScenarioOptions {
  id?: string;
  /** The fault's script on pc; the default breaks what the `service` check tests. */
  fault?: string;
  /** The image of pc. */
  image?: string;
  /** The provider of srv. */
  srvProvider?: 'docker' | 'libvirt';
  duration?: string;
}

export function flagScenario(options: FlagScenarioOptions = {}): string {
  return `apiVersion: examlab/v1
id: ${options.id ?? 'flags'}
title: Drapeaux
ccp: CCP1
competencies: [{ id: C1, title: Diagnostiquer }]
duration: ${options.duration ?? '30m'}
machines:
  - name: pc
    image: ${options.image ?? 'base'}
    login: { user: technicien }
  - name: srv
    image: ${options.srvProvider === 'libvirt' ? 'vm' : 'base'}
    provider: ${options.srvProvider ?? 'docker'}
setup:
  - machine: pc
    run: flag-on service
  - machine: srv
    run: flag-on sshd
faults:
  - machine: pc
    run: ${options.fault ?? 'flag-off service'}
solution:
  - machine: pc
    run: flag-on service
instructions: { fr: Réparez le service. }
checks:
  - id: service
    title: Le service répond
    machine: pc
    kind: command
    run: flag service
    points: 2
    competency: C1
  - id: sshd
    title: SSH répond toujours
    machine: srv
    kind: command
    run: flag sshd
    points: 1
    baseline: pass
    competency: C1
`;
}

export const DURATION_MS = 30 * 60_000;
