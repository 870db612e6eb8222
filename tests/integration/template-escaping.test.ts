import { afterAll, beforeAll, describe, expect, test } from '@jest/globals';
import { createTestApp, inlineScenario, rootShell, scenarioHead } from './helpers.js';

/** A roster name written to be run: by every quoting a trainer may put around it. */
const NAME = `Zoé N'Diaye '; touch /tmp/pwned; ' $(touch /tmp/pwned2) \`touch /tmp/pwned3\` "; touch /tmp/pwned4; " .*`;

const scenario = `${scenarioHead('template-escaping')}machines:
  - name: box
    image: systemd
    resources: { memory: 256M, pids: 300 }
setup:
  - machine: box
    run: |
      echo {{ candidate.name }} > /root/name
      echo "{{ candidate.name }}" >> /root/name
      echo '{{ candidate.name }}' >> /root/name
      cat >> /root/name <<EOF
      {{ candidate.name }}
      EOF
checks:
  - id: written
    title: the name, four times
    machine: box
    kind: command
    run: grep -c -x -F -- {{ candidate.name }} /root/name
    stdout: { matches: "^4$" }
  - id: literal
    title: the name matches itself only
    machine: box
    kind: file
    path: /root/name
    content: { matches: "^{{ candidate.name }}$" }
  - id: not-wider
    title: ".* in the name is no wildcard"
    machine: box
    kind: command
    run: echo someone else
    stdout: { not: { matches: "{{ candidate.name }}" } }
`;

describe('template values on the real engine', () => {
  let app: Awaited<ReturnType<typeof createTestApp>>;
  let labId: string;

  beforeAll(async () => {
    app = await createTestApp();
    const lab = app.labs.create(inlineScenario(scenario), { candidateId: 'c1', candidateName: NAME });
    labId = lab.id;
    await app.labs.provision(labId);
  }, 240_000);

  afterAll(async () => {
    if (labId) await app.labs.destroy(labId);
    app?.cleanup();
  }, 120_000);

  test('a run step writes a hostile roster name verbatim, in every quoting, and runs nothing of it', async () => {
    const seen = await rootShell(app, labId, 'box', 'cat /root/name; ls /tmp/pwned* 2>/dev/null; true');
    expect(seen.stdout).toBe(`${NAME}\n`.repeat(4));
  });

  test('command checks and matchers take the name as data', async () => {
    const run = await app.labs.grade(labId);
    expect(run.results.map((r) => [r.checkId, r.status])).toEqual([
      ['written', 'pass'],
      ['literal', 'pass'],
      ['not-wider', 'pass'],
    ]);
  });
});
