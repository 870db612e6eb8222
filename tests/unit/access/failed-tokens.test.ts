import { addressKey, Authenticator, FailedTokens, hashCandidateToken, TooManyAttemptsError, UnauthenticatedError, UnknownTokenError, type CandidateDirectory, type TokenStore } from '../../../src/access/index.js';

describe('refused tokens counted per address', () => {
  test('addresses: IPv4 as is, IPv4 mapped into IPv6 as IPv4, IPv6 by its /64', () => {
    expect(addressKey('192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(addressKey('2001:db8:0:1::42')).toBe('2001:db8:0:1::/64');
    expect(addressKey('2001:DB8:0:1:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:0:1::/64');
    expect(addressKey('::1')).toBe('0:0:0:0::/64');
    expect(addressKey(undefined)).toBe('unknown');
  });

  test('at the limit the address is refused until its window ends, with the seconds left; others are not', () => {
    let now = 1_000_000;
    const f = new FailedTokens({ perAddress: 3, windowMs: 60_000 }, () => now);
    for (let i = 1; i <= 3; i++) {
      expect(() => f.check('192.0.2.1')).not.toThrow();
      expect(f.fail('192.0.2.1')).toBe(i);
    }
    now += 20_000;
    const err = (() => {
      try {
        f.check('192.0.2.1');
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(TooManyAttemptsError);
    expect((err as TooManyAttemptsError).retryAfterSeconds).toBe(40);
    expect(() => f.check('::ffff:192.0.2.1')).toThrow(TooManyAttemptsError);
    expect(() => f.check('192.0.2.2')).not.toThrow();
    now += 40_000;
    expect(() => f.check('192.0.2.1')).not.toThrow();
    expect(f.count('192.0.2.1')).toBe(0);
    expect(f.fail('192.0.2.1')).toBe(1);
  });

  test('the authenticator counts unknown tokens only, and checks none from an address at its limit', () => {
    const valid = 'ABCDE-FGHJK-MNPQR-STVWX';
    const directory: CandidateDirectory = {
      admit(hash) {
        if (hash === hashCandidateToken('NOTYE-TSTAR-TED00-00000')) throw new UnauthenticatedError('exam e1 has not started yet');
        if (hash !== hashCandidateToken(valid)) throw new UnknownTokenError('unknown or revoked token');
        return { examId: 'e1', candidateId: 'alice' };
      },
    };
    const noStaff = { resolve: () => undefined } as unknown as TokenStore;
    const auth = new Authenticator(noStaff, directory, new FailedTokens({ perAddress: 2, windowMs: 60_000 }));
    // A known token refused for now (the page of a candidate waiting for the start) never adds up.
    for (let i = 0; i < 5; i++) expect(() => auth.authenticate('NOTYE-TSTAR-TED00-00000', '192.0.2.9')).toThrow('has not started yet');
    expect(auth.failures.count('192.0.2.9')).toBe(0);
    expect(auth.authenticate(valid, '192.0.2.9')).toMatchObject({ kind: 'candidate', candidateId: 'alice' });
    // Nor does a valid one.
    expect(auth.failures.count('192.0.2.9')).toBe(0);
    expect(() => auth.authenticate('guess-1', '192.0.2.9')).toThrow(UnknownTokenError);
    expect(() => auth.candidate('guess-2', '192.0.2.9')).toThrow(UnknownTokenError);
    // Now even the valid token is not checked from there: a guess could otherwise still tell right from wrong.
    expect(() => auth.authenticate(valid, '192.0.2.9')).toThrow(TooManyAttemptsError);
    expect(() => auth.candidate(valid, '192.0.2.9')).toThrow(TooManyAttemptsError);
    expect(auth.candidate(valid, '192.0.2.10')).toEqual({ examId: 'e1', candidateId: 'alice' });
  });
});
