import type { StaffRole } from './tokens.js';

/** Who is calling: a staff member (operator or jury) or one candidate of one exam. */
export type Principal =
  | { kind: 'staff'; role: StaffRole; name: string; tokenId: string }
  | { kind: 'candidate'; examId: string; candidateId: string };

/** The name the audit log records. */
export function actorOf(principal: Principal): string {
  return principal.kind === 'staff' ? `${principal.role}:${principal.name}` : `candidate:${principal.examId}/${principal.candidateId}`;
}
