import { z } from 'zod';
import { pattern } from '../fields.js';
import { defineKind, type Assertion } from '../check-kind.js';
import { assertFlag, assertMatch, obs, textOf } from '../assertions.js';
import { matcherSchema } from '../matchers.js';

/** Reads dpkg's own database (/var/lib/dpkg/status), not what dpkg-query prints. */
export const packageKind = defineKind(
  'package',
  {
    name: pattern(/^[a-z0-9][a-z0-9+.-]+$/, 'not a valid Debian package name'),
    installed: z.boolean().default(true),
    version: matcherSchema.optional(),
  },
  {
    plan(check) {
      return { machine: check.machine, probe: { status: obs('read', '/var/lib/dpkg/status', 1 << 20) } };
    },
    evaluate(check, facts) {
      const database = textOf(facts, 'status', 'read /var/lib/dpkg/status');
      const paragraphs = database.split(/\n\n+/).filter((p) => p.split('\n').includes(`Package: ${check.name}`));
      // Status is "<selection> <flag> <state>": the state must be "installed" itself
      // ("hold ok not-installed", a package on hold that is not there, is not).
      const installed = paragraphs.map(parseParagraph).find((p) => (p.status ?? '').split(' ')[2] === 'installed');
      const states = paragraphs.map((p) => parseParagraph(p).status).filter(Boolean);
      const evidence = installed ? `${check.name} ${installed.version} (${installed.status})` : states.length ? `${check.name}: ${states.join(', ')}` : `${check.name}: unknown to dpkg`;
      const assertions: Assertion[] = [assertFlag('installed', check.installed, Boolean(installed), installed ? `installed ${installed.version}` : 'not installed')];
      if (check.version !== undefined && installed) assertions.push(assertMatch('version', check.version, installed.version));
      return { assertions, evidence };
    },
  },
);

function parseParagraph(paragraph: string): { status?: string; version?: string } {
  const get = (field: string) => new RegExp(`^${field}: (.*)$`, 'm').exec(paragraph)?.[1];
  return { status: get('Status'), version: get('Version') };
}
