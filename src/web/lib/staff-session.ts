import { api, ApiError, useCredentials } from './api.js';

/** Who is signed in on this page: the answer of POST/GET /api/session. */
export interface StaffSession {
  role: 'operator' | 'jury' | 'candidate';
  name: string;
  examId?: string;
  candidateId?: string;
}

/*
 * The staff pages sign in with the daemon's session cookie (POST
 * /api/session, HttpOnly: no script sees the token afterwards). Until a
 * daemon offers /api/session (it answers 404), the token is kept in this
 * tab's sessionStorage and sent as a Bearer header: this file alone knows
 * it; removing INTERIM_* below is the whole switch to the cookie.
 */
const INTERIM_KEY = 'examlab-staff-token';

function interimToken(): string | undefined {
  return sessionStorage.getItem(INTERIM_KEY) ?? undefined;
}

useCredentials((): Record<string, string> => {
  const token = interimToken();
  return token ? { Authorization: `Bearer ${token}` } : {};
});

const noSessionEndpoint = (err: unknown) => err instanceof ApiError && (err.status === 404 || err.status === 405);

/** Without /api/session: the role a token has, from what it may read. */
async function interimIdentify(): Promise<StaffSession> {
  try {
    await api('GET', '/api/tokens');
    return { role: 'operator', name: '' };
  } catch (err) {
    if (err instanceof ApiError && err.status === 403) {
      try {
        await api('GET', '/api/exams');
        return { role: 'jury', name: '' };
      } catch (inner) {
        if (inner instanceof ApiError && inner.status === 403) return { role: 'candidate', name: '' };
        throw inner;
      }
    }
    throw err;
  }
}

/** Signs in with a token; throws ApiError (401 unknown token, 429 too many tries). */
export async function signIn(token: string): Promise<StaffSession> {
  sessionStorage.removeItem(INTERIM_KEY);
  try {
    return await api<StaffSession>('POST', '/api/session', { token });
  } catch (err) {
    if (!noSessionEndpoint(err)) throw err;
    sessionStorage.setItem(INTERIM_KEY, token);
    try {
      return await interimIdentify();
    } catch (inner) {
      sessionStorage.removeItem(INTERIM_KEY);
      throw inner;
    }
  }
}

/** The current session, or undefined when nobody is signed in. */
export async function currentSession(): Promise<StaffSession | undefined> {
  try {
    if (!interimToken()) return await api<StaffSession>('GET', '/api/session');
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return undefined;
    if (!noSessionEndpoint(err)) throw err;
  }
  if (!interimToken()) return undefined;
  try {
    return await interimIdentify();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      sessionStorage.removeItem(INTERIM_KEY);
      return undefined;
    }
    throw err;
  }
}

export async function signOut(): Promise<void> {
  const interim = interimToken();
  sessionStorage.removeItem(INTERIM_KEY);
  if (interim) return;
  try {
    await api('DELETE', '/api/session');
  } catch (err) {
    if (!noSessionEndpoint(err) && !(err instanceof ApiError && err.status === 401)) throw err;
  }
}
