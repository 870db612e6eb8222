/**
 * The handful of domain errors examlab raises. Each one maps to a single exit
 * code (CLI) and, later, a single HTTP status; nothing else needs to know.
 *
 * Expected failures (a candidate's check failing) are values, not errors.
 */

export interface ErrorDetail {
  /** Where the problem is: `file:line:col path` or a dotted path. */
  where?: string;
  message: string;
}

export class ExamlabError extends Error {
  readonly details: ErrorDetail[];
  constructor(message: string, details: ErrorDetail[] = [], options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.details = details;
  }
}

/** The input (a scenario, a request, a flag) is wrong; the caller must fix it. */
export class InputError extends ExamlabError {}

/** The thing asked for does not exist. */
export class NotFoundError extends ExamlabError {}

/** The request conflicts with the current state (e.g. grading a destroyed lab). */
export class ConflictError extends ExamlabError {}

/** The caller is not allowed to do this. */
export class NotAllowedError extends ExamlabError {}

/** The environment is not usable: an engine is down, a tool is missing. */
export class EnvironmentError extends ExamlabError {}

/**
 * The data directory cannot take a write (an I/O error): nothing was
 * written. Made from the system's or SQLite's error in one place,
 * `storageError` (util/storage.ts); HTTP 503.
 */
export class StorageError extends EnvironmentError {}

/** The data directory's filesystem is full: nothing was written; the message says how much is free, and where. HTTP 507. */
export class StorageFullError extends StorageError {}

/**
 * An engine (libvirtd, dockerd) does not answer, or stopped answering: what
 * needed it can be tried again once it does. `engine` is the provider's name.
 */
export class EngineUnavailableError extends EnvironmentError {
  constructor(
    readonly engine: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, [], options);
  }
}

/** The EngineUnavailableError behind `err` (itself, or one of its causes), if any. */
export function engineUnavailable(err: unknown): EngineUnavailableError | undefined {
  for (let e = err, depth = 0; e instanceof Error && depth < 8; e = e.cause, depth++) {
    if (e instanceof EngineUnavailableError) return e;
  }
  return undefined;
}

/** A wait ran out of time; the message says what was awaited. */
export class TimeoutError extends ExamlabError {}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
