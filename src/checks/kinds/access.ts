import { z } from 'zod';
import { absolutePath, pattern } from '../fields.js';
import { defineKind, ProbeError, type Assertion, type Observation, type ProbeFacts } from '../check-kind.js';
import { answered, assertFlag, obs, parsePlain, textOf } from '../assertions.js';
import { ACCOUNT_FILES, parseGroups, parsePasswdLine } from './accounts.js';
import { ACCOUNT_NAME } from './user.js';

/** POSIX ACL entry tags (acl_ea.h) and the permission bits. */
const ACL_USER_OBJ = 0x01;
const ACL_USER = 0x02;
const ACL_GROUP_OBJ = 0x04;
const ACL_GROUP = 0x08;
const ACL_MASK = 0x10;
const ACL_OTHER = 0x20;
const R = 4;
const W = 2;
const X = 1;

export interface AclEntry {
  tag: number;
  perm: number;
  id: number;
}

/** The kernel's system.posix_acl_access value: a version word, then 8-byte entries (tag u16, perm u16, id u32), little-endian. */
export function parseAcl(data: Buffer): AclEntry[] {
  if (data.length < 4 || data.readUInt32LE(0) !== 2 || (data.length - 4) % 8) throw new ProbeError('an access ACL in an unknown format');
  const entries: AclEntry[] = [];
  for (let at = 4; at < data.length; at += 8) entries.push({ tag: data.readUInt16LE(at), perm: data.readUInt16LE(at + 2), id: data.readUInt32LE(at + 4) });
  return entries;
}

interface Node {
  path: string;
  type: string;
  mode: number;
  uid: number;
  gid: number;
  acl?: AclEntry[];
}

interface Who {
  uid: number;
  gids: Set<number>;
}

/** Whether `who` has all of `want` on `node`: the kernel's rules for modes and access ACLs (acl_permission_check). */
export function permits(node: Node, who: Who, want: number): boolean {
  if (who.uid === 0) return want & X && node.type !== 'directory' ? (node.mode & 0o111) !== 0 : true;
  if (!node.acl) {
    const bits = who.uid === node.uid ? node.mode >> 6 : who.gids.has(node.gid) ? node.mode >> 3 : node.mode;
    return (bits & want) === want;
  }
  const mask = node.acl.find((e) => e.tag === ACL_MASK)?.perm ?? 7;
  if (who.uid === node.uid) return ((node.acl.find((e) => e.tag === ACL_USER_OBJ)?.perm ?? 0) & want) === want;
  const named = node.acl.find((e) => e.tag === ACL_USER && e.id === who.uid);
  if (named) return (named.perm & mask & want) === want;
  const groups = node.acl.filter((e) => (e.tag === ACL_GROUP_OBJ && who.gids.has(node.gid)) || (e.tag === ACL_GROUP && who.gids.has(e.id)));
  if (groups.length) return groups.some((e) => (e.perm & mask & want) === want);
  return ((node.acl.find((e) => e.tag === ACL_OTHER)?.perm ?? 0) & want) === want;
}

/** The path and every directory above it: each one is searched on the way. */
function lineage(path: string): string[] {
  const parts = path.split('/').filter(Boolean);
  return ['/', ...parts.map((_, i) => `/${parts.slice(0, i + 1).join('/')}`)];
}

function node(facts: ProbeFacts, i: number, path: string): Node | undefined {
  const stat = answered(facts, `stat${i}`, `inspect ${path}`);
  if (stat.status === 'neg') return undefined;
  const f = parsePlain(stat.data.toString('utf8'));
  if (f.get('type') === 'symlink' && path !== '/') throw new ProbeError(`${path} is a symbolic link: give the path it leads to`);
  const acl = answered(facts, `acl${i}`, `read the ACL of ${path}`);
  return {
    path,
    type: f.get('type') ?? '',
    mode: parseInt(f.get('mode') ?? '0', 8),
    uid: Number(f.get('uid')),
    gid: Number(f.get('gid')),
    acl: acl.status === 'ok' ? parseAcl(acl.data) : undefined,
  };
}

/**
 * Whether a user may read, write or run something at a path, decided as the
 * kernel decides: owner, group and other bits, access ACLs (named users and
 * groups, the mask), the user's primary and supplementary groups, and search
 * permission on every directory above. Observed, never tried as the user:
 * nothing runs with the machine's tools.
 */
export const accessKind = defineKind(
  'access',
  {
    path: absolutePath(),
    user: pattern(ACCOUNT_NAME, 'not a valid user name').describe('The account whose rights are judged'),
    read: z.boolean().optional().describe('May read the file (list the directory)'),
    write: z.boolean().optional().describe('May write the file (create and delete entries in the directory)'),
    execute: z.boolean().optional().describe('May run the file (enter the directory)'),
  },
  {
    validate: (check) => (check.read === undefined && check.write === undefined && check.execute === undefined ? ['give at least one of `read`, `write`, `execute`'] : []),
    plan(check) {
      const probe: Record<string, Observation> = { ...ACCOUNT_FILES };
      lineage(check.path).forEach((p, i) => {
        probe[`stat${i}`] = obs('lstat', p);
        probe[`acl${i}`] = obs('xattr', p, 'system.posix_acl_access');
      });
      return { machine: check.machine, probe };
    },
    evaluate(check, facts) {
      const user = textOf(facts, 'passwd', 'read /etc/passwd').split('\n').map(parsePasswdLine).find((u) => u?.name === check.user);
      if (!user) return { assertions: [{ name: 'user exists', pass: false, expected: `user ${check.user} exists`, actual: `no user ${check.user}`, gate: true }], evidence: `no line for ${check.user} in /etc/passwd` };
      const groups = parseGroups(textOf(facts, 'group', 'read /etc/group'));
      const who: Who = { uid: user.uid, gids: new Set([user.gid, ...groups.filter((g) => g.members.includes(user.name)).map((g) => g.gid)]) };
      const paths = lineage(check.path);
      const nodes = paths.map((p, i) => node(facts, i, p));
      const target = nodes.at(-1);
      const gateName = `${check.path} exists`;
      if (!target) return { assertions: [{ name: 'exists', pass: false, expected: gateName, actual: `${check.path} does not exist`, gate: true }], evidence: `${check.path}: no such file or directory` };
      const blocked = nodes.slice(0, -1).find((n) => n && !permits(n, who, X));
      const can = (want: number) => !blocked && permits(target, who, want);
      const describe = (n: Node) => `${n.path}: ${n.type} ${n.mode.toString(8).padStart(4, '0')} uid ${n.uid} gid ${n.gid}${n.acl ? `, ACL ${n.acl.map((e) => `${e.tag}:${e.id}:${e.perm}`).join(' ')}` : ''}`;
      const evidence = [`${check.user}: uid ${who.uid}, groups ${[...who.gids].join(',')}`, ...nodes.filter((n): n is Node => Boolean(n)).map(describe), blocked ? `${check.user} cannot enter ${blocked.path}` : ''].filter(Boolean).join('\n');
      const assertions: Assertion[] = [];
      const why = (ok: boolean, verb: string) => (ok ? `${check.user} may ${verb}` : blocked ? `${check.user} may not enter ${blocked.path}` : `${check.user} may not ${verb}`);
      if (check.read !== undefined) assertions.push(assertFlag('read', check.read, can(R), why(can(R), 'read')));
      if (check.write !== undefined) {
        // Writing in a directory means adding and removing entries: write and search on it.
        const ok = can(target.type === 'directory' ? W | X : W);
        assertions.push(assertFlag('write', check.write, ok, why(ok, 'write')));
      }
      if (check.execute !== undefined) assertions.push(assertFlag('execute', check.execute, can(X), why(can(X), target.type === 'directory' ? 'enter' : 'run')));
      return { assertions, evidence };
    },
  },
);
