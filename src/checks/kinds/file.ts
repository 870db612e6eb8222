import { z } from 'zod';
import { absolutePath } from '../fields.js';
import { defineKind, type Assertion } from '../check-kind.js';
import { assertFlag, assertMatch, clip, requireFragment } from '../assertions.js';
import { shq } from '../../util/shell.js';
import { matcherSchema, type Matcher } from '../matchers.js';

const FILE_TYPES = ['file', 'directory', 'symlink', 'fifo', 'socket', 'block', 'character'] as const;
const STAT_TYPES: Record<string, (typeof FILE_TYPES)[number]> = {
  'regular file': 'file',
  'regular empty file': 'file',
  directory: 'directory',
  'symbolic link': 'symlink',
  fifo: 'fifo',
  socket: 'socket',
  'block special file': 'block',
  'character special file': 'character',
};

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
      const p = shq(check.path);
      const lines = [
        `if [ -e ${p} ] || [ -L ${p} ]; then`,
        `  emitv exists 1`,
        `  emit stat $B stat -c '%F|%a|%U|%G|%s' ${p}`,
        `  [ -L ${p} ] && emit target $B readlink ${p}`,
      ];
      if (check.content !== undefined) lines.push(`  [ -f ${p} ] && emit content $B head -c 65536 ${p}`);
      lines.push('else emitv exists 0; fi');
      return { machine: check.machine, fragment: lines.join('\n') };
    },
    evaluate(check, facts) {
      const f = requireFragment(facts.fragment).facts;
      const exists = f.get('exists') === '1';
      const assertions: Assertion[] = [{ ...assertFlag('exists', check.exists, exists, exists ? `${check.path} exists` : `${check.path} does not exist`), gate: check.exists }];
      if (!exists) return { assertions, evidence: `${check.path}: no such file or directory` };
      const [statType = '', mode = '', owner = '', group = '', size = ''] = (f.get('stat') ?? '').trim().split('|');
      const content = f.get('content');
      const evidence = [
        `${check.path}: ${statType}, mode ${normalizeMode(mode)}, owner ${owner}:${group}, ${size} bytes`,
        f.has('target') ? `-> ${f.get('target')?.trim()}` : '',
        content !== undefined ? `content:\n${clip(content, 1000)}` : '',
      ].filter(Boolean).join('\n');
      if (!check.exists) return { assertions, evidence };
      if (check.type !== undefined) assertions.push(assertMatch('type', check.type, STAT_TYPES[statType] ?? statType));
      if (check.mode !== undefined) assertions.push(assertMatch('mode', normalizeModeMatcher(check.mode), normalizeMode(mode)));
      if (check.owner !== undefined) assertions.push(assertMatch('owner', check.owner, owner));
      if (check.group !== undefined) assertions.push(assertMatch('group', check.group, group));
      if (check.size !== undefined) assertions.push(assertMatch('size', check.size, Number(size)));
      if (check.target !== undefined) assertions.push(assertMatch('target', check.target, f.get('target')?.replace(/\n$/, '')));
      if (check.content !== undefined) {
        const a = assertMatch('content', check.content, content);
        assertions.push({ ...a, actual: content === undefined ? 'content (not a regular file)' : `content of ${content.length} bytes${a.pass ? '' : ' does not match'}` });
      }
      return { assertions, evidence };
    },
  },
);
