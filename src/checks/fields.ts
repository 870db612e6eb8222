import { z } from 'zod';
import { findPlaceholders } from '../util/template.js';

/**
 * A string field with a required shape that may also hold `{{ placeholders }}`:
 * the shape is checked when the text is literal; a templated value is checked
 * by the grader once rendered (a bad value then fails its check).
 */
export function pattern(re: RegExp, message: string) {
  return z.string().refine((v) => findPlaceholders(v).length > 0 || re.test(v), { message });
}

export const absolutePath = () => pattern(/^\//, 'must be an absolute path');
