/**
 * The store's link to its backend: opening it, inspecting the storage once,
 * and running each operation with the retries every backend gets alike (a
 * lost connection, a conflict the database rolled back), reporting an
 * unreachable database once and probing until it answers again.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { SessionStoreError, toStoreError } from '../errors.js';
import type { BackendOpener, ReadyBackend, SessionBackend, StorageNeeds } from './backend.js';
import type { LockingMode } from './options.js';
import type { SizeLimit } from './size-limit.js';
import type { RetryCount } from './tracing.js';

/** Runs of an operation the database rolled back for a lock conflict (deadlock, lock timeout), before giving up, unless the backend asks for more. */
const CONFLICT_ATTEMPTS = 5;
/** The longest random pause, in ms, before running again an operation rolled back for a conflict. */
const CONFLICT_PAUSE_CAP_MS = 100;
/** How often, in ms, an unreachable database is probed. */
const PROBE_INTERVAL_MS = 1000;

/** The backend, ready, with the limit its storage puts on a session's size. */
export interface Prepared extends SizeLimit {
  /** The open backend: its error classification. */
  readonly backend: SessionBackend;
  readonly storage: ReadyBackend;
}

/** What the link tells the store. */
export interface LinkEvents {
  /** The database answers again after a `disconnect`. */
  connect(): void;
  /** The database could not be reached. */
  disconnect(error: SessionStoreError): void;
  /** An operation succeeded. */
  succeeded(): void;
}

/** What the link needs of the store's options. */
export interface LinkSetup {
  readonly opener: BackendOpener;
  readonly needs: (createIfMissing: boolean) => StorageNeeds;
  readonly createIfMissing: boolean;
  readonly maxSize: number;
  readonly events: LinkEvents;
}

/** Opens the backend once, prepares its storage once, and runs operations on it. */
export class BackendLink {
  readonly #setup: LinkSetup;
  #backend: Promise<SessionBackend> | undefined;
  #prepared: Promise<Prepared> | undefined;
  /** The same once it has resolved: the hot path skips a promise. */
  #ready: Prepared | undefined;
  #closed = false;
  /** Set while the database cannot be reached: calls fail fast and a probe looks for its return. */
  #unavailable: { readonly since: Date; readonly error: unknown; readonly message: string | undefined; readonly probe: NodeJS.Timeout } | undefined;

  constructor(setup: LinkSetup) {
    this.#setup = setup;
  }

  /** True while the database cannot be reached. */
  get unavailable(): boolean {
    return this.#unavailable !== undefined;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** The locking mode in force, once the storage has been inspected. */
  get locking(): LockingMode | undefined {
    return this.#ready?.storage.locking;
  }

  #closedError(): SessionStoreError {
    return new SessionStoreError('ERR_STORE_CLOSED', 'the session store is closed');
  }

  #open(): Promise<SessionBackend> {
    if (this.#closed) return Promise.reject(this.#closedError());
    this.#backend ??= this.#setup.opener.open().catch((error: unknown) => {
      this.#backend = undefined;
      throw error;
    });
    return this.#backend;
  }

  /** Connects and inspects the storage, once (again after a failure: the database may only have been down for a moment). */
  prepare(): Promise<Prepared> {
    if (this.#closed) return Promise.reject(this.#closedError());
    this.#prepared ??= (async () => {
      const backend = await this.#open();
      const { needs, createIfMissing, maxSize, opener } = this.#setup;
      const storage = await backend.prepare(needs(createIfMissing));
      if (storage.locking === 'pessimistic' && storage.updateLocked === undefined) {
        throw new SessionStoreError('ERR_INVALID_OPTION', `locking "pessimistic" needs a backend that locks sessions; ${opener.name} does not`);
      }
      const { capacity } = storage;
      const capped = capacity !== undefined && capacity.bytes < maxSize;
      return (this.#ready = { backend, storage, sizeLimit: capped ? capacity.bytes : maxSize, limitedBy: capped ? capacity.limitedBy : undefined });
    })().catch(async (error: unknown) => {
      this.#prepared = undefined;
      throw await this.#failure(error, `preparing the ${this.#setup.opener.storageName}`);
    });
    return this.#prepared;
  }

  /** Creates the storage if it does not exist, then inspects it again. */
  async createStorage(): Promise<void> {
    try {
      await (await this.#open()).create?.(this.#setup.needs(true));
      this.#prepared = undefined;
      this.#ready = undefined;
      await this.prepare();
    } catch (error) {
      throw await this.#failure(error, `creating the ${this.#setup.opener.storageName}`);
    }
  }

  /** A connection failure marks the backend unavailable; anything else becomes a store error. */
  async #failure(error: unknown, doing: string): Promise<SessionStoreError> {
    const backend = await this.#backend?.catch(() => undefined);
    if (backend === undefined) return toStoreError(error, doing);
    return this.#connectionError(backend, error) ?? (backend.isConnectionError(error) ? this.#markUnavailable(backend, error) : toStoreError(error, doing));
  }

  /**
   * A failure to connect, said so that a person can fix it: a refused login
   * is `ERR_LOGIN_FAILED` (retrying will not help), a database that does not
   * answer makes the store unavailable. `undefined` for any other error.
   */
  #connectionError(backend: SessionBackend, error: unknown): SessionStoreError | undefined {
    const failure = backend.describeConnectionFailure?.(error);
    if (failure === undefined) return undefined;
    if (failure.kind === 'login') return new SessionStoreError('ERR_LOGIN_FAILED', failure.message, { cause: error });
    return this.#markUnavailable(backend, error, failure.message);
  }

  /**
   * Runs one store operation. An operation that lost its connection is run
   * again on another, and one the database rolled back to break a deadlock
   * is run again after a pause (every operation is idempotent: a delta
   * applied twice gives the same session). A database that cannot be reached
   * is reported as `ERR_UNAVAILABLE`, and later calls fail fast until it
   * answers again. `count`, when given, counts the runs again.
   */
  async call<T>(doing: string, operation: (prepared: Prepared) => Promise<T>, count?: RetryCount): Promise<T> {
    try {
      if (this.#unavailable !== undefined) throw this.#unavailableError(this.#unavailable.error, this.#unavailable.since, this.#unavailable.message);
      const prepared = this.#ready ?? (await this.prepare());
      const { backend } = prepared;
      let lostConnections = 0;
      let conflicts = 0;
      for (;;) {
        try {
          const result = await operation(prepared);
          this.#setup.events.succeeded();
          return result;
        } catch (error) {
          if (backend.isTransientConflict?.(error) === true && ++conflicts < (backend.conflictAttempts ?? CONFLICT_ATTEMPTS)) {
            // The database rolled the work back to break a deadlock: run it again after a short random pause,
            // longer each time (up to a cap), so writers that keep colliding spread out.
            if (count !== undefined) count.conflicts++;
            await sleep(Math.random() * Math.min(10 * conflicts, CONFLICT_PAUSE_CAP_MS));
            continue;
          }
          // A refused login is said as such, whatever the driver calls it.
          if (!backend.isConnectionError(error)) throw this.#connectionError(backend, error) ?? error;
          // A connection the server dropped is discarded; the next attempt takes another, up to a whole pool's worth.
          // One that cannot even be opened means the database is unreachable: no point in trying again now.
          if (backend.isConnectFailure?.(error) === true || ++lostConnections > (backend.connectionAttempts ?? 1)) {
            throw this.#connectionError(backend, error) ?? this.#markUnavailable(backend, error);
          }
          if (count !== undefined) count.retries++;
        }
      }
    } catch (error) {
      throw toStoreError(error, doing);
    }
  }

  #unavailableError(cause: unknown, since?: Date, message?: string): SessionStoreError {
    const detail = message ?? (cause instanceof Error ? cause.message : String(cause));
    const when = since === undefined ? '' : ` since ${since.toISOString()}`;
    return new SessionStoreError('ERR_UNAVAILABLE', `the database cannot be reached${when}: ${detail}; the store keeps checking and recovers by itself`, {
      cause,
    });
  }

  /** Enters the unavailable state (once), tells `disconnect` and probes until the database answers. */
  #markUnavailable(backend: SessionBackend, cause: unknown, message?: string): SessionStoreError {
    const error = this.#unavailableError(cause, undefined, message);
    if (this.#unavailable !== undefined || this.#closed) return error;
    const probe = setInterval(() => {
      backend.ping().then(
        () => {
          if (this.#unavailable?.probe !== probe) return;
          clearInterval(probe);
          this.#unavailable = undefined;
          this.#setup.events.connect();
        },
        () => undefined,
      );
    }, PROBE_INTERVAL_MS).unref();
    this.#unavailable = { since: new Date(), error: cause, message, probe };
    this.#setup.events.disconnect(error);
    return error;
  }

  /** Stops probing and refuses further calls; resolves to the backend to close, if one was opened. */
  shut(): Promise<SessionBackend> | undefined {
    this.#closed = true;
    if (this.#unavailable !== undefined) clearInterval(this.#unavailable.probe);
    this.#unavailable = undefined;
    const opened = this.#backend;
    this.#backend = undefined;
    this.#prepared = undefined;
    this.#ready = undefined;
    return opened;
  }
}
