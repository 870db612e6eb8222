import { z } from 'zod';
import { absolutePath } from '../fields.js';
import { defineKind, type Assertion, type Observation } from '../check-kind.js';
import { answered, assertFlag, assertMatch, clip, fileText, obs, parsePlain } from '../assertions.js';
import { matcherSchema, type Matcher } from '../matchers.js';
import { ACCOUNT_FILES, accountName } from './accounts.js';

/** How much of a file a content matcher sees. */
const CONTENT_BYTES = 65536;

const FILE_TYPES = ['file', 'directory', 'symlink', 'fifo', 'socket', 'block', 'character'] as const;

/** "644" and "0644" are the same mode; reports always show four digits. */
export function normalizeMode(mode: string): string {
  return /^[0-7]{1,4}$/.test(mode) ? mode.padStart(4, '0') : mode;
}

function normalizeModeMatcher(matcher: Matcher): Matcher {
  if (typeof matcher === 'string') return normalizeMode(matcher);
  if (typeof matcher === 'number') return normalizeMode(String(matcher));
  if (typeof matcher !== 'object') return matcher;
  const out = { ...matcher };
  if (typeof out.equals === 'string') out.equals = normalizeMode(out.equals);
  if (out.oneOf) out.oneOf = out.oneOf.map((m) => (typeof m === 'string' ? normalizeMode(m) : m));
  if (out.not !== undefined) out.not = normalizeModeMatcher(out.not);
  return out;
}

export const fileKind = defineKind(
  'file',
  {
    path: absolutePath(),
    exists: z.boolean().default(true),
    type: z.enum(FILE_TYPES).optional(),
    mode: matcherSchema.optional().describe('Octal permissions, e.g. "0640" or "2770"'),
    owner: matcherSchema.optional(),
    group: matcherSchema.optional(),
    size: matcherSchema.optional().describe('Size in bytes'),
    target: matcherSchema.optional().describe('Target of a symbolic link'),
    content: matcherSchema.optional().describe('Matched against the first 64 KiB'),
  },
  {
    plan(check) {
      const probe: Record<string, Observation> = { stat: obs('lstat', check.path), ...ACCOUNT_FILES };
      if (check.content !== undefined) probe.content = obs('read', check.path, CONTENT_BYTES);
      return { machine: check.machine, probe };
    },
    evaluate(check, facts) {
      const stat = answered(facts, 'stat', `inspect ${check.path}`);
      const exists = stat.status !== 'neg';
      const assertions: Assertion[] = [{ ...assertFlag('exists', check.exists, exists, exists ? `${check.path} exists` : `${check.path} does not exist`), gate: check.exists }];
      if (!exists) return { assertions, evidence: `${check.path}: no such file or directory` };
      const f = parsePlain(stat.data.toString('utf8'));
      const [type = '', mode = '', uid = '', gid = '', size = ''] = ['type', 'mode', 'uid', 'gid', 'size'].map((k) => f.get(k));
      const read = facts.probe?.get('content');
      const content = read && (read.status === 'ok' || read.status === 'part') ? read.data.toString('utf8') : undefined;
      const owner = accountName(fileText(facts, 'passwd', '/etc/passwd'), uid);
      const group = accountName(fileText(facts, 'group', '/etc/group'), gid);
      const evidence = [
        `${check.path}: ${type}, mode ${normalizeMode(mode)}, owner ${owner}:${group}, ${size} bytes`,
        f.has('target') ? `-> ${f.get('target')}` : '',
        content !== undefined ? `content:\n${clip(content, 1000)}` : '',
      ].filter(Boolean).join('\n');
      if (!check.exists) return { assertions, evidence };
      if (check.type !== undefined) assertions.push(assertMatch('type', check.type, type));
      if (check.mode !== undefined) assertions.push(assertMatch('mode', normalizeModeMatcher(check.mode), normalizeMode(mode)));
      if (check.owner !== undefined) assertions.push(assertMatch('owner', check.owner, owner));
      if (check.group !== undefined) assertions.push(assertMatch('group', check.group, group));
      if (check.size !== undefined) assertions.push(assertMatch('size', check.size, Number(size)));
      if (check.target !== undefined) assertions.push(assertMatch('target', check.target, f.get('target')));
      if (check.content !== undefined) {
        const a = assertMatch('content', check.content, content);
        assertions.push({ ...a, actual: content === undefined ? 'content (not a regular file)' : `content of ${content.length} bytes${a.pass ? '' : ' does not match'}` });
      }
      return { assertions, evidence };
    },
  },
);
