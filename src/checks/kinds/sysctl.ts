import { pattern } from '../fields.js';
import { defineKind, ProbeError } from '../check-kind.js';
import { assertMatch, fileText, obs } from '../assertions.js';
import { matcherSchema } from '../matchers.js';

/** A kernel parameter, read from /proc/sys (the kernel's answer, not sysctl's). */
export const sysctlKind = defineKind(
  'sysctl',
  {
    key: pattern(/^[a-z0-9_]+([./][a-z0-9_-]+)+$/i, 'not a sysctl key (e.g. net.ipv4.ip_forward)'),
    value: matcherSchema,
  },
  {
    plan(check) {
      return { machine: check.machine, probe: { value: obs('read', `/proc/sys/${check.key.replace(/\./g, '/')}`, 65536) } };
    },
    evaluate(check, facts) {
      const value = fileText(facts, 'value', `/proc/sys/${check.key.replace(/\./g, '/')}`)?.trim().replace(/\s+/g, ' ');
      if (value === undefined || value === '') throw new ProbeError(`cannot read ${check.key}`);
      return { assertions: [assertMatch(check.key, check.value, value)], evidence: `${check.key} = ${value}` };
    },
  },
);
