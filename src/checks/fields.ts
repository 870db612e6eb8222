import { z } from 'zod';
import { findPlaceholders } from '../util/template.js';

/** The shape each pattern field wants, by its definition (shared by its `.optional()`, `.describe()` copies). */
const PATTERNS = new WeakMap<object, { re: RegExp; message: string }>();

/**
 * A string field with a required shape that may also hold `{{ placeholders }}`:
 * the shape is checked when the text is literal; a templated value is checked
 * once rendered, for each lab (`renderScenario`: a lab whose values give it
 * another shape is refused, naming the field).
 */
export function pattern(re: RegExp, message: string) {
  const schema = z.string().refine((v) => findPlaceholders(v).length > 0 || re.test(v), { message });
  PATTERNS.set(schema._zod.def, { re, message });
  return schema;
}

/** The shape a field of a check kind wants, if it is a pattern field. */
export function fieldPattern(schema: z.ZodType | undefined): { re: RegExp; message: string } | undefined {
  let def = schema?._zod.def as { innerType?: z.ZodType } | undefined;
  while (def && !PATTERNS.has(def) && def.innerType) def = def.innerType._zod.def as { innerType?: z.ZodType };
  return def ? PATTERNS.get(def) : undefined;
}

export const absolutePath = () => pattern(/^\//, 'must be an absolute path');
