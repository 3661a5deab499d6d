/**
 * smart-session-store: an HTTP session store on PostgreSQL, MySQL/MariaDB and
 * SQLite that never loses a change when several requests of one user modify
 * the session at once.
 *
 * This entry point is framework-neutral and promise-based; express-session
 * users import `smart-session-store/express`.
 *
 * @module
 */
export {
  SessionStore,
  type LoadedSession,
  type LoadedState,
  type UserSession,
  type SessionStoreEvents,
  type PurgeOptions,
  type SessionStats,
} from './core/session-store.js';
export type {
  SessionStoreOptions,
  LockingMode,
  AutopurgeOptions,
  SessionConnection,
  ResolvedOptions,
  ResolvedAutopurge,
  ConnectionTarget,
  ConnectionParameters,
} from './core/options.js';
export { SessionStoreError, type SessionStoreErrorCode, type SessionStoreErrorOptions } from './errors.js';
export { computeDelta, applyDelta, isEmptyDelta, type SessionDelta, type Patch, type ObjectPatch, type ValuePatch } from './core/delta.js';
export { toJsonValue, type JsonValue, type JsonObject } from './core/json.js';
export { hashSessionId, MAX_SESSION_ID_LENGTH } from './core/session-id.js';
export type { DialectName, TableName } from './dialects/dialect.js';
export { loadConfig, optionsFromConfig } from './config.js';
