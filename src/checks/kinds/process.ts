import { z } from 'zod';
import { defineKind, ProbeError, type Assertion } from '../check-kind.js';
import { assertFlag, assertMatch, clip, requireFragment } from '../assertions.js';
import { parsePasswdLine } from './accounts.js';
import { matcherSchema } from '../matchers.js';

interface Process {
  pid: number;
  user: string;
  comm: string;
  cmdline: string;
}

/** Processes as the kernel lists them in /proc, read by the grader's probe. */
export const processKind = defineKind(
  'process',
  {
    name: z.string().min(1).max(15).optional().describe('Exact process name (the kernel keeps 15 characters)'),
    command: matcherSchema.optional().describe('Matcher on the full command line'),
    running: z.boolean().default(true),
    user: matcherSchema.optional().describe('User the matching processes run as'),
    count: matcherSchema.optional().describe('Number of matching processes'),
  },
  {
    validate: (check) => (check.name === undefined && check.command === undefined ? ['give `name` or `command`'] : []),
    plan(check) {
      return { machine: check.machine, fragment: 'emit procs $P procs\nemit passwd $B cat /etc/passwd' };
    },
    evaluate(check, facts) {
      const f = requireFragment(facts.fragment).facts;
      if (!f.has('procs')) throw new ProbeError('cannot list processes');
      const users = new Map(
        (f.get('passwd') ?? '').split('\n').map(parsePasswdLine).filter((u) => u !== undefined).map((u) => [u.uid, u.name] as const),
      );
      const all: Process[] = (f.get('procs') ?? '')
        .split('\n')
        .filter(Boolean)
        .map((line) => {
          const [pid = '0', uid = '-1', comm = '', cmdline = ''] = line.split('\t');
          return { pid: Number(pid), user: users.get(Number(uid)) ?? uid, comm, cmdline };
        });
      const selected = all.filter(
        (p) =>
          (check.name === undefined || p.comm === check.name) &&
          (check.command === undefined || assertMatch('command', check.command, p.cmdline).pass),
      );
      const what = check.name ?? 'matching processes';
      const evidence = selected.length
        ? clip(selected.map((p) => `${p.pid} ${p.user} ${p.cmdline || `[${p.comm}]`}`).join('\n'))
        : `no ${what} among ${all.length} processes`;
      const assertions: Assertion[] = [assertFlag('running', check.running, selected.length > 0, selected.length ? `${selected.length} running` : 'not running')];
      if (check.user !== undefined && selected.length) assertions.push(assertMatch('user', check.user, [...new Set(selected.map((p) => p.user))]));
      if (check.count !== undefined) assertions.push(assertMatch('count', check.count, selected.length));
      return { assertions, evidence };
    },
  },
);
