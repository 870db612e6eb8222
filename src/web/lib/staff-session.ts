import { api, ApiError } from './api.js';

/** Who is signed in on this page: the answer of POST/GET /api/session. */
export interface StaffSession {
  role: 'operator' | 'jury' | 'candidate';
  name: string;
  examId?: string;
  candidateId?: string;
}

/*
 * The staff pages sign in with the daemon's session cookie (POST
 * /api/session, HttpOnly): the token is typed once and no script sees it
 * afterwards, nor is it kept in the page's storage.
 */

/** Signs in with a token; throws ApiError (401 unknown token, 429 too many tries). */
export function signIn(token: string): Promise<StaffSession> {
  return api<StaffSession>('POST', '/api/session', { token });
}

/** The current session, or undefined when nobody is signed in. */
export async function currentSession(): Promise<StaffSession | undefined> {
  try {
    return await api<StaffSession>('GET', '/api/session');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return undefined;
    throw err;
  }
}

export async function signOut(): Promise<void> {
  try {
    await api('DELETE', '/api/session');
  } catch (err) {
    if (!(err instanceof ApiError && err.status === 401)) throw err;
  }
}
