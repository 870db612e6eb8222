import { z } from 'zod';
import { absolutePath } from '../fields.js';
import { defineKind, ProbeError, type Assertion, type Observation } from '../check-kind.js';
import { assertFlag, assertMatch, fileText, obs, parsePlain, textOf } from '../assertions.js';
import { matcherSchema } from '../matchers.js';

interface MountEntry {
  source: string;
  target: string;
  fstype: string;
  options: string[];
}

/** /proc/mounts and /etc/fstab escape spaces and friends as octal (\040). */
function unescape(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(parseInt(oct, 8)));
}

export function parseMountTable(text: string): MountEntry[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'))
    .map((line) => line.split(/\s+/))
    .filter((f) => f.length >= 4)
    .map((f) => ({ source: unescape(f[0] as string), target: unescape(f[1] as string), fstype: f[2] as string, options: (f[3] as string).split(',') }));
}

export const mountKind = defineKind(
  'mount',
  {
    path: absolutePath(),
    mounted: z.boolean().default(true),
    fstype: matcherSchema.optional(),
    source: matcherSchema.optional().describe('Device or source, e.g. /dev/vdb1 or { matches: "UUID=" } for fstab'),
    options: matcherSchema.optional().describe('Mount options, e.g. { contains: rw }'),
    usedPercent: matcherSchema.optional().describe('Used space of the filesystem holding path, in percent'),
    persistent: z.boolean().optional().describe('An /etc/fstab entry mounts it at boot'),
  },
  {
    plan(check) {
      const probe: Record<string, Observation> = { mounts: obs('read', '/proc/self/mounts', 1 << 20) };
      if (check.usedPercent !== undefined) probe.df = obs('statfs', check.path);
      if (check.persistent !== undefined) probe.fstab = obs('read', '/etc/fstab', 1 << 20);
      return { machine: check.machine, probe };
    },
    evaluate(check, facts) {
      const mount = parseMountTable(textOf(facts, 'mounts', 'read /proc/self/mounts')).filter((m) => m.target === check.path).at(-1);
      const evidence: string[] = [mount ? `${mount.source} on ${mount.target} type ${mount.fstype} (${mount.options.join(',')})` : `nothing mounted on ${check.path}`];
      const assertions: Assertion[] = [{ ...assertFlag('mounted', check.mounted, mount !== undefined, mount ? `mounted from ${mount.source}` : 'not mounted'), gate: check.mounted }];
      if (mount && check.mounted) {
        if (check.fstype !== undefined) assertions.push(assertMatch('fstype', check.fstype, mount.fstype));
        if (check.source !== undefined) assertions.push(assertMatch('source', check.source, mount.source));
        if (check.options !== undefined) assertions.push(assertMatch('options', check.options, mount.options));
      }
      if (check.usedPercent !== undefined) {
        const fs = parsePlain(textOf(facts, 'df', `read the usage of ${check.path}`));
        const [blocks, free, available] = ['blocks', 'bfree', 'bavail'].map((k) => Number(fs.get(k)));
        if (!blocks || free === undefined || available === undefined || Number.isNaN(free + available)) throw new ProbeError(`cannot read the usage of ${check.path}`);
        // As df computes it: used / (used + available to users), rounded up.
        const used = Math.ceil(((blocks - free) * 100) / (blocks - free + available));
        evidence.push(`${check.path}: ${used}% used`);
        assertions.push(assertMatch('used %', check.usedPercent, Number(used)));
      }
      if (check.persistent !== undefined) {
        const entry = parseMountTable(fileText(facts, 'fstab', '/etc/fstab') ?? '').find((m) => m.target === check.path);
        evidence.push(entry ? `fstab: ${entry.source} ${entry.target} ${entry.fstype} ${entry.options.join(',')}` : `no fstab entry for ${check.path}`);
        assertions.push(assertFlag('in fstab', check.persistent, entry !== undefined));
      }
      return { assertions, evidence: evidence.join('\n') };
    },
  },
);
