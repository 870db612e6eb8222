import { ExamlabError } from '../util/errors.js';
import { FailedTokens } from './failed-tokens.js';
import type { Principal } from './principal.js';
import { hashCandidateToken, type TokenStore } from './tokens.js';

/** No credential, or one that is unknown or no longer valid (HTTP 401). */
export class UnauthenticatedError extends ExamlabError {}

/** A token that belongs to no one (never issued, replaced or revoked): what a guess looks like. */
export class UnknownTokenError extends UnauthenticatedError {}

/** A candidate let in by their token. */
export interface AdmittedCandidate {
  examId: string;
  candidateId: string;
}

/**
 * Where candidate tokens are looked up: the exams, which alone know whether
 * a candidate may come in now (exam started, not over, not revoked).
 */
export interface CandidateDirectory {
  /** The candidate whose token has this hash; throws UnauthenticatedError or NotAllowedError when they may not come in. */
  admit(tokenHash: string): AdmittedCandidate;
}

/**
 * Turns a bearer token into a principal: a staff token (operator, jury)
 * or a candidate's token, which is valid only while that candidate's exam
 * runs and their access has not been revoked. Unknown tokens are counted
 * per client address (`from`): at the limit, that address's tokens are not
 * checked until its window ends (TooManyAttemptsError).
 */
export class Authenticator {
  constructor(
    private readonly tokens: TokenStore,
    private readonly candidates: CandidateDirectory,
    readonly failures: FailedTokens = new FailedTokens(),
  ) {}

  authenticate(token: string | undefined, from?: string): Principal {
    if (!token) throw new UnauthenticatedError('missing credentials: send "Authorization: Bearer <token>", or sign in on the page (session cookie)');
    return this.counted(from, () => {
      const staff = this.tokens.resolve(token);
      if (staff) return { kind: 'staff', role: staff.role, name: staff.name, tokenId: staff.id };
      return { kind: 'candidate', ...this.candidates.admit(hashCandidateToken(token)) };
    });
  }

  /** The candidate a token belongs to, if their exam lets them in now. */
  candidate(token: string, from?: string): AdmittedCandidate {
    return this.counted(from, () => this.candidates.admit(hashCandidateToken(token)));
  }

  /** Only unknown tokens count: a candidate's known token refused for now (exam not started, or over) is no guess. */
  private counted<T>(from: string | undefined, check: () => T): T {
    this.failures.check(from);
    try {
      return check();
    } catch (err) {
      if (err instanceof UnknownTokenError) this.failures.fail(from);
      throw err;
    }
  }
}
