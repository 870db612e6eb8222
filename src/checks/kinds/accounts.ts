/** Parsing of the account databases, shared by the file, process, user and group kinds. */
import { obs } from '../assertions.js';
import type { Observation } from '../check-kind.js';

/** The account databases, read by the probe (a machine-wide read: asked once per grading run however many checks need it). */
export const ACCOUNT_FILES: Record<'passwd' | 'group', Observation> = {
  passwd: obs('read', '/etc/passwd', 1 << 20),
  group: obs('read', '/etc/group', 1 << 20),
};

/** The name of a numeric user or group id in a passwd or group file (both have name:x:id as their first fields); the id itself when unknown. */
export function accountName(database: string | undefined, id: string): string {
  for (const line of (database ?? '').split('\n')) {
    const f = line.split(':');
    if (f.length >= 3 && f[2] === id && f[0]) return f[0];
  }
  return id;
}


export interface PasswdEntry {
  name: string;
  uid: number;
  gid: number;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  gid: number;
  members: string[];
}

export function parsePasswdLine(line: string): PasswdEntry | undefined {
  const f = line.trim().split(':');
  if (f.length < 7) return undefined;
  return { name: f[0] as string, uid: Number(f[2]), gid: Number(f[3]), home: f[5] as string, shell: f[6] as string };
}

export function parseGroups(content: string): GroupEntry[] {
  return content
    .split('\n')
    .map((line) => line.trim().split(':'))
    .filter((f) => f.length >= 4 && f[0])
    .map((f) => ({ name: f[0] as string, gid: Number(f[2]), members: (f[3] as string).split(',').filter(Boolean) }));
}

/**
 * Why an account cannot log in, from its /etc/shadow line, or undefined.
 * Today's date comes from the grader's clock: the machine's may be set back.
 */
export function lockReason(shadowLine: string | undefined, now = Date.now()): string | undefined {
  if (!shadowLine) return undefined;
  const f = shadowLine.trim().split(':');
  const hash = f[1] ?? '';
  if (hash.startsWith('!')) return 'password locked (! in /etc/shadow)';
  if (hash === '*' ) return 'no password set (* in /etc/shadow)';
  const expire = f[7];
  if (expire && /^\d+$/.test(expire) && Number(expire) <= Math.floor(now / 86_400_000)) {
    return `account expired on ${new Date(Number(expire) * 86_400_000).toISOString().slice(0, 10)}`;
  }
  return undefined;
}
