import { z } from 'zod';
import { pattern } from '../fields.js';
import { defineKind, type Assertion } from '../check-kind.js';
import { assertFlag, assertMatch, fileText, textOf } from '../assertions.js';
import { ACCOUNT_FILES, parseGroups, parsePasswdLine } from './accounts.js';
import { ACCOUNT_NAME } from './user.js';
import { matcherSchema } from '../matchers.js';

export const groupKind = defineKind(
  'group',
  {
    name: pattern(ACCOUNT_NAME, 'not a valid group name'),
    exists: z.boolean().default(true),
    gid: matcherSchema.optional(),
    members: matcherSchema.optional().describe('Users in the group: listed members and users whose primary group it is'),
  },
  {
    plan(check) {
      return { machine: check.machine, probe: { ...ACCOUNT_FILES } };
    },
    evaluate(check, facts) {
      const group = parseGroups(textOf(facts, 'group', 'read /etc/group')).find((g) => g.name === check.name);
      const assertions: Assertion[] = [{ ...assertFlag('exists', check.exists, group !== undefined, group ? `group ${check.name} exists` : `no group ${check.name}`), gate: check.exists }];
      if (!group) return { assertions, evidence: `no line for ${check.name} in /etc/group` };
      const primary = (fileText(facts, 'passwd', '/etc/passwd') ?? '')
        .split('\n')
        .map(parsePasswdLine)
        .filter((u) => u?.gid === group.gid)
        .map((u) => u?.name as string);
      const members = [...new Set([...group.members, ...primary])];
      const evidence = `${group.name}: gid ${group.gid}, members ${members.join(',') || '(none)'}`;
      if (!check.exists) return { assertions, evidence };
      if (check.gid !== undefined) assertions.push(assertMatch('gid', check.gid, group.gid));
      if (check.members !== undefined) assertions.push(assertMatch('members', check.members, members));
      return { assertions, evidence };
    },
  },
);
