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
  return answerOf<T>(await apiFetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) }));
}

/** A request whose body is a file as it is (a roster, read by its content), answered in JSON. */
export async function apiFile<T>(method: string, path: string, bytes: Uint8Array<ArrayBuffer>, contentType: string): Promise<T> {
  return answerOf<T>(await apiFetch(path, { method, headers: { 'Content-Type': contentType, Accept: 'application/json' }, body: bytes }));
}

/** The daemon's refusal in `res` (not ok), with its message and where each problem is. */
export async function refusal(res: Response): Promise<ApiError> {
  const error = ((await res.json().catch(() => undefined)) ?? {}) as { message?: string; details?: { where?: string; message: string }[] };
  return new ApiError(res.status, error.message ?? `${res.status} ${res.statusText}`, error.details);
}

async function answerOf<T>(res: Response): Promise<T> {
  if (!res.ok) throw await refusal(res);
  const text = await res.text();
  try {
    return (text ? JSON.parse(text) : undefined) as T;
  } catch {
    throw new ApiError(res.status, `the answer is not JSON (${res.headers.get('content-type') ?? 'no type'})`);
  }
}

/** Hands `blob` to the browser as a download named `filename`. */
export function saveFile(blob: Blob, filename: string): void {
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 60_000);
}
