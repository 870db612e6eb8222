/**
 * Small scenarios for the API tests: one container from the base image
 * (ready in seconds), a candidate login, a fault and a check the candidate
 * can fix through the gateway, and a manual criterion.
 */
export const SMALL_SCENARIO = `apiVersion: examlab/v1
id: api-small
title: Fichier d'état
ccp: CCP1
competencies:
  - id: C1
    title: Diagnostiquer
duration: 30m
machines:
  - name: pc
    image: base
    login: { user: technicien }
setup:
  - machine: pc
    run: |
      echo ok > /etc/etat
      echo "{{ candidate.id }}" > /etc/proprietaire
faults:
  - id: etat
    title: État cassé
    machine: pc
    run: echo casse > /etc/etat
instructions:
  fr: Réparez /etc/etat.
checks:
  - id: etat
    title: Le fichier d'état est réparé
    machine: pc
    kind: file
    path: /etc/etat
    content: { matches: "^ok$" }
    points: 2
    competency: C1
  - id: sshd
    title: SSH répond
    machine: pc
    kind: port
    port: 22
    points: 0
    baseline: pass
    hidden: true
    competency: C1
manualCriteria:
  - id: compte-rendu
    title: Le compte rendu donne la cause et la correction
    competency: C1
    levels:
      - { id: absent, title: Absent, points: 0 }
      - { id: complet, title: Complet, points: 1 }
`;

/** The same, made slow on purpose: setup and grading each take seconds, so a kill lands in the middle. */
export const SLOW_SCENARIO = SMALL_SCENARIO.replace('id: api-small', 'id: api-slow')
  .replace('      echo ok > /etc/etat\n', '      sleep 4\n      echo ok > /etc/etat\n')
  .replace(
    '  - id: sshd\n',
    `  - id: lent
    title: Vérification lente
    machine: pc
    kind: command
    run: sleep 5; true
    timeout: 30s
    points: 0
    baseline: any
    competency: C1
  - id: sshd
`,
  );
