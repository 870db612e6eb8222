/**
 * `{{ name }}` placeholders in text. Names are scenario variables
 * (`{{ user }}`) or facts of the lab (`{{ machines.srv.ip }}`). Rendering is
 * plain substitution: no logic, no escaping.
 */

const PLACEHOLDER = /\{\{\s*([A-Za-z_][A-Za-z0-9_.-]*)\s*\}\}/g;

export interface Placeholder {
  name: string;
  /** Offset of `{{` in the text. */
  index: number;
}

export function findPlaceholders(text: string): Placeholder[] {
  return [...text.matchAll(PLACEHOLDER)].map((m) => ({ name: m[1] as string, index: m.index }));
}

export function renderText(text: string, values: ReadonlyMap<string, string>): string {
  return text.replace(PLACEHOLDER, (whole, name: string) => {
    const value = values.get(name);
    if (value === undefined) throw new Error(`no value for {{ ${name} }}`);
    return value;
  });
}

/** Renders every string inside a JSON-like value. */
export function renderDeep<T>(value: T, values: ReadonlyMap<string, string>): T {
  if (typeof value === 'string') return renderText(value, values) as T;
  if (Array.isArray(value)) return value.map((v) => renderDeep(v, values)) as T;
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderDeep(v, values)])) as T;
  }
  return value;
}
