import { ExamlabError, NotAllowedError } from '../util/errors.js';
import type { CandidateRecord, ExamRecord, ExamStore } from '../exams/index.js';
import type { Principal } from './principal.js';
import { hashCandidateToken, type TokenStore } from './tokens.js';

/** No credential, or one that is unknown or no longer valid (HTTP 401). */
export class UnauthenticatedError extends ExamlabError {}

/**
 * Turns a bearer token into a principal: a staff token (operator, jury)
 * or a candidate's token, which is valid only while that candidate's exam
 * runs and their access has not been revoked.
 */
export class Authenticator {
  constructor(
    private readonly tokens: TokenStore,
    private readonly exams: ExamStore,
  ) {}

  authenticate(token: string | undefined): Principal {
    if (!token) throw new UnauthenticatedError('missing credentials: send "Authorization: Bearer <token>"');
    const staff = this.tokens.resolve(token);
    if (staff) return { kind: 'staff', role: staff.role, name: staff.name, tokenId: staff.id };
    const { exam, candidate } = this.candidate(token);
    return { kind: 'candidate', examId: exam.id, candidateId: candidate.id };
  }

  /** The candidate a token belongs to, if their exam lets them in now. */
  candidate(token: string): { exam: ExamRecord; candidate: CandidateRecord } {
    const candidate = this.exams.candidateByTokenHash(hashCandidateToken(token));
    if (!candidate) throw new UnauthenticatedError('unknown or revoked token');
    const exam = this.exams.exam(candidate.examId);
    const denied = candidateDenial(exam, candidate);
    if (denied) throw denied;
    return { exam, candidate };
  }
}

/** Why a candidate may not use their token now, or undefined if they may. */
export function candidateDenial(exam: ExamRecord, c: CandidateRecord): ExamlabError | undefined {
  if (exam.status === 'scheduled') return new UnauthenticatedError(`exam ${exam.id} has not started yet`);
  if (c.phase === 'ending' || c.phase === 'ended' || exam.status === 'ended') return new UnauthenticatedError('your exam is over: this token is no longer valid');
  if (c.revoked) return new NotAllowedError('your access has been revoked; see the exam supervisor');
  return undefined;
}
