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

/** A request as fetch() answers it, with the page's header: event streams, files to download. */
export function apiFetch(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = { [REQUEST_HEADER]: '1', ...(init.headers as Record<string, string> | undefined) };
  return fetch(path, { ...init, headers, credentials: 'same-origin' });
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  const res = await apiFetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let data: unknown;
  try {
    data = text ? (JSON.parse(text) as unknown) : undefined;
  } catch {
    if (res.ok) throw new ApiError(res.status, `the answer is not JSON (${res.headers.get('content-type') ?? 'no type'})`);
  }
  if (!res.ok) {
    const error = (data ?? {}) as { message?: string; details?: { where?: string; message: string }[] };
    throw new ApiError(res.status, error.message ?? `${res.status} ${res.statusText}`, error.details);
  }
  return data as T;
}
