import { findPlaceholders, renderDeep, renderText } from '../../../src/util/template.js';
import { resolveVariables } from '../../../src/scenario/variables.js';

describe('templates', () => {
  const values = new Map([['user', 'alice'], ['machines.srv.ip', '10.231.0.5']]);

  test('finds placeholders with their offsets, spaces optional', () => {
    expect(findPlaceholders('a {{user}} b {{ machines.srv.ip }}')).toEqual([
      { name: 'user', index: 2 },
      { name: 'machines.srv.ip', index: 13 },
    ]);
  });

  test('renders text and nested values', () => {
    expect(renderText('ping {{ machines.srv.ip }} as {{user}}', values)).toBe('ping 10.231.0.5 as alice');
    expect(renderDeep({ a: ['{{ user }}', 3, true], b: { c: 'x{{ user }}' } }, values)).toEqual({ a: ['alice', 3, true], b: { c: 'xalice' } });
  });

  test('an unknown name is an error, never an empty string', () => {
    expect(() => renderText('{{ nobody }}', values)).toThrow(/nobody/);
  });
});

describe('per-candidate variables', () => {
  const variables = {
    user: { oneOf: ['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h'] },
    pin: { random: { length: 12, charset: 'digits' as const, prefix: 'P-' } },
    fixed: { value: 'compta' },
  };

  test('the same seed always gives the same values (reset, regrade)', () => {
    expect(resolveVariables(variables, 'seed-1')).toEqual(resolveVariables(variables, 'seed-1'));
  });

  test('values respect their definition', () => {
    const v = resolveVariables(variables, 'seed-2');
    expect(variables.user.oneOf).toContain(v.get('user'));
    expect(v.get('pin')).toMatch(/^P-\d{12}$/);
    expect(v.get('fixed')).toBe('compta');
  });

  test('different candidates get different answers', () => {
    const pins = new Set(Array.from({ length: 20 }, (_, i) => resolveVariables(variables, `candidate-${i}`).get('pin')));
    const users = new Set(Array.from({ length: 20 }, (_, i) => resolveVariables(variables, `candidate-${i}`).get('user')));
    expect(pins.size).toBe(20);
    expect(users.size).toBeGreaterThan(3);
  });
});
