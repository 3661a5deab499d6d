/**
 * smart-session-store: an HTTP session store on PostgreSQL, MySQL/MariaDB and
 * SQLite that never loses a change when several requests of one user modify
 * the session at once.
 *
 * This entry point is framework-neutral and promise-based; framework users
 * import their adapter (`smart-session-store/express`, ...).
 *
 * @module
 */
export { SessionStore, type SessionStoreSetup } from './store.js';
export type { SessionStoreOptions, SeedOptionNames, ConnectionOptions } from './options.js';
export type {
  LoadedSession,
  LoadedState,
  SaveOptions,
  UserSession,
  SessionClient,
  ListByUserOptions,
  DestroyByUserOptions,
  SessionEvent,
  DestroyedEvent,
  RotatedEvent,
  ExpiredEvent,
  SessionStoreEvents,
  PurgeOptions,
  SessionStats,
  ReportOptions,
  StoreReport,
  StorageReport,
} from './core/session-store.js';
export type { SessionHandle } from './core/session-handle.js';
export type { SessionStoreCore } from './core/session-store.js';
export type { SharedConnectionOptions } from './backends/connection-options.js';
export type { NoBackendOptions } from './backends/backend-descriptor.js';
export type { PostgresOptions } from './backends/postgres/postgres-options.js';
export type { SqliteOptions } from './backends/sqlite/sqlite-options.js';
export type { MysqlOptions } from './backends/mysql/mysql-options.js';
export type { RedisOptions } from './backends/redis/redis-options.js';
export type { StoreMethods } from './adapters/shared/store-methods.js';
export type { Callback, ValueCallback } from './adapters/shared/cookie-session.js';
export type { SessionFormat } from './core/session-format.js';
export type { LockingMode, AutopurgeOptions, StoreOptions } from './core/options.js';
export type { SessionConnection } from './backends/connection-settings.js';
export { SessionStoreError, type SessionStoreErrorCode, type SessionStoreErrorOptions } from './errors.js';
export { computeDelta, applyDelta, isEmptyDelta, type SessionDelta, type Patch, type ObjectPatch, type ValuePatch } from './core/delta.js';
export { toJsonValue, type JsonValue, type JsonObject } from './core/json.js';
export { hashSessionId, MAX_SESSION_ID_LENGTH } from './core/session-id.js';
export { loadConfig, optionsFromConfig } from './config.js';
export { importSessions, type ImportOptions, type ImportSummary } from './migrate/import.js';
export { PEER_STORES, type PeerStoreName, type PeerStoreOptions } from './migrate/peers.js';
export type { MigrateOptions } from './migrate/migrate-options.js';
export type { SessionSource, SourceSession } from './core/session-source.js';
