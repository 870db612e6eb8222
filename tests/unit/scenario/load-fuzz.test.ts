import fc from 'fast-check';
import { stringify } from 'yaml';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseScenario, type LoadOptions } from '../../../src/scenario/index.js';
import { InputError } from '../../../src/util/errors.js';
import { mutate, nastyValue, type Json, type Mutation } from '../../fakes/json-mutations.js';

/**
 * The loader takes any text a trainer (or a file on disk) gives it: only an
 * InputError may come out, and each of its problems says where it is.
 */
const FILE = 'fuzz.yaml';

function expectOnlyLocatedInputErrors(text: string, options: LoadOptions = {}): void {
  try {
    parseScenario(text, FILE, options);
  } catch (err) {
    if (!(err instanceof InputError)) throw new Error(`not an InputError: ${String((err as Error)?.stack ?? err)}`);
    expect(err.message.startsWith(`${FILE}: `)).toBe(true);
    expect(err.details.length).toBeGreaterThan(0);
    for (const d of err.details) expect(d.where).toMatch(/^fuzz\.yaml:\d+:\d+( |$)/);
  }
}

/** A small valid scenario: the starting point of the mutations. */
const VALID = {
  apiVersion: 'examlab/v1',
  id: 'fuzz',
  title: 'Fuzz',
  ccp: 'CCP1',
  competencies: [{ id: 'C1', title: 'c' }],
  duration: '30m',
  variables: { user: { oneOf: ['alice', 'bob'] }, pin: { random: { length: 6, charset: 'digits' } } },
  machines: [{ name: 'pc', image: 'workstation', login: { user: 'tech' }, tmpfs: [{ path: '/var/log', size: '16M' }] }],
  setup: [{ machine: 'pc', run: 'useradd {{ user }}' }, { machine: 'pc', upload: 'files/motd', to: '/etc/motd' }, { machine: 'pc', file: '/etc/motd', content: 'hi {{ candidate.name }}', mode: '0644' }],
  faults: [{ machine: 'pc', run: 'usermod -L {{ user }}' }],
  faultPools: [{ id: 'p', title: 'p', options: [{ id: 'a', title: 'a', steps: [{ machine: 'pc', run: 'true' }] }, { id: 'b', title: 'b', steps: [{ machine: 'pc', run: 'false' }] }] }],
  instructions: { fr: 'Réparez {{ user }}.' },
  checks: [
    { id: 'unlocked', title: 'u', machine: 'pc', kind: 'user', name: '{{ user }}', locked: false, competency: 'C1' },
    { id: 'motd', title: 'm', machine: 'pc', kind: 'file', path: '/etc/motd', content: { matches: '^hi {{ candidate.name }}$' }, prerequisites: ['unlocked'] },
    { id: 'cmd', title: 'c', machine: 'pc', kind: 'command', run: 'id {{ user }}', exitCode: 0, stdout: { anyOf: [{ contains: 'x' }, { not: { matches: 'y' } }] } },
  ],
  manualCriteria: [{ id: 'r', title: 'r', levels: [{ id: 'l0', title: 'l0', points: 0 }, { id: 'l1', title: 'l1', points: 2 }] }],
};

const mutation = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('replace', 'delete', 'add'),
  key: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('kind', 'run', 'matches', 'path', 'upload', 'machine', 'id', '__proto__', 'constructor', 'toString')),
  value: fc.oneof(fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>, nastyValue, fc.constantFrom<Json>('pc', 'file', 'command', 'user', 'nope', '1G')),
}) as fc.Arbitrary<Mutation>;

/** Pieces of YAML, so the text is often almost a scenario. */
const yamlPiece = fc.constantFrom(
  'apiVersion: examlab/v1\n', 'id: x\n', 'checks:\n', 'machines:\n', '  - ', '- ', ': ', '{', '}', '[', ']', ',', '"', "'", '\\', '&a ', '*a', '<<: *a\n',
  '!!str ', '!!binary ', '!!js/function ', '!custom ', '? ', '|\n', '>-\n', '#', '\n', '  ', '\t', '---\n', '...\n', '%YAML 1.2\n', '%TAG ! tag:x,2000:\n',
  'kind: file', 'path: /etc', 'run: "{{ user }}"', 'name: pc', '{{ candidate.name }}', '~', 'null', '.inf', '0x1F', '2026-01-01', 'x: &a [*a]\n', '\u0000', '\uFEFF', 'é',
);
const yamlish = fc.array(yamlPiece, { maxLength: 40 }).map((parts) => parts.join(''));

describe('the scenario loader under fuzzing', () => {
  // Minimal inputs the fuzzer found, each once a crash (a ReferenceError out of the YAML library).
  test.each([
    ['<<: *a\n', /^fuzz\.yaml:1:5$/, /Unresolved alias/],
    ['a: *b\nc: &b 1\n', /^fuzz\.yaml:1:4$/, /Unresolved alias/],
    [`a: &a [x,x,x,x,x,x,x,x,x,x]\nb: &b [${'*a,'.repeat(10)}]\nc: [${'*b,'.repeat(12)}]\n`, /^fuzz\.yaml:\d+:\d+$/, /alias count/],
  ])('regression: %j is a located InputError', (text, where, message) => {
    expect(() => parseScenario(text, FILE)).toThrow(InputError);
    try {
      parseScenario(text, FILE);
    } catch (err) {
      expect((err as InputError).details).toEqual([{ where: expect.stringMatching(where), message: expect.stringMatching(message) }]);
    }
  });

  test('any text: an InputError naming where, nothing else', () => {
    fc.assert(fc.property(fc.oneof(fc.string({ maxLength: 300 }), fc.string({ unit: 'binary', maxLength: 200 }), yamlish), (text) => expectOnlyLocatedInputErrors(text)), { numRuns: 600 });
  });

  test('scenario-shaped values (mutations of a valid one), as YAML and as JSON', () => {
    const folder = mkdtempSync(join(tmpdir(), 'examlab-fuzz-'));
    mkdirSync(join(folder, 'files'));
    writeFileSync(join(folder, 'files', 'motd'), 'hi\n');
    expect(() => parseScenario(stringify(VALID), FILE, { baseDir: folder })).not.toThrow();
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.boolean(), (mutations, asJson) => {
        const value = mutate(VALID as unknown as Json, mutations);
        // With a folder, uploads are looked up on disk: paths of every sort reach the file system.
        expectOnlyLocatedInputErrors(asJson ? JSON.stringify(value) : stringify(value), { baseDir: folder });
      }),
      { numRuns: 200 },
    );
    rmSync(folder, { recursive: true });
  });

  test('arbitrary JSON documents', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 4 }), (value) => expectOnlyLocatedInputErrors(JSON.stringify(value) ?? 'null')), { numRuns: 300 });
  });
});
