/** The store's public types beside the class (a leaf: adapters name them without loading the store). */
import type { SessionStoreError } from '../errors.js';
import type { JsonObject } from './json.js';
import type { LockingMode } from './options.js';

/** A session of one user, from `store.listByUser`. */
export interface UserSession {
  /** The session data. */
  readonly session: JsonObject;
  /** When it expires. */
  readonly expiresAt: Date;
}

/** Events of the store (never `error`, so an unlistened store cannot crash the process). */
export interface SessionStoreEvents {
  /** The database answers again after a `disconnect`. */
  connect: [];
  /** The database could not be reached; calls fail fast with `ERR_UNAVAILABLE` until `connect`. */
  disconnect: [error: SessionStoreError];
  /** A background purge finished, having removed this many expired sessions. */
  purge: [removed: number];
  /** A background purge failed; the next one will try again. */
  purgeError: [error: SessionStoreError];
}

/** The names of {@link SessionStoreEvents}, for adapters that pass them on. */
export const SESSION_STORE_EVENTS = ['connect', 'disconnect', 'purge', 'purgeError'] as const satisfies readonly (keyof SessionStoreEvents)[];

/** Options of `store.purge`. */
export interface PurgeOptions {
  /** Rows deleted per statement. @default the autopurge batchSize, 1000 */
  batchSize?: number;
  /** Called after each batch with the number removed so far. */
  onProgress?: (removed: number) => void;
}

/** Live and expired sessions in the table, from `store.stats`. */
export interface SessionStats {
  readonly live: number;
  readonly expired: number;
}

/** What a storage can tell of itself beyond its counts, for operators (`store.report()`). */
export interface StorageReport {
  /** Bytes its sessions take where they are kept (a table's heap, without indexes). */
  readonly dataBytes?: number | undefined;
  /** Bytes its indexes take. */
  readonly indexBytes?: number | undefined;
  /** Sessions with changes appended but not yet folded into their document, and the changes' length in all. */
  readonly pendingChanges?: { readonly sessions: number; readonly length: number } | undefined;
  /** The users with the most live sessions, most first (where a user index is kept and names them). */
  readonly topUsers?: readonly { readonly userId: string; readonly sessions: number }[] | undefined;
}

/** What `store.report()` says: the counts, the locking mode, and what the storage can tell of itself. */
export interface StoreReport extends SessionStats, StorageReport {
  /** The backend: `postgres`, `mysql`, `sqlite`, `redis`. */
  readonly backend: string;
  /** The table or key prefix. */
  readonly collection: string | undefined;
  readonly locking: LockingMode;
}

/** Options of `store.report()`. */
export interface ReportOptions {
  /** How many of the users with the most live sessions to list (where a user index is kept). @default 5 */
  topUsers?: number;
}
