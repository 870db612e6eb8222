import { z } from 'zod';
import { defineKind, type Assertion } from '../check-kind.js';
import { assertFlag, assertMatch, clip, fileText, obs, textOf } from '../assertions.js';
import { ACCOUNT_FILES, accountName } from './accounts.js';
import { executablePaths, parseProcessLines } from './processes.js';
import { match, matcherSchema } from '../matchers.js';

/**
 * Processes as the kernel lists them in /proc, read by the grader's probe.
 * A process is known by the file it executes (/proc/PID/exe), which no
 * process can rename; its command line, which any process can set, is only
 * matched when the scenario asks.
 */
export const processKind = defineKind(
  'process',
  {
    name: z.string().min(1).optional().describe('File name of the executable, e.g. "cupsd"'),
    executable: matcherSchema.optional().describe('Full path of the executable, e.g. "/usr/sbin/cupsd"'),
    command: matcherSchema.optional().describe('Matcher on the full command line'),
    running: z.boolean().default(true),
    user: matcherSchema.optional().describe('User the matching processes run as'),
    count: matcherSchema.optional().describe('Number of matching processes'),
  },
  {
    validate: (check) => (check.name === undefined && check.command === undefined && check.executable === undefined ? ['give `name`, `executable` or `command`'] : []),
    plan(check) {
      return { machine: check.machine, probe: { procs: obs('procs'), passwd: ACCOUNT_FILES.passwd } };
    },
    evaluate(check, facts) {
      const all = parseProcessLines(textOf(facts, 'procs', 'list processes'), ['pid', 'ppid', 'uid', 'comm', 'exe', 'cgroup', 'cmdline']);
      const passwd = fileText(facts, 'passwd', '/etc/passwd');
      const { executable } = check;
      const selected = all.filter((p) => {
        const paths = executablePaths(p.exe);
        return (
          (check.name === undefined || (p.exe !== '' && paths.some((path) => path.split('/').pop() === check.name))) &&
          (executable === undefined || paths.some((path) => match(executable, path).pass)) &&
          (check.command === undefined || assertMatch('command', check.command, p.cmdline).pass)
        );
      });
      const what = check.executable !== undefined ? JSON.stringify(check.executable) : (check.name ?? 'matching processes');
      const userOf = (uid: number) => accountName(passwd, String(uid));
      const evidence = selected.length
        ? clip(selected.map((p) => `${p.pid} ${userOf(p.uid)} ${p.exe} ${p.cmdline || `[${p.comm}]`}`).join('\n'))
        : `no ${what} among ${all.length} processes`;
      const assertions: Assertion[] = [assertFlag('running', check.running, selected.length > 0, selected.length ? `${selected.length} running` : 'not running')];
      if (check.user !== undefined && selected.length) assertions.push(assertMatch('user', check.user, [...new Set(selected.map((p) => userOf(p.uid)))]));
      if (check.count !== undefined) assertions.push(assertMatch('count', check.count, selected.length));
      return { assertions, evidence };
    },
  },
);
