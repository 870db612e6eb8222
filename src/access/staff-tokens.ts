import type { Actor, AuditLog } from '../audit/index.js';
import type { StaffRole, StaffToken, TokenStore } from './tokens.js';

/** The operator's management of staff tokens: each change is audited. */
export class StaffTokens {
  constructor(
    private readonly tokens: TokenStore,
    private readonly audit: AuditLog,
  ) {}

  list(): StaffToken[] {
    return this.tokens.list();
  }

  /** A new token, shown once. */
  issue(name: string, role: StaffRole, actor: Actor): StaffToken & { token: string } {
    const { token, record } = this.tokens.issue(name, role, 'api');
    this.audit.append({ actor, action: 'token.create', detail: { id: record.id, name: record.name, role: record.role } });
    return { ...record, token };
  }

  revoke(id: string, actor: Actor): StaffToken {
    const record = this.tokens.revoke(id);
    this.audit.append({ actor, action: 'token.revoke', detail: { id: record.id, name: record.name } });
    return record;
  }
}
