/** The store's public types beside the class (a leaf: adapters name them without loading the store). */
import type { SessionStoreError } from '../errors.js';
import type { JsonObject } from './json.js';
import type { LockingMode } from './options.js';

/** What was recorded of the client that created a session (`recordClient`): personal data. */
export interface SessionClient {
  /** Its `User-Agent` header. */
  readonly userAgent?: string | undefined;
  /** Its IP address, as the framework reports it (behind a proxy: the framework's trust-proxy setting decides). */
  readonly ip?: string | undefined;
}

/** A session of one user, from `store.listByUser`. */
export interface UserSession {
  /**
   * The session's public handle: stable for its life, derived from its stored key (never the id in the cookie,
   * nor the key), so it can be shown to the user and handed back to `store.destroyByHandle`.
   */
  readonly handle: string;
  /** The session data. */
  readonly session: JsonObject;
  /** When it expires. */
  readonly expiresAt: Date;
  /** When it was created; `undefined` where the storage does not keep it (a table without `created_at`). */
  readonly createdAt: Date | undefined;
  /**
   * When a request last wrote it: a change of its data, or a move of its expiry (at most every `touchAfter`, so
   * read-only requests stay write-free and this lags by up to that much); `undefined` where not kept.
   */
  readonly lastSeenAt: Date | undefined;
  /** True for the session whose id was given as `current`. */
  readonly current: boolean;
  /** The client recorded at its creation (`recordClient`), else `undefined`. */
  readonly client: SessionClient | undefined;
}

/** Options of `store.listByUser`. */
export interface ListByUserOptions {
  /** The id of the session making the request: its entry says `current: true`. */
  current?: string | undefined;
}

/** Options of `store.destroyByUser`. */
export interface DestroyByUserOptions {
  /** The id of a session to spare ("log out my other devices"). */
  except?: string | undefined;
}

/** A session named by a lifecycle event. */
export interface SessionEvent {
  /** Its public handle, as `listByUser` gives it (never its id, nor its stored key). */
  readonly handle: string;
  /** The user it belongs (or belonged) to, where the store knows it (`userIdKey`); else `undefined`. */
  readonly userId: string | undefined;
}

/** A session destroyed, and by what. */
export interface DestroyedEvent extends SessionEvent {
  /** `destroy`: `store.destroy` (a logout, a regenerate); `handle`: `destroyByHandle`; `user`: `destroyByUser`. */
  readonly reason: 'destroy' | 'handle' | 'user';
}

/** A session moved to a new id ({@link SessionEvent.handle} is the new one's). */
export interface RotatedEvent extends SessionEvent {
  /** The handle it had under its old id. */
  readonly previous: string;
}

/** Expired sessions a purge removed. */
export interface ExpiredEvent {
  /** How many (a purge removes them in batches, by the storage's count: one event per purge). */
  readonly count: number;
}

/**
 * Events of the store (never `error`, so an unlistened store cannot crash the process). The lifecycle events
 * (`created`, `destroyed`, `expired`, `evicted`, `rotated`) are emitted once what they tell is stored; a listener
 * must not throw (its error would reject the call that emitted it).
 */
export interface SessionStoreEvents {
  /** The database answers again after a `disconnect`. */
  connect: [];
  /** The database could not be reached; calls fail fast with `ERR_UNAVAILABLE` until `connect`. */
  disconnect: [error: SessionStoreError];
  /** A background purge finished, having removed this many expired sessions. */
  purge: [removed: number];
  /** A background purge failed; the next one will try again. */
  purgeError: [error: SessionStoreError];
  /** A session was stored for the first time. */
  created: [event: SessionEvent];
  /** A session was destroyed (as listed just before, for `destroyByUser`). */
  destroyed: [event: DestroyedEvent];
  /** A purge removed expired sessions (Redis expires them itself: never there). */
  expired: [event: ExpiredEvent];
  /** A session was destroyed because its user had more than `maxSessionsPerUser` (the least recently used go). */
  evicted: [event: SessionEvent];
  /** A session moved to a new id, its data kept (`rotate`). */
  rotated: [event: RotatedEvent];
}

/** The names of {@link SessionStoreEvents}, for adapters that pass them on. */
export const SESSION_STORE_EVENTS = [
  'connect',
  'disconnect',
  'purge',
  'purgeError',
  'created',
  'destroyed',
  'expired',
  'evicted',
  'rotated',
] as const satisfies readonly (keyof SessionStoreEvents)[];

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
