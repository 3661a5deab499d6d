/**
 * The one error class the store throws or passes to callbacks.
 *
 * Every failure carries a stable {@link SessionStoreErrorCode} so callers can
 * branch on `err.code` instead of parsing messages, and the driver's own error
 * (if any) as `err.cause`.
 *
 * @module
 */

/** Stable error codes. New codes may be added; existing ones never change meaning. */
export type SessionStoreErrorCode =
  /** A session id that is not a non-empty string of at most 256 printable characters. */
  | 'ERR_INVALID_SESSION_ID'
  /** A session value that cannot be stored as JSON: cycle, BigInt, function, symbol, Map, Set, non-finite number, ill-formed string. */
  | 'ERR_VALUE_NOT_STORABLE'
  /** A key `__proto__`, `constructor` or `prototype` somewhere in the session. */
  | 'ERR_FORBIDDEN_KEY'
  /** The serialised session is larger than `maxSize`. */
  | 'ERR_SESSION_TOO_LARGE'
  /** A stored row could not be read back as a session (invalid JSON, not an object, NULL). */
  | 'ERR_CORRUPT_ROW'
  /** An option is missing, unknown or has an invalid value. */
  | 'ERR_INVALID_OPTION'
  /** The database driver (`pg`, `mysql2`, `better-sqlite3`) is not installed. */
  | 'ERR_DRIVER_MISSING'
  /** The sessions table does not exist. */
  | 'ERR_TABLE_MISSING'
  /** The sessions table exists but lacks a column the store needs. */
  | 'ERR_SCHEMA'
  /** The database reported an error. */
  | 'ERR_DATABASE'
  /**
   * The database answered but would not let the store in: a wrong user or
   * password, a database that does not exist, no permission, or (SQLite) a
   * file that cannot be opened. Not retried: it needs a fix of the settings.
   */
  | 'ERR_LOGIN_FAILED'
  /** The database cannot be reached; the store keeps checking in the background and recovers by itself. */
  | 'ERR_UNAVAILABLE'
  /** The store was used after `close()`. */
  | 'ERR_STORE_CLOSED';

/** Options of {@link SessionStoreError}. */
export interface SessionStoreErrorOptions {
  /** The underlying error, usually the driver's. */
  cause?: unknown;
}

/** The one error class of smart-session-store: a stable `code`, a readable message and a `cause`. */
export class SessionStoreError extends Error {
  /** Stable, machine-readable code. */
  readonly code: SessionStoreErrorCode;

  constructor(code: SessionStoreErrorCode, message: string, options: SessionStoreErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'SessionStoreError';
    this.code = code;
  }
}

/** Wraps anything a driver threw into a {@link SessionStoreError}, leaving our own errors as they are. */
export function toStoreError(error: unknown, doing: string): SessionStoreError {
  if (error instanceof SessionStoreError) return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new SessionStoreError('ERR_DATABASE', `${doing} failed: ${detail}`, { cause: error });
}
