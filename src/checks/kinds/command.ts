import { z } from 'zod';
import { pattern } from '../fields.js';
import { defineKind } from '../check-kind.js';
import { assertMatch, clip, requireFragment } from '../assertions.js';
import { shq } from '../../util/shell.js';
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
      if (check.shell === 'powershell') return { machine: check.machine, fragment: check.run, powershell: true };
      const shell = check.shell === 'bash' ? '/bin/bash' : '/bin/sh';
      const fragment = check.user
        ? `exec $B su -s ${shell} ${shq(check.user)} -c ${shq(check.run)}`
        : `exec ${shell} -c ${shq(check.run)}`;
      return { machine: check.machine, fragment };
    },
    evaluate(check, facts) {
      const out = requireFragment(facts.fragment);
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
