/**
 * The pages' way to the daemon's API. Pages authenticate with the session
 * cookie (HttpOnly: a script never sees a token); every request carries
 * the `X-Examlab-Request` header, which a cross-site form cannot send, so
 * the daemon accepts cookie-authenticated mutations only with it (CSRF).
 */
export const REQUEST_HEADER = 'X-Examlab-Request';

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly details: { where?: string; message: string }[] = [],
  ) {
    super(message);
  }
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { [REQUEST_HEADER]: '1', Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  const data = text ? (JSON.parse(text) as unknown) : undefined;
  if (!res.ok) {
    const error = (data ?? {}) as { message?: string; details?: { where?: string; message: string }[] };
    throw new ApiError(res.status, error.message ?? `${res.status} ${res.statusText}`, error.details);
  }
  return data as T;
}
