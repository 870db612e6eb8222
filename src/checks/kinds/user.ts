import { z } from 'zod';
import { pattern } from '../fields.js';
import { defineKind, type Assertion } from '../check-kind.js';
import { assertFlag, assertMatch, fileText, obs, textOf } from '../assertions.js';
import { ACCOUNT_FILES, lockReason, parseGroups, parsePasswdLine } from './accounts.js';
import { matcherSchema } from '../matchers.js';

export const ACCOUNT_NAME = /^[a-z_][a-z0-9_.-]*\$?$/;

export const userKind = defineKind(
  'user',
  {
    name: pattern(ACCOUNT_NAME, 'not a valid user name'),
    exists: z.boolean().default(true),
    uid: matcherSchema.optional(),
    home: matcherSchema.optional(),
    shell: matcherSchema.optional(),
    groups: matcherSchema.optional().describe('Names of all the groups the user belongs to, e.g. { contains: sudo }'),
    locked: z.boolean().optional().describe('Password locked or account expired'),
    login: z
      .strictObject({
        password: z.string().min(1),
        succeeds: z.boolean().default(true),
      })
      .optional()
      .describe('The grader tries an SSH login with this password: behaviour, not configuration'),
    directory: z
      .boolean()
      .default(false)
      .describe('An account of a directory (Active Directory through winbind or sssd, LDAP), not of the local account files: its `login` is asserted, and that no local account of that name stands in for it'),
  },
  {
    validate(check) {
      if (!check.directory) return [];
      const local = (['uid', 'home', 'shell', 'groups', 'locked'] as const).filter((f) => check[f] !== undefined);
      return [
        ...(check.login ? [] : ['a directory account is checked by its `login`']),
        ...(local.length ? [`${local.map((f) => `\`${f}\``).join(', ')}: read from the local account files, not for a directory account`] : []),
        ...(check.exists ? [] : ['`exists: false` is for local accounts']),
      ];
    },
    plan(check, ctx) {
      const probe = { ...ACCOUNT_FILES, shadow: obs('read', '/etc/shadow', 1 << 20) };
      const login = check.login;
      return {
        machine: check.machine,
        probe,
        observe: login ? () => ctx.trySshLogin(check.machine, check.name, login.password, Math.min(check.timeout, 10_000)) : undefined,
      };
    },
    evaluate(check, facts) {
      const entry = (textOf(facts, 'passwd', 'read /etc/passwd'))
        .split('\n')
        .map(parsePasswdLine)
        .find((u) => u?.name === check.name);
      const login = facts.observed as { ok: boolean; detail: string } | undefined;
      if (check.directory) {
        // A local account of the same name would log in without the directory: it must not be there.
        const assertions: Assertion[] = [
          { ...assertFlag('local account', false, entry !== undefined, entry ? `a local account ${check.name} (uid ${entry.uid}) in /etc/passwd` : 'no local account'), gate: true },
        ];
        if (check.login && login) assertions.push(assertFlag('login works', check.login.succeeds, login.ok, login.detail));
        const evidence = [entry ? `local account in /etc/passwd: uid ${entry.uid}` : `no line for ${check.name} in /etc/passwd`, login ? `SSH login: ${login.detail}` : ''].filter(Boolean).join('\n');
        return { assertions, evidence };
      }
      const assertions: Assertion[] = [{ ...assertFlag('exists', check.exists, entry !== undefined, entry ? `user ${check.name} exists` : `no user ${check.name}`), gate: check.exists }];
      if (!entry) return { assertions, evidence: `no line for ${check.name} in /etc/passwd` };
      const groups = parseGroups(fileText(facts, 'group', '/etc/group') ?? '');
      const memberOf = [...new Set(groups.filter((g) => g.gid === entry.gid || g.members.includes(entry.name)).map((g) => g.name))];
      const locked = lockReason((fileText(facts, 'shadow', '/etc/shadow') ?? '').split('\n').find((line) => line.startsWith(`${check.name}:`)));
      const evidence = [
        `${entry.name}: uid ${entry.uid}, home ${entry.home}, shell ${entry.shell}, groups ${memberOf.join(',')}`,
        locked ? `locked: ${locked}` : 'not locked',
        login ? `SSH login: ${login.detail}` : '',
      ].filter(Boolean).join('\n');
      if (!check.exists) return { assertions, evidence };
      if (check.uid !== undefined) assertions.push(assertMatch('uid', check.uid, entry.uid));
      if (check.home !== undefined) assertions.push(assertMatch('home', check.home, entry.home));
      if (check.shell !== undefined) assertions.push(assertMatch('shell', check.shell, entry.shell));
      if (check.groups !== undefined) assertions.push(assertMatch('groups', check.groups, memberOf));
      if (check.locked !== undefined) assertions.push(assertFlag('locked', check.locked, locked !== undefined, locked ?? 'not locked'));
      if (check.login && login) assertions.push(assertFlag('login works', check.login.succeeds, login.ok, login.detail));
      return { assertions, evidence };
    },
  },
);
