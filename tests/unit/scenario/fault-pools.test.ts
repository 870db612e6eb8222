import { applyDraw, drawFaults, drawOf, drawVariables, everyOption, parseScenario } from '../../../src/scenario/index.js';
import type { LabRecord } from '../../../src/labs/index.js';
import { ExamHarness } from '../../fakes/exam-harness.js';
import { flagScenario } from '../../fakes/flag-scenarios.js';
import { MINIMAL_SCENARIO, scenarioProblems } from '../../fakes/scenario-problems.js';

const minimal = MINIMAL_SCENARIO;

const problems = (text: string) => scenarioProblems(text);

/** Three ways to break DNS, two to break printing. */
const pools = `
faultPools:
  - id: dns
    title: La résolution DNS est cassée
    options:
      - id: resolveur
        title: Le résolveur pointe ailleurs
        steps: [{ machine: pc, run: flag-off dns-resolveur }]
        solution: [{ machine: pc, run: flag-on dns-resolveur }]
      - id: hosts
        title: Une entrée fausse dans /etc/hosts
        steps: [{ machine: pc, run: flag-off dns-hosts }]
      - id: nsswitch
        title: nsswitch ignore le DNS
        steps: [{ machine: pc, run: flag-off dns-nsswitch }]
  - id: impression
    title: L'impression est arrêtée
    options:
      - { id: service, title: Service arrêté, steps: [{ machine: pc, run: flag-off cups }] }
      - { id: file, title: File suspendue, steps: [{ machine: pc, run: flag-off queue }] }
`;

describe('fault pools', () => {
  const scenario = parseScenario(`${minimal}${pools}`, 'sc.yaml');

  test('parse, and default to none', () => {
    expect(parseScenario(minimal, 'sc.yaml').faultPools).toEqual([]);
    expect(scenario.faultPools.map((p) => [p.id, p.options.map((o) => o.id)])).toEqual([
      ['dns', ['resolveur', 'hosts', 'nsswitch']],
      ['impression', ['service', 'file']],
    ]);
    expect(scenario.faultPools[0]?.options[1]?.solution).toEqual([]);
  });

  test('a pool of one option, duplicate ids and unknown machines are located', () => {
    const found = problems(`${minimal}
faultPools:
  - id: dns
    title: A
    options:
      - { id: a, title: A, steps: [{ machine: pc, run: "true" }] }
  - id: dns
    title: B
    options:
      - { id: a, title: A, steps: [{ machine: pc, run: "true" }] }
      - { id: a, title: B, steps: [{ machine: nas, run: "true" }], solution: [{ machine: srv, run: "true" }] }
`);
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/faultPools\[0\]\.options: a pool offers at least two options/),
        expect.stringMatching(/faultPools\[1\]\.id: duplicate fault pool id "dns"/),
        expect.stringMatching(/faultPools\[1\]\.options: option ids must be unique/),
        expect.stringMatching(/faultPools\[1\]\.options\[1\]\.steps\[0\]\.machine: unknown machine "nas"/),
        expect.stringMatching(/faultPools\[1\]\.options\[1\]\.solution\[0\]\.machine: unknown machine "srv"/),
      ]),
    );
  });

  test('by seat, neighbours always differ and every option is drawn as often as the others, give or take one', () => {
    const seats = Array.from({ length: 30 }, (_, seat) => drawFaults(scenario.faultPools, { exam: 'exam-1', seat }));
    for (let i = 1; i < seats.length; i++) {
      expect(seats[i]?.dns).not.toBe(seats[i - 1]?.dns);
      expect(seats[i]?.impression).not.toBe(seats[i - 1]?.impression);
    }
    const counts = (pool: string) => Object.values(seats.reduce<Record<string, number>>((n, d) => ({ ...n, [d[pool] as string]: (n[d[pool] as string] ?? 0) + 1 }), {}));
    expect(counts('dns')).toEqual([10, 10, 10]);
    expect(counts('impression')).toEqual([15, 15]);
    // The same exam always draws the same; the first seat's option depends on the exam.
    expect(drawFaults(scenario.faultPools, { exam: 'exam-1', seat: 4 })).toEqual(seats[4]);
    expect(new Set(Array.from({ length: 40 }, (_, i) => drawFaults(scenario.faultPools, { exam: `exam-${i}`, seat: 0 }).dns))).toEqual(new Set(['resolveur', 'hosts', 'nsswitch']));
  });

  test('by seed: the same seed draws the same options, different seeds use them all', () => {
    expect(drawFaults(scenario.faultPools, { seed: 'abc' })).toEqual(drawFaults(scenario.faultPools, { seed: 'abc' }));
    const drawn = new Set(Array.from({ length: 60 }, (_, i) => drawFaults(scenario.faultPools, { seed: `s${i}` }).dns));
    expect(drawn).toEqual(new Set(['resolveur', 'hosts', 'nsswitch']));
  });

  test('every option of every pool is in one of the fewest draws', () => {
    expect(everyOption(scenario.faultPools)).toEqual([
      { dns: 'resolveur', impression: 'service' },
      { dns: 'hosts', impression: 'file' },
      { dns: 'nsswitch', impression: 'file' },
    ]);
    expect(everyOption([])).toEqual([{}]);
  });

  test('a draw adds its steps after the fixed faults and its repair before the solution', () => {
    const lab = applyDraw(scenario, { dns: 'resolveur', impression: 'file' });
    expect(lab.faultPools).toEqual([]);
    expect(lab.faults.map((s) => s.run ?? s.file)).toEqual(['/etc/motd', 'flag-off dns-resolveur', 'flag-off queue']);
    expect(lab.solution.map((s) => s.run ?? s.file)).toEqual(['flag-on dns-resolveur', '/etc/motd']);
    expect(() => applyDraw(scenario, { dns: 'gone', impression: 'file' })).toThrow(/fault pool "dns": the lab's draw "gone" is not one of its options \(resolveur, hosts, nsswitch\)/);
  });

  test('a draw is kept among the lab variables and read back', () => {
    const draw = { dns: 'hosts', impression: 'service' };
    expect(drawVariables(draw)).toEqual({ 'draw.dns': 'hosts', 'draw.impression': 'service' });
    expect(drawOf({ user: 'alice', ...drawVariables(draw), 'candidate.id': 'c1' })).toEqual(draw);
  });
});

describe('fault pools in an exam', () => {
  let h: ExamHarness;
  beforeEach(() => (h = ExamHarness.create()));
  afterEach(() => h.close());

  /** The flag scenario, its fault replaced by a pool: each option breaks the service and leaves a mark of its own. */
  const pooled = flagScenario().replace(
    /faults:\n {2}- machine: pc\n {4}run: flag-off service\n/,
    `faultPools:
  - id: panne
    title: Le service tombe
    options:
${['a', 'b', 'c'].map((o) => `      - { id: ${o}, title: Panne ${o}, steps: [{ machine: pc, run: "flag-off service\\nflag-on variante-${o}" }], solution: [{ machine: pc, run: flag-off variante-${o} }] }`).join('\n')}
`,
  );

  test('each candidate draws by seat, gets the faults of their draw, and the draw is in their result', async () => {
    const { exam } = await h.runningExam(pooled, ['alice', 'bruno', 'chloe', 'david']);
    const labs = ['alice', 'bruno', 'chloe', 'david'].map((id) => h.labStore.labOf(h.exams.candidate(exam.id, id)) as LabRecord);
    const draws = labs.map((l) => drawOf(l.variables).panne);
    for (let i = 1; i < draws.length; i++) expect(draws[i]).not.toBe(draws[i - 1]);
    for (const [i, lab] of labs.entries()) {
      expect([...(h.docker.machine(lab.id, 'pc')?.flags ?? [])].filter((f) => f.startsWith('variante-'))).toEqual([`variante-${draws[i]}`]);
      expect(h.service.result(exam.id, lab.candidateId as string).faults).toEqual({ panne: draws[i] });
    }
    // The lab's baseline was graded with its own fault: the service check fails.
    expect(h.labStore.runs(labs[0]?.id as string).find((r) => r.purpose === 'baseline')?.results.find((r) => r.checkId === 'service')?.status).toBe('fail');
  });

  test('a reset rebuilds the same draw', async () => {
    const { exam } = await h.runningExam(pooled, ['alice', 'bruno']);
    const before = drawOf((h.labStore.labOf(h.exams.candidate(exam.id, 'bruno')) as LabRecord).variables);
    h.service.reset(exam.id, 'bruno', 'operator');
    await h.settle();
    const lab = h.labStore.labOf(h.exams.candidate(exam.id, 'bruno')) as LabRecord;
    expect(drawOf(lab.variables)).toEqual(before);
    expect([...(h.docker.machine(lab.id, 'pc')?.flags ?? [])]).toContain(`variante-${before.panne}`);
  });
});
