import { z } from 'zod';
import { pattern } from '../fields.js';
import { defineKind, type Assertion } from '../check-kind.js';
import { assertFlag, assertMatch, requireFragment } from '../assertions.js';
import { shq } from '../../util/shell.js';
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
      const awk = `BEGIN { RS = ""; FS = "\\n" } { for (i = 1; i <= NF; i++) if ($i == "Package: " p) { print; print "" } }`;
      return { machine: check.machine, fragment: `emit status $B awk -v p=${shq(check.name)} ${shq(awk)} /var/lib/dpkg/status` };
    },
    evaluate(check, facts) {
      const f = requireFragment(facts.fragment).facts;
      const paragraphs = (f.get('status') ?? '').split(/\n\n+/).filter((p) => p.trim());
      const installed = paragraphs.map(parseParagraph).find((p) => /\binstalled$/.test(p.status ?? '') && !/config-files$/.test(p.status ?? ''));
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
