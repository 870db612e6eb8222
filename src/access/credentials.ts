import { NotAllowedError } from '../util/errors.js';

/** The cookie the pages authenticate with: it holds the token, HttpOnly, so no script ever reads it. */
export const SESSION_COOKIE = 'examlab_session';

/**
 * The header every page request carries. A cross-site form or image cannot
 * send it, so a request authenticated by the cookie that changes anything
 * must have it (CSRF); a Bearer request needs nothing (no browser sends one by itself).
 */
export const REQUEST_HEADER = 'x-examlab-request';

/** Where a request's token came from. */
export interface Credential {
  token: string;
  via: 'bearer' | 'cookie';
}

/** The headers a credential is read from (HTTP or a WebSocket upgrade alike). */
export interface CredentialHeaders {
  authorization?: string;
  cookie?: string;
}

/** One cookie of a Cookie header, decoded; undefined when absent or malformed. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    try {
      const value = decodeURIComponent(part.slice(eq + 1).trim());
      return value || undefined;
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** The request's token: the Authorization header first, else the session cookie. */
export function readCredential(headers: CredentialHeaders): Credential | undefined {
  const bearer = /^Bearer\s+(.+)$/i.exec(headers.authorization ?? '')?.[1]?.trim();
  if (bearer) return { token: bearer, via: 'bearer' };
  const cookie = cookieValue(headers.cookie, SESSION_COOKIE);
  return cookie ? { token: cookie, via: 'cookie' } : undefined;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Refuses a cookie-authenticated request that changes something without the page's header (403). */
export function checkCsrf(credential: Credential | undefined, method: string, header: string | string[] | undefined): void {
  if (credential?.via !== 'cookie' || SAFE_METHODS.has(method.toUpperCase())) return;
  if (header !== '1') throw new NotAllowedError(`a request authenticated by the session cookie that changes something must carry the header "X-Examlab-Request: 1"`);
}

/** The Set-Cookie value for a session: HttpOnly, SameSite=Strict, the whole site; Secure over HTTPS. */
export function sessionCookie(token: string | undefined, secure: boolean): string {
  const attributes = ['Path=/', 'HttpOnly', 'SameSite=Strict', ...(secure ? ['Secure'] : [])];
  if (token === undefined) return [`${SESSION_COOKIE}=`, 'Max-Age=0', ...attributes].join('; ');
  return [`${SESSION_COOKIE}=${encodeURIComponent(token)}`, ...attributes].join('; ');
}
