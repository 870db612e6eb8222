import { InputError } from '../../../src/util/errors.js';
import { checkRosterJson, parseRosterCsv } from '../../../src/exams/roster.js';

const problems = (fn: () => unknown): string[] => {
  try {
    fn();
    return [];
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    return err.details.map((d) => `${d.where}: ${d.message}`);
  }
};

describe('rosters', () => {
  test('CSV with a header, optional email, quoted names, blank lines', () => {
    expect(parseRosterCsv('id,name,email\nalice,"Martin, Alice",alice@example.org\n\nbob,Bob,\n')).toEqual([
      { id: 'alice', name: 'Martin, Alice', email: 'alice@example.org' },
      { id: 'bob', name: 'Bob' },
    ]);
  });

  test('spreadsheet exports: BOM, CRLF, semicolons, French headers in any order', () => {
    expect(parseRosterCsv('\uFEFFNom;Identifiant\r\nAlice Martin;alice\r\n')).toEqual([{ id: 'alice', name: 'Alice Martin' }]);
  });

  test('every bad line is reported with its line number', () => {
    expect(problems(() => parseRosterCsv('id,name\nalice,Alice\n-bad,Bad\ncarol,\nALICE,Again\n', 'r.csv'))).toEqual([
      expect.stringMatching(/^r\.csv:3 id: use letters/),
      'r.csv:4 name: required',
      'r.csv:5 id: duplicate candidate id "ALICE" (first at r.csv:2)',
    ]);
  });

  test('headers: missing and unknown columns, no candidates', () => {
    expect(problems(() => parseRosterCsv('name\nAlice\n', 'r.csv'))).toEqual(['r.csv:1: missing column "id"']);
    expect(problems(() => parseRosterCsv('id,name,age\nalice,Alice,20\n', 'r.csv'))).toEqual(['r.csv:1: unknown column "age" (column 3); expected id, name and optionally email']);
    expect(problems(() => parseRosterCsv('id,name\n', 'r.csv'))).toEqual(['r.csv: expected a header row (id,name,email) and one line per candidate']);
    expect(problems(() => parseRosterCsv('id,name\nalice,"Alice\n', 'r.csv'))[0]).toMatch(/^r\.csv: /);
  });

  test('JSON rosters: ids unique regardless of case, at least one candidate', () => {
    expect(problems(() => checkRosterJson([{ id: 'a', name: 'A' }, { id: 'A', name: 'B' }]))).toEqual(['candidates[1] id: duplicate candidate id "A" (first at candidates[0])']);
    expect(problems(() => checkRosterJson([]))).toEqual(['candidates: the roster has no candidates']);
  });
});
