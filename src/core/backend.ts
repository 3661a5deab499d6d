/**
 * The backend port: what the store asks of a storage backend. The core
 * defines it and never names a backend; each backend folder implements it
 * (`src/backends/<name>/`), and the composition root (`src/store.ts`) hands
 * the store an opener for the one the options ask for.
 *
 * Keys are the stored ids (hashes by default). Times are epoch milliseconds.
 * Writes take one context object, so two instants can never be swapped by
 * position.
 */
import type { SessionDelta } from './delta.js';
import { parseStoredSession, type JsonObject } from './json.js';
import type { LockingMode } from './options.js';
import type { SessionStats, StorageReport } from './store-types.js';

export type { StorageReport } from './store-types.js';

/** A session's data as read back from storage. */
export interface StoredData {
  /** The stored JSON text, or `null` when the stored data is NULL (a corrupt row). */
  readonly text: string | null;
  /**
   * Where the stored text is not the whole session (the storage keeps more,
   * such as changes still to apply to it): builds the session, throwing
   * `ERR_CORRUPT_ROW` when it cannot be read. Absent: the session is `text`.
   * `parse` reads a stored document (the core may give back a parse it kept:
   * the result is shared, and must not be changed).
   */
  readonly decode?: ((parse: (text: string | null) => JsonObject) => JsonObject) | undefined;
  /** With `decode`: an upper bound of the length of the session's JSON text. */
  readonly decodedLength?: number | undefined;
}

/** A session as read back from storage. */
export interface StoredSession extends StoredData {
  /** Expiry, epoch milliseconds. */
  readonly expiresAt: number;
  /** The stored version (`lock_version`), or `null` when the storage keeps none. */
  readonly version: number | null;
  /**
   * The backend's own note of what this read saw, opaque to the core: kept
   * with the request's state and handed back with its next delta
   * ({@link DeltaWrite.token}).
   */
  readonly token?: unknown;
  /**
   * When the session was first stored, epoch milliseconds: read where the storage keeps it and the store asks for it
   * ({@link StorageNeeds.createdAt}); `undefined` where unknown.
   */
  readonly createdAt?: number | undefined;
}

/** A session of a user, with its stored key and what the storage knows of its life. */
export interface StoredUserSession extends StoredSession {
  readonly key: string;
  /** When the session was first stored, epoch milliseconds, where the storage keeps it. */
  readonly createdAt?: number | undefined;
  /** When a write of its data or expiry last moved it (at most every `touchAfter`), epoch milliseconds, where kept. */
  readonly lastSeenAt?: number | undefined;
  /** The client recorded at its creation ({@link DocumentWrite.client}), as stored; `undefined` where none. */
  readonly client?: string | undefined;
}

/** A new value for the user-id index; `undefined` leaves it as it is. */
export type UserIdWrite = string | null | undefined;

/** What every write knows. */
export interface WriteContext {
  /** The stored id. */
  readonly key: string;
  /** The clock reading the write is made at: a row expired by then is gone. */
  readonly now: number;
  /** The session's new expiry. */
  readonly expiresAt: number;
  /** The user-id index's new value. */
  readonly userId: UserIdWrite;
}

/** A whole document to store. */
export interface DocumentWrite extends WriteContext {
  readonly text: string;
  /**
   * What the application recorded of the client at the session's creation (JSON text of `{ userAgent, ip }`),
   * kept beside the session and listed by {@link ReadyBackend.listByUser}; `undefined`: none, or keep what is stored.
   */
  readonly client?: string | undefined;
}

/** A delta to merge into the latest stored session, by a backend that can do so in one step. */
export interface DeltaWrite extends WriteContext {
  readonly delta: SessionDelta;
  /** The delta as JSON text (`deltaToJson`), written out once. */
  readonly encoded: string;
  /** What the backend noted at this request's load or last save ({@link StoredSession.token}, {@link SavedDelta.token}). */
  readonly token: unknown;
  /** The session as the request last saw it (the one `token` was noted for), when the store has it at hand. Never changed. */
  readonly base: JsonObject | undefined;
  /** At least the length of `base`'s JSON text. */
  readonly baseLength: number;
}

/** A delta saved. */
export interface SavedDelta {
  /** The backend's note for the request's next save. */
  readonly token?: unknown;
  /**
   * The save also wrote the document with the changes kept apart folded in (where the storage keeps them, and
   * if they were still those the request had). Reported on the `save` channel.
   */
  readonly folded?: boolean;
}

/** A document to store only if the stored version is still `version`. */
export interface VersionedWrite extends DocumentWrite {
  readonly version: number;
}

/** What a merge under the row lock writes. */
export interface MergedDocument {
  readonly text: string;
  readonly userId: UserIdWrite;
}

/** A merge run against the stored session while it is locked. */
export interface LockedMerge {
  readonly key: string;
  readonly now: number;
  readonly expiresAt: number;
  /** Computes what to write from what is stored; throwing writes nothing. */
  readonly merge: (stored: StoredSession) => MergedDocument;
}

/** A move of a live session's expiry, only if it is currently before `movedBefore`. */
export interface ExpiryMove {
  readonly key: string;
  readonly now: number;
  readonly expiresAt: number;
  readonly movedBefore: number;
}

/** A session's move to another key ({@link ReadyBackend.rename}). */
export interface KeyMove {
  readonly fromKey: string;
  readonly toKey: string;
  readonly now: number;
}

/** One run of removing expired sessions. */
export interface PurgeRun {
  /** Sessions that expired before this instant are removed. */
  readonly now: number;
  /** Sessions removed per statement. */
  readonly batchSize: number;
  /** Called after each batch with the number removed so far. */
  readonly onProgress?: ((removed: number) => void) | undefined;
}

/** Live and expired sessions in storage. */
export type SessionCounts = SessionStats;

/** What the store needs of its storage, decided by its options. */
export interface StorageNeeds {
  /** The locking mode asked for; `undefined`: the backend picks its default. */
  readonly locking: LockingMode | undefined;
  /** A user-id index must be kept (`userIdKey`). */
  readonly userId: boolean;
  /** Create the storage (a table) when it is missing. */
  readonly createIfMissing: boolean;
  /** Loads must say when each session was created ({@link StoredSession.createdAt}: `absoluteTimeout`). @default false */
  readonly createdAt?: boolean | undefined;
  /** Whole writes may carry the client ({@link DocumentWrite.client}: `recordClient`). @default false */
  readonly client?: boolean | undefined;
}

/** What limits the size of a stored session below the store's `maxSize`. */
export interface StorageCapacity {
  readonly bytes: number;
  /** Said in the error: "over the N bytes that <limitedBy> allows". */
  readonly limitedBy: string;
}

/**
 * A backend whose storage has been inspected: every session operation is
 * here, and only here, so none can run before the inspection.
 *
 * A key-value storage supplies the required members: load, whole writes,
 * compare-and-swap, expiry, destroy, listing. The store derives the rest and
 * owns every retry (`./save-paths.ts`); the optional members are faster or
 * stronger paths for storages that have them.
 */
export interface ReadyBackend {
  /** The locking mode in force (`pessimistic` only with {@link updateLocked}). */
  readonly locking: LockingMode;
  /** Set when the storage takes less than the store's `maxSize`. */
  readonly capacity?: StorageCapacity | undefined;
  /** One round trip: the live session, or `null` when missing or expired. */
  load(key: string, now: number): Promise<StoredSession | null>;
  /** Stores the whole document, replacing any session with that key. */
  upsert(write: DocumentWrite): Promise<void>;
  /**
   * Writes only if the stored version is still `write.version` and the
   * session is live. Resolves `true` when written; `false` when not (the
   * version moved on, or the session is gone: the store reads it again to
   * tell); or, when the attempt itself told the backend, the session stored
   * now (the store merges into it without a read).
   */
  compareAndSwap(write: VersionedWrite): Promise<boolean | StoredSession>;
  /** Moves a live session's expiry when it is currently before `movedBefore`. */
  extendExpiry(move: ExpiryMove): Promise<void>;
  destroy(key: string): Promise<void>;
  /** The live sessions of a user. */
  listByUser(userId: string, now: number): Promise<StoredUserSession[]>;
  /** The data of every live session. */
  all(now: number): Promise<StoredData[]>;
  /** Deletes every session. */
  clear(): Promise<void>;
  /**
   * Merges the delta into the latest stored session in one atomic step
   * (`atomic` mode). Resolves `null` when the session is gone (destroyed or
   * expired): a save must never bring a destroyed session back.
   * @default a compare-and-swap from the state the request loaded, merged again on a conflict
   */
  applyDelta?(write: DeltaWrite): Promise<SavedDelta | null>;
  /**
   * Stores the whole document only when no live session has its key (an
   * expired one is replaced), in one atomic step: a session brought over
   * from another store is written once, whoever copies it first, and never
   * over what a request has saved since. Resolves `true` when written.
   * @default none: sessions cannot be brought over from another store
   */
  insertIfAbsent?(write: DocumentWrite): Promise<boolean>;
  /**
   * Locks the live session, merges, writes. `false` (nothing written) when
   * gone; a throwing merge writes nothing.
   * @default none: no `pessimistic` mode, and compare-and-swap retries longer under contention
   */
  updateLocked?(write: LockedMerge): Promise<boolean>;
  /**
   * Deletes every session of a user but the one stored under `exceptKey` (when given); resolves to how many.
   * @default each session {@link listByUser} finds, destroyed
   */
  destroyByUser?(userId: string, exceptKey?: string): Promise<number>;
  /**
   * Moves the live session stored under `fromKey` to `toKey` (a key nothing is stored under), with its data,
   * expiry, user and creation time, including every write committed to it before; once it resolves, nothing is
   * stored under `fromKey` and a write to it finds the session gone. Resolves to `false` when there was no live
   * session under `fromKey`.
   * @default a load, a whole write under `toKey`, a destroy of `fromKey` (a change committed in between is lost, and the creation time starts again)
   */
  rename?(move: KeyMove): Promise<boolean>;
  /**
   * Deletes the session stored under `key` only if it belongs to `userId`; resolves to whether it did.
   * @default {@link destroy}, once {@link listByUser} has found it among the user's
   */
  destroyOfUser?(key: string, userId: string): Promise<boolean>;
  /**
   * Number of live sessions.
   * @default the length of {@link all}
   */
  count?(now: number): Promise<number>;
  /**
   * Removes expired sessions in batches, one process at a time. Resolves to
   * the number removed, or `null` when another process is purging.
   * @default nothing to do: the storage drops expired sessions itself
   */
  purge?(run: PurgeRun): Promise<number | null>;
  /**
   * Live and expired sessions.
   * @default {@link count} live, none expired
   */
  stats?(now: number): Promise<SessionCounts>;
  /**
   * What the storage can tell of itself beyond its counts.
   * @default nothing more
   */
  report?(now: number, topUsers: number): Promise<StorageReport>;
}

/** Why a connection could not be made, said so that a person can fix it. */
export interface ConnectionFailure {
  /**
   * `login`: the server answered and refused (credentials, unknown database,
   * permission): retrying will not help. `unreachable`: nothing answered
   * (refused, timed out, unknown host): the store waits for it to come back.
   */
  readonly kind: 'login' | 'unreachable';
  /** What failed, naming the user, host and database (never the password). */
  readonly message: string;
}

/** A backend that is open (connections, a file) but whose storage has not been inspected yet. */
export interface SessionBackend {
  /** Inspects the storage (creating it when asked and missing) and checks it serves `needs`. */
  prepare(needs: StorageNeeds): Promise<ReadyBackend>;
  /** One cheap round trip: resolves when the backend answers. */
  ping(): Promise<void>;
  /** True when `error` means the connection was lost or could not be made (the operation itself was fine). */
  isConnectionError(error: unknown): boolean;
  /** Ends what the backend opened (never a connection the application handed over). */
  close(): Promise<void>;
  /**
   * How many lost connections an operation may meet in a row before the backend counts as unreachable (a pool's worth).
   * @default 1
   */
  readonly connectionAttempts?: number | undefined;
  /**
   * How many times in all an operation rolled back for a conflict ({@link isTransientConflict}) is run before its
   * error is given up: a multi-primary cluster (Galera), whose certification conflicts are routine under
   * concurrent writes, asks for more than a single server.
   * @default the store's, 5
   */
  readonly conflictAttempts?: number | undefined;
  /**
   * Creates the storage if it is missing.
   * @default nothing to create
   */
  create?(needs: StorageNeeds): Promise<void>;
  /**
   * True when `error` came from opening a connection: the backend is unreachable.
   * @default never
   */
  isConnectFailure?(error: unknown): boolean;
  /**
   * What a failure to connect means, or `undefined` when `error` is not one.
   * @default `undefined`
   */
  describeConnectionFailure?(error: unknown): ConnectionFailure | undefined;
  /**
   * True when `error` is a conflict the backend resolved by rolling back (a deadlock, a lock timeout): run it again.
   * @default never
   */
  isTransientConflict?(error: unknown): boolean;
}

/** How the store reaches its backend: its name, known at once, and how to open it. */
export interface BackendOpener {
  /** `postgres`, `mysql`, `sqlite`, ... */
  readonly name: string;
  /** Where, for messages: `table sessions`. */
  readonly storageName: string;
  /** The table or key prefix the sessions are in (`sessions`, `auth.sessions`), for traces. */
  readonly collection?: string | undefined;
  open(): Promise<SessionBackend>;
}

/**
 * A stored session as the application sees it: what the backend decodes, or
 * else the stored text.
 *
 * @throws {SessionStoreError} `ERR_CORRUPT_ROW` when it cannot be read.
 */
export function sessionOfStored(row: StoredData): JsonObject {
  return row.decode === undefined ? parseStoredSession(row.text) : row.decode(parseStoredSession);
}
