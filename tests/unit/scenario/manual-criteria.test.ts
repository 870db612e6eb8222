import { parseScenario } from '../../../src/scenario/index.js';
import { MINIMAL_SCENARIO, scenarioProblems } from '../../fakes/scenario-problems.js';

const minimal = MINIMAL_SCENARIO;

const problems = (text: string) => scenarioProblems(text);

const criteria = (body: string) => `${minimal}\nmanualCriteria:\n${body}`;

describe('manual criteria in a scenario', () => {
  test('default to none', () => {
    expect(parseScenario(minimal, 'sc.yaml').manualCriteria).toEqual([]);
  });

  test('parse with their rubric', () => {
    const s = parseScenario(
      criteria(`  - id: report
    title: The report states the cause and the fix
    competency: C1
    levels:
      - { id: none, title: Missing, points: 0 }
      - { id: full, title: Complete, points: 3 }
`),
      'sc.yaml',
    );
    expect(s.manualCriteria).toEqual([
      { id: 'report', title: 'The report states the cause and the fix', competency: 'C1', levels: [{ id: 'none', title: 'Missing', points: 0 }, { id: 'full', title: 'Complete', points: 3 }] },
    ]);
  });

  test('unknown competencies, duplicate ids, duplicate levels and one-level rubrics are located', () => {
    const found = problems(
      criteria(`  - id: report
    title: A
    competency: C9
    levels:
      - { id: a, title: A, points: 0 }
      - { id: a, title: B, points: 1 }
  - id: report
    title: B
    levels:
      - { id: only, title: Only, points: 1 }
`),
    );
    expect(found).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/manualCriteria\[0\]\.competency: unknown competency "C9"; declared: C1$/),
        expect.stringMatching(/manualCriteria\[0\]\.levels: level ids must be unique$/),
        expect.stringMatching(/manualCriteria\[1\]\.id: duplicate manual criterion id "report"$/),
        expect.stringMatching(/manualCriteria\[1\]\.levels: .*2/),
      ]),
    );
  });
});
