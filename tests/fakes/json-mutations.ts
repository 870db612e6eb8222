import fc from 'fast-check';

/** Mutations of valid JSON documents, for fuzzing: a value replaced, removed, or one added. */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

export interface Mutation {
  at: number;
  op: 'replace' | 'delete' | 'add';
  key: string;
  value: Json;
}

/** Every path to a value inside `value`, itself included. */
export function jsonPaths(value: Json, prefix: (string | number)[] = []): (string | number)[][] {
  const here = [prefix];
  if (Array.isArray(value)) return [...here, ...value.flatMap((v, i) => jsonPaths(v, [...prefix, i]))];
  if (value && typeof value === 'object') return [...here, ...Object.entries(value).flatMap(([k, v]) => jsonPaths(v, [...prefix, k]))];
  return here;
}

/** `base` with each mutation applied at the path it points to (its index modulo the paths there are). */
export function mutate(base: Json, mutations: readonly Mutation[]): Json {
  let root = structuredClone(base);
  for (const m of mutations) {
    const all = jsonPaths(root);
    const path = all[m.at % all.length] as (string | number)[];
    if (!path.length) {
      if (m.op === 'replace') root = m.value;
      continue;
    }
    const parent = path.slice(0, -1).reduce<Json>((node, seg) => (node as Record<string, Json>)[seg as string] as Json, root) as Record<string, Json> | Json[];
    const last = path[path.length - 1] as string | number;
    if (m.op === 'replace') (parent as Record<string, Json>)[last as string] = m.value;
    else if (m.op === 'delete') {
      if (Array.isArray(parent)) parent.splice(last as number, 1);
      else delete parent[last as string];
    } else {
      const target = (parent as Record<string, Json>)[last as string];
      if (Array.isArray(target)) target.push(m.value);
      else if (target && typeof target === 'object') target[m.key] = m.value;
    }
  }
  return root;
}

/** Values that tend to break things: edges of numbers, strings and types. */
export const nastyValue: fc.Arbitrary<Json> = fc.constantFrom<Json>(
  '', ' ', '{{ user }}', '{{ nobody }}', '../../etc/passwd', '/abs', '(', '[', '*', '%00', '\u0000', '\uFEFF', 'x'.repeat(5000),
  -1, 0, 1e308, -1e308, 0.5, Number.MAX_SAFE_INTEGER, true, false, null, [], {}, [null], { '': null },
  '__proto__', 'constructor', 'now', 'manual', '15m', '0s', '-5m', 'P1D', 'Europe/Paris', 'Mars/Olympus', '2030-01-01T00:00:00Z', 'not a date',
);

export const mutation: fc.Arbitrary<Mutation> = fc.record({
  at: fc.nat(),
  op: fc.constantFrom('replace', 'delete', 'add'),
  key: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('__proto__', 'constructor', 'toString', 'kind', 'run', 'id', 'name')),
  value: fc.oneof(fc.jsonValue({ maxDepth: 3 }) as fc.Arbitrary<Json>, nastyValue),
});
