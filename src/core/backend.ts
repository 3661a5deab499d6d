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
import type { LockingMode } from './options.js';

/** A session's data as read back from storage. */
export interface StoredData {
  /** The stored JSON text, or `null` when the stored data is NULL (a corrupt row). */
  readonly text: string | null;
  /**
   * Deltas saved after `text` was written, still to be applied to it, in the
   * text of `./pending-changes.ts`; `null` (or absent) when there are none,
   * or where the storage keeps none.
   */
  readonly changes?: string | null | undefined;
}

/** A session as read back from storage. */
export interface StoredSession extends StoredData {
  /** Expiry, epoch milliseconds. */
  readonly expiresAt: number;
  /** The stored version (`lock_version`), or `null` when the storage keeps none. */
  readonly version: number | null;
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
}

/** A delta to merge into the latest stored document. */
export interface DeltaWrite extends WriteContext {
  readonly delta: SessionDelta;
  /**
   * Where the storage keeps pending changes (`keepsChanges`): what to append
   * to them (`./pending-changes.ts`), the marker that starts them should
   * there be none, and, when the request holds the text of those stored
   * (`fold.changes`) and the document they make (`fold.text`), a fold: the
   * backend writes that document in the same statement and keeps only the
   * changes appended after that text, if the stored changes still start with
   * it (else it only appends). `documentLength`: how long the stored document
   * is, as far as the request knows (a storage may lay out the changes by it).
   */
  readonly append:
    | {
        readonly entry: string;
        readonly marker: string;
        readonly documentLength: number;
        readonly fold: { readonly changes: string; readonly text: string } | undefined;
      }
    | undefined;
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
export interface SessionCounts {
  readonly live: number;
  readonly expired: number;
}

/** What the store needs of its storage, decided by its options. */
export interface StorageNeeds {
  /** The locking mode asked for; `undefined`: the backend picks its default. */
  readonly locking: LockingMode | undefined;
  /** A user-id index must be kept (`userIdKey`). */
  readonly userId: boolean;
  /** Create the storage (a table) when it is missing. */
  readonly createIfMissing: boolean;
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
 */
export interface ReadyBackend {
  /** The locking mode in force. */
  readonly locking: LockingMode;
  /** Set when the storage takes less than the store's `maxSize`. */
  readonly capacity: StorageCapacity | undefined;
  /**
   * True when atomic saves append to the session's pending changes
   * (`./pending-changes.ts`) rather than merge into its document: the store
   * then keeps track of how long they grow, and has them folded in.
   */
  readonly keepsChanges?: boolean;
  /** One round trip: the live session, or `null` when missing or expired. */
  load(key: string, now: number): Promise<StoredSession | null>;
  /** Stores the whole document, replacing any session with that key. */
  upsert(write: DocumentWrite): Promise<void>;
  /**
   * Merges the delta into the latest stored document in one atomic step.
   * Resolves `false` when the session is gone (destroyed or expired): a save
   * must never bring a destroyed session back.
   */
  applyDelta(write: DeltaWrite): Promise<boolean>;
  /** Writes only if the stored version is still `write.version`; `false` on a miss or when gone. */
  compareAndSwap(write: VersionedWrite): Promise<boolean>;
  /** Locks the live session, merges, writes. `false` (nothing written) when gone; a throwing merge writes nothing. */
  updateLocked(write: LockedMerge): Promise<boolean>;
  /** Moves a live session's expiry when it is currently before `movedBefore`. */
  extendExpiry(move: ExpiryMove): Promise<void>;
  destroy(key: string): Promise<void>;
  /** Deletes every session of a user; resolves to how many. */
  destroyByUser(userId: string): Promise<number>;
  /** The live sessions of a user. */
  listByUser(userId: string, now: number): Promise<StoredSession[]>;
  /** The data of every live session. */
  all(now: number): Promise<StoredData[]>;
  /** Number of live sessions. */
  count(now: number): Promise<number>;
  /** Deletes every session. */
  clear(): Promise<void>;
  /**
   * Removes expired sessions in batches, one process at a time. Resolves to
   * the number removed, or `null` when another process is purging.
   */
  purge(run: PurgeRun): Promise<number | null>;
  stats(now: number): Promise<SessionCounts>;
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
  /** How many lost connections an operation may meet in a row before the backend counts as unreachable (a pool's worth). */
  readonly connectionAttempts: number;
  /**
   * How many times in all an operation rolled back for a conflict ({@link isTransientConflict}) is run before its
   * error is given up: a multi-primary cluster (Galera), whose certification conflicts are routine under
   * concurrent writes, asks for more than a single server. `undefined`: the store's default.
   */
  readonly conflictAttempts?: number | undefined;
  /** Inspects the storage (creating it when asked and missing) and checks it serves `needs`. */
  prepare(needs: StorageNeeds): Promise<ReadyBackend>;
  /** Creates the storage if it is missing. */
  create(needs: StorageNeeds): Promise<void>;
  /** One cheap round trip: resolves when the backend answers. */
  ping(): Promise<void>;
  /** True when `error` means the connection was lost or could not be made (the operation itself was fine). */
  isConnectionError(error: unknown): boolean;
  /** True when `error` came from opening a connection: the backend is unreachable. */
  isConnectFailure(error: unknown): boolean;
  /** What a failure to connect means, or `undefined` when `error` is not one. */
  describeConnectionFailure(error: unknown): ConnectionFailure | undefined;
  /** True when `error` is a conflict the backend resolved by rolling back (a deadlock, a lock timeout): run it again. */
  isTransientConflict(error: unknown): boolean;
  /** Ends what the backend opened (never a connection the application handed over). */
  close(): Promise<void>;
}

/** How the store reaches its backend: its name, known at once, and how to open it. */
export interface BackendOpener {
  /** `postgres`, `mysql`, `sqlite`, ... */
  readonly name: string;
  /** Where, for messages: `table sessions`. */
  readonly storageName: string;
  open(): Promise<SessionBackend>;
}
