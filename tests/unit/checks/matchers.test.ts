import { describe as describeMatcher, match, matcherSchema } from '../../../src/checks/matchers.js';

describe('matchers', () => {
  test.each([
    ['bare scalar means equals', 'active', 'active', true],
    ['bare scalar, different', 'active', 'inactive', false],
    ['numbers compare numerically with strings', 0, '0', true],
    ['equals on a list compares as sets', { equals: ['a', 'b'] }, ['b', 'a'], true],
    ['equals on a list wants the same elements', { equals: ['a'] }, ['a', 'b'], false],
    ['contains on text', { contains: '10.0.0.5' }, 'Address: 10.0.0.5', true],
    ['contains on a list wants an element', { contains: 'compta' }, ['users', 'compta'], true],
    ['contains on a list is not substring', { contains: 'comp' }, ['compta'], false],
    ['contains several', { contains: ['a', 'b'] }, ['a', 'b', 'c'], true],
    ['matches a regex (multiline)', { matches: '^LOG_LEVEL=INFO$' }, 'X=1\nLOG_LEVEL=INFO\n', true],
    ['matches on a list: any element', { matches: '^10\\.' }, ['192.168.1.1', '10.1.1.1'], true],
    ['not', { not: 'root' }, 'alice', true],
    ['not, negative', { not: { contains: 'x' } }, 'xyz', false],
    ['oneOf', { oneOf: ['enabled', 'static'] }, 'static', true],
    ['numeric comparisons', { ge: 1, lt: 50 }, '12', true],
    ['numeric comparison, out of range', { ge: 1, lt: 50 }, 50, false],
    ['numeric comparison on non-numbers fails', { lt: 50 }, 'lots', false],
    ['allOf', { allOf: [{ contains: 'a' }, { contains: 'b' }] }, 'ab', true],
    ['anyOf', { anyOf: ['x', 'y'] }, 'y', true],
    ['undefined actual never matches', { not: { equals: 'x' } }, undefined, true],
    ['undefined actual fails equals', 'x', undefined, false],
  ])('%s', (_name, matcher, actual, expected) => {
    expect(match(matcherSchema.parse(matcher), actual as never).pass).toBe(expected);
  });

  test('descriptions read like the expectation', () => {
    expect(describeMatcher({ ge: 1, lt: 50 })).toBe('>= 1 and < 50');
    expect(describeMatcher({ not: { contains: 'root' } })).toBe('not (contains "root")');
    expect(describeMatcher('active')).toBe('= "active"');
  });

  test('the schema rejects empty objects, unknown operators and bad regexes', () => {
    expect(matcherSchema.safeParse({}).success).toBe(false);
    expect(matcherSchema.safeParse({ similar: 'x' }).success).toBe(false);
    expect(matcherSchema.safeParse({ matches: '(' }).success).toBe(false);
  });
});
