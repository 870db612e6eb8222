import { z } from 'zod';
import { pattern } from '../fields.js';
import { defineKind, ProbeError, type ProbeFacts } from '../check-kind.js';
import { answered, assertMatch, clip, obs, parsePlain } from '../assertions.js';
import { matcherSchema } from '../matchers.js';

/**
 * Runs a command of the scenario's choosing on the machine, with the machine's
 * own shell: this is the one kind that trusts the machine's tools, because the
 * author asked for them. Prefer the specific kinds where they fit.
 */
export const commandKind = defineKind(
  'command',
  {
    run: z.string().min(1).describe('Command line, run by the machine\'s /bin/sh (or `shell`; a PowerShell script with `shell: powershell`)'),
    user: pattern(/^[a-z_][a-z0-9_.-]*\$?$/i, 'not a valid user name').optional().describe('Run as this user instead of root'),
    shell: z.enum(['sh', 'bash', 'powershell']).optional().describe('Defaults to the machine\'s shell: sh, or powershell on a Windows machine'),
    exitCode: matcherSchema.optional().describe('Defaults to 0'),
    stdout: matcherSchema.optional(),
    stderr: matcherSchema.optional(),
  },
  {
    validate(check) {
      return check.shell === 'powershell' && check.user ? ['`user` is not supported with `shell: powershell`'] : [];
    },
    plan(check) {
      if (check.shell === 'powershell') return { machine: check.machine, powershell: check.run };
      const shell = check.shell === 'bash' ? '/bin/bash' : '/bin/sh';
      const args: (string | number)[] = [check.timeout, shell, oneLine(check.run)];
      if (check.user) args.push(check.user);
      return { machine: check.machine, probe: { run: obs('run', ...args) } };
    },
    evaluate(check, facts) {
      const out: { exitCode: number; stdout: string; stderr: string; cut?: { stdout: boolean; stderr: boolean } } | undefined =
        check.shell === 'powershell' ? facts.script : parseRun(textRecord(facts), check.timeout);
      if (!out) throw new ProbeError('the machine did not run this command');
      // The probe keeps RUN_KEEP bytes of each stream: a matcher could judge differently on the rest, so a cut stream it looks at is no verdict.
      for (const stream of ['stdout', 'stderr'] as const) {
        if (check[stream] !== undefined && out.cut?.[stream]) throw new ProbeError(`the command printed more than the ${RUN_KEEP / 1024} KiB of ${stream} the grader reads: its ${stream} cannot be judged whole`);
      }
      const stdout = out.stdout.replace(/\n+$/, '');
      const stderr = out.stderr.replace(/\n+$/, '');
      const assertions = [assertMatch('exit code', check.exitCode ?? 0, out.exitCode)];
      if (check.stdout !== undefined) assertions.push({ ...assertMatch('stdout', check.stdout, stdout), actual: `stdout ${JSON.stringify(clip(stdout, 500))}` });
      if (check.stderr !== undefined) assertions.push({ ...assertMatch('stderr', check.stderr, stderr), actual: `stderr ${JSON.stringify(clip(stderr, 500))}` });
      const evidence = [`exit ${out.exitCode}`, stdout && `stdout: ${clip(stdout)}`, stderr && `stderr: ${clip(stderr)}`].filter(Boolean).join('\n');
      return { assertions, evidence };
    },
  },
);

/**
 * The probe takes one line per request: a script of several lines is handed
 * to the shell as a printf format it expands itself (printf is a builtin of
 * every POSIX shell), so no tool of the machine is needed to rebuild it.
 */
export function oneLine(script: string): string {
  if (!/[\t\n\r]/.test(script)) return script;
  const format = [...script].map((c) => (c === '\\' || c === '%' || c === "'" || c < ' ' ? `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}` : c)).join('');
  return `eval "$(printf '${format}')"`;
}

/** Bytes of each of stdout and stderr the probe keeps (RUN_KEEP in examlab-probe.c). */
const RUN_KEEP = 65536;

/** The probe's record of a command: exit status, then what it printed. */
function textRecord(facts: ProbeFacts): Buffer {
  const record = answered(facts, 'run', 'run the command');
  if (record.status === 'neg') throw new ProbeError(`cannot run the command: ${record.data.toString('utf8').trim()}`);
  return record.data;
}

/** `exit=..\nsignal=..\ntimed_out=..\nstdout=LEN\nstderr=LEN\n\n` then the bytes of stdout and stderr. */
export function parseRun(data: Buffer, timeoutMs: number): { exitCode: number; stdout: string; stderr: string; cut: { stdout: boolean; stderr: boolean } } {
  const split = data.indexOf('\n\n');
  if (split < 0) throw new ProbeError('the probe\'s answer for this command is malformed');
  const head = parsePlain(data.subarray(0, split).toString('utf8'));
  const outLength = Number(head.get('stdout'));
  const errLength = Number(head.get('stderr'));
  const body = data.subarray(split + 2);
  if (!Number.isInteger(outLength) || !Number.isInteger(errLength) || outLength + errLength !== body.length) throw new ProbeError('the probe\'s answer for this command is malformed');
  if (head.get('timed_out') === '1') throw new ProbeError(`timed out after ${timeoutMs / 1000} s`);
  const signal = Number(head.get('signal') ?? 0);
  return {
    exitCode: signal ? 128 + signal : Number(head.get('exit')),
    stdout: body.subarray(0, outLength).toString('utf8'),
    stderr: body.subarray(outLength).toString('utf8'),
    cut: { stdout: outLength >= RUN_KEEP, stderr: errLength >= RUN_KEEP },
  };
}
