import { checkCsrf, cookieValue, readCredential, sessionCookie } from '../../../src/access/index.js';

describe('credentials: Bearer or the session cookie', () => {
  test('Bearer wins over the cookie; the cookie is read among others and decoded', () => {
    expect(readCredential({ authorization: 'Bearer abc', cookie: 'examlab_session=xyz' })).toEqual({ token: 'abc', via: 'bearer' });
    expect(readCredential({ cookie: 'theme=dark; examlab_session=AB%2BC; other=1' })).toEqual({ token: 'AB+C', via: 'cookie' });
    expect(readCredential({ authorization: 'Basic abc' })).toBeUndefined();
    expect(readCredential({ cookie: 'examlab_session=' })).toBeUndefined();
    expect(cookieValue('examlab_session=%E0%A4%A', 'examlab_session')).toBeUndefined();
    expect(cookieValue('xexamlab_session=1', 'examlab_session')).toBeUndefined();
  });

  test('a cookie mutation needs the header; a Bearer one and a cookie read do not', () => {
    const cookie = { token: 't', via: 'cookie' as const };
    expect(() => checkCsrf(cookie, 'POST', undefined)).toThrow(/X-Examlab-Request: 1/);
    expect(() => checkCsrf(cookie, 'DELETE', '0')).toThrow(/X-Examlab-Request/);
    expect(() => checkCsrf(cookie, 'PUT', '1')).not.toThrow();
    expect(() => checkCsrf(cookie, 'GET', undefined)).not.toThrow();
    expect(() => checkCsrf({ token: 't', via: 'bearer' }, 'POST', undefined)).not.toThrow();
  });

  test('the cookie is HttpOnly and SameSite=Strict, Secure over HTTPS, cleared with Max-Age=0', () => {
    expect(sessionCookie('AB-CD', false)).toBe('examlab_session=AB-CD; Path=/; HttpOnly; SameSite=Strict');
    expect(sessionCookie('AB-CD', true)).toBe('examlab_session=AB-CD; Path=/; HttpOnly; SameSite=Strict; Secure');
    expect(sessionCookie(undefined, false)).toBe('examlab_session=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict');
  });
});
