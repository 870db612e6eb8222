import { randomBytes } from 'node:crypto';
import type { Db } from '../util/database.js';
import { now } from '../util/database.js';
import { NotFoundError } from '../util/errors.js';
import { newId, sha256 } from '../util/ids.js';

/** Staff roles. The operator runs exams; the jury reads results and marks the manual criteria. */
export const STAFF_ROLES = ['operator', 'jury'] as const;
export type StaffRole = (typeof STAFF_ROLES)[number];

/** A staff bearer token: 32 random bytes, base64url. */
export function newStaffToken(): string {
  return `exl_${randomBytes(32).toString('base64url')}`;
}

// Crockford's base32: no I, L, O or U, so a token typed from a printed card is not misread.
const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/**
 * A candidate's access token: 20 base32 characters (100 bits) in groups of
 * five. Short enough to type at an SSH password prompt, far too many to guess.
 */
export function newCandidateToken(): string {
  const bytes = randomBytes(20);
  const chars = [...bytes].map((b) => CROCKFORD[b & 31]).join('');
  return (chars.match(/.{5}/g) as string[]).join('-');
}

/** Tokens are stored hashed, never in clear. */
export function hashStaffToken(token: string): string {
  return sha256(token.trim());
}

/** Candidate tokens are compared without their dashes and case, as people type them. */
export function hashCandidateToken(token: string): string {
  return sha256(token.replace(/[\s-]/g, '').toUpperCase());
}

export interface StaffToken {
  id: string;
  name: string;
  role: StaffRole;
  /** `config` (from the configuration file), `bootstrap` (made at first start) or `api`. */
  source: string;
  createdAt: string;
  revokedAt?: string;
}

interface Row {
  id: string;
  name: string;
  role: StaffRole;
  hash: string;
  source: string;
  created_at: string;
  revoked_at: string | null;
}

const toToken = (r: Row): StaffToken => ({ id: r.id, name: r.name, role: r.role, source: r.source, createdAt: r.created_at, revokedAt: r.revoked_at ?? undefined });

/** Operator and jury tokens, hashed. The clear token is only ever returned by `issue`. */
export class TokenStore {
  constructor(private readonly db: Db) {}

  issue(name: string, role: StaffRole, source: string): { token: string; record: StaffToken } {
    const token = newStaffToken();
    return { token, record: this.add(name, role, hashStaffToken(token), source) };
  }

  /**
   * Registers a token whose hash is known (from the configuration);
   * idempotent. A revoked token stays revoked: reading the configuration
   * again at a restart never brings it back (give it a new value instead).
   */
  add(name: string, role: StaffRole, hash: string, source: string): StaffToken {
    const existing = this.db.prepare(`SELECT * FROM api_tokens WHERE hash = ?`).get(hash) as Row | undefined;
    if (existing) {
      if (existing.name !== name || existing.role !== role) {
        this.db.prepare(`UPDATE api_tokens SET name = ?, role = ? WHERE id = ?`).run(name, role, existing.id);
      }
      return toToken({ ...existing, name, role });
    }
    const row: Row = { id: newId(), name, role, hash, source, created_at: now(), revoked_at: null };
    this.db.prepare(`INSERT INTO api_tokens (id, name, role, hash, source, created_at) VALUES (?, ?, ?, ?, ?, ?)`).run(row.id, name, role, hash, source, row.created_at);
    return toToken(row);
  }

  /** The live token with this clear value, if any. */
  resolve(token: string): StaffToken | undefined {
    const row = this.db.prepare(`SELECT * FROM api_tokens WHERE hash = ? AND revoked_at IS NULL`).get(hashStaffToken(token)) as Row | undefined;
    return row ? toToken(row) : undefined;
  }

  list(): StaffToken[] {
    return (this.db.prepare(`SELECT * FROM api_tokens ORDER BY created_at, id`).all() as Row[]).map(toToken);
  }

  count(role: StaffRole): number {
    return (this.db.prepare(`SELECT count(*) AS n FROM api_tokens WHERE role = ? AND revoked_at IS NULL`).get(role) as { n: number }).n;
  }

  revoke(id: string): StaffToken {
    const row = this.db.prepare(`SELECT * FROM api_tokens WHERE id = ?`).get(id) as Row | undefined;
    if (!row) throw new NotFoundError(`no token ${id}`);
    if (!row.revoked_at) this.db.prepare(`UPDATE api_tokens SET revoked_at = ? WHERE id = ?`).run(now(), id);
    return toToken({ ...row, revoked_at: row.revoked_at ?? now() });
  }

  /** Revokes every live token of this name (e.g. the previous demo token). */
  revokeByName(name: string): void {
    this.db.prepare(`UPDATE api_tokens SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL`).run(now(), name);
  }
}
