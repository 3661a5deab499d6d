/**
 * The store itself, free of any backend and of any web framework: snapshot,
 * delta, merge, expiry and the three locking modes, over the backend port
 * (`./backend.ts`). Framework adapters open a {@link SessionHandle} per
 * request and tell the store their session format (`./session-format.ts`).
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { SessionStoreError, toStoreError } from '../errors.js';
import { Autopurge } from './autopurge.js';
import type { BackendOpener, ReadyBackend, SessionBackend, SessionCounts, StorageNeeds, StoredData, UserIdWrite } from './backend.js';
import { applyDelta, deltaToJson, diffLive, isEmptyDelta, type SessionDelta } from './delta.js';
import { cloneJson, isJsonObject, JsonWalk, parseStoredSession, toJsonValue, type JsonObject, type JsonValue } from './json.js';
import { changeEntry, changesMarker, shouldFold, storedSession } from './pending-changes.js';
import type { LockingMode, ResolvedStoreOptions } from './options.js';
import type { LoadedSession, LoadedState, SaveOptions } from './loaded-state.js';
import { SessionHandle } from './session-handle.js';
import { PLAIN_FORMAT, type SessionFormat } from './session-format.js';
import { assertSessionId, hashSessionId } from './session-id.js';
import { userIdAfterDelta, userIdOf } from './user-id.js';

export type { LoadedSession, LoadedState, SaveOptions } from './loaded-state.js';

/** A session of one user, from {@link SessionStoreCore.listByUser}. */
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

/** Options of {@link SessionStoreCore.purge}. */
export interface PurgeOptions {
  /** Rows deleted per statement. @default the autopurge batchSize, 1000 */
  batchSize?: number;
  /** Called after each batch with the number removed so far. */
  onProgress?: (removed: number) => void;
}

/** Live and expired sessions in the table, from {@link SessionStoreCore.stats}. */
export type SessionStats = SessionCounts;

/** Runs of an operation the database rolled back for a lock conflict (deadlock, lock timeout), before giving up, unless the backend asks for more. */
const CONFLICT_ATTEMPTS = 5;
/** The longest random pause, in ms, before running again an operation rolled back for a conflict. */
const CONFLICT_PAUSE_CAP_MS = 100;
/** How often, in ms, an unreachable database is probed. */
const PROBE_INTERVAL_MS = 1000;
/** Attempts of compare-and-swap before an optimistic save takes the row lock instead. */
const OPTIMISTIC_ATTEMPTS = 8;

/** The size limit in force and, when the storage sets it below `maxSize`, why. */
interface SizeLimit {
  readonly sizeLimit: number;
  readonly limitedBy: string | undefined;
}

/** The backend, ready, with the limit its storage puts on a session's size. */
interface Prepared extends SizeLimit {
  /** The open backend: its error classification. */
  readonly backend: SessionBackend;
  readonly storage: ReadyBackend;
}

/** The options the core runs on, and the backend it runs on. */
export interface CoreSetup {
  readonly options: ResolvedStoreOptions;
  readonly backend: BackendOpener;
  /** The session format of the adapter using the store. @default no bookkeeping, expiry from `ttl` */
  readonly format?: SessionFormat | undefined;
}

/**
 * A session store that saves each request's delta into the latest stored
 * session, so overlapping requests never erase each other's changes.
 *
 * Promise-based and framework-neutral. Users construct `SessionStore` from
 * the package entry point; framework adapters wrap it.
 */
export class SessionStoreCore extends EventEmitter<SessionStoreEvents> {
  /** The options as validated, with defaults filled in. */
  readonly options: ResolvedStoreOptions;
  readonly #opener: BackendOpener;
  readonly #format: SessionFormat;
  #backend: Promise<SessionBackend> | undefined;
  #prepared: Promise<Prepared> | undefined;
  /** The same once it has resolved: the hot path skips a promise. */
  #ready: Prepared | undefined;
  #closed = false;
  /** Set while the database cannot be reached: calls fail fast and a probe looks for its return. */
  #unavailable: { readonly since: Date; readonly error: unknown; readonly message: string | undefined; readonly probe: NodeJS.Timeout } | undefined;
  /** The purge running in this process, if any: purges are single-flight. */
  #purging: Promise<number> | undefined;
  readonly #autopurge: Autopurge | undefined;

  /** @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the offending option. */
  constructor({ options, backend, format = PLAIN_FORMAT }: CoreSetup) {
    super();
    this.options = options;
    this.#opener = backend;
    this.#format = format;
    this.#autopurge = options.autopurge === undefined ? undefined : new Autopurge(options.autopurge, () => this.#purgeInBackground());
  }

  /** The backend in use: `postgres`, `mysql`, `sqlite`, ... */
  get dialect(): string {
    return this.#opener.name;
  }

  /** The session format sessions are saved in (the adapter's). */
  get format(): SessionFormat {
    return this.#format;
  }

  /** The locking mode in force, once the storage has been inspected (see {@link SessionStoreCore.ready}). */
  async lockingMode(): Promise<LockingMode> {
    return (await this.#prepare()).storage.locking;
  }

  /** Connects and inspects the storage; calls do this on their own, this only surfaces problems early. */
  async ready(): Promise<void> {
    await this.#prepare();
  }

  #open(): Promise<SessionBackend> {
    if (this.#closed) return Promise.reject(new SessionStoreError('ERR_STORE_CLOSED', 'the session store is closed'));
    this.#backend ??= this.#opener.open().catch((error: unknown) => {
      this.#backend = undefined;
      throw error;
    });
    return this.#backend;
  }

  #needs(createIfMissing: boolean): StorageNeeds {
    return { locking: this.options.locking, userId: this.options.userIdPath !== undefined, createIfMissing };
  }

  #prepare(): Promise<Prepared> {
    if (this.#closed) return Promise.reject(new SessionStoreError('ERR_STORE_CLOSED', 'the session store is closed'));
    this.#prepared ??= (async () => {
      const backend = await this.#open();
      const storage = await backend.prepare(this.#needs(this.options.createTable));
      const { capacity } = storage;
      const capped = capacity !== undefined && capacity.bytes < this.options.maxSize;
      return (this.#ready = {
        backend,
        storage,
        sizeLimit: capped ? capacity.bytes : this.options.maxSize,
        limitedBy: capped ? capacity.limitedBy : undefined,
      });
    })().catch(async (error: unknown) => {
      // Retry on the next call: the database may only have been down for a moment.
      this.#prepared = undefined;
      throw await this.#failure(error, `preparing the ${this.#opener.storageName}`);
    });
    return this.#prepared;
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
    const failure = backend.describeConnectionFailure(error);
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
   * answers again.
   */
  async #call<T>(doing: string, operation: (prepared: Prepared) => Promise<T>): Promise<T> {
    try {
      if (this.#unavailable !== undefined) throw this.#unavailableError(this.#unavailable.error, this.#unavailable.since, this.#unavailable.message);
      const prepared = this.#ready ?? (await this.#prepare());
      const { backend } = prepared;
      let lostConnections = 0;
      let conflicts = 0;
      for (;;) {
        try {
          const result = await operation(prepared);
          this.#autopurge?.maybeStart(this.#purging !== undefined);
          return result;
        } catch (error) {
          if (backend.isTransientConflict(error) && ++conflicts < (backend.conflictAttempts ?? CONFLICT_ATTEMPTS)) {
            // The database rolled the work back to break a deadlock: run it again after a short random pause,
            // longer each time (up to a cap), so writers that keep colliding spread out.
            await sleep(Math.random() * Math.min(10 * conflicts, CONFLICT_PAUSE_CAP_MS));
            continue;
          }
          // A refused login is said as such, whatever the driver calls it.
          if (!backend.isConnectionError(error)) throw this.#connectionError(backend, error) ?? error;
          // A connection the server dropped is discarded; the next attempt takes another, up to a whole pool's worth.
          // One that cannot even be opened means the database is unreachable: no point in trying again now.
          if (backend.isConnectFailure(error) || ++lostConnections > backend.connectionAttempts) {
            throw this.#connectionError(backend, error) ?? this.#markUnavailable(backend, error);
          }
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

  /** Enters the unavailable state (once), emits `disconnect` and probes until the database answers. */
  #markUnavailable(backend: SessionBackend, cause: unknown, message?: string): SessionStoreError {
    const error = this.#unavailableError(cause, undefined, message);
    if (this.#unavailable !== undefined || this.#closed) return error;
    const probe = setInterval(() => {
      backend.ping().then(
        () => {
          if (this.#unavailable?.probe !== probe) return;
          clearInterval(probe);
          this.#unavailable = undefined;
          this.emit('connect');
        },
        () => undefined,
      );
    }, PROBE_INTERVAL_MS).unref();
    this.#unavailable = { since: new Date(), error: cause, message, probe };
    this.emit('disconnect', error);
    return error;
  }

  #purgeInBackground(): void {
    if (this.#closed || this.#unavailable !== undefined || this.#purging !== undefined) return;
    this.purge().then(
      (removed) => this.emit('purge', removed),
      (error: unknown) => this.emit('purgeError', toStoreError(error, 'purging expired sessions')),
    );
  }

  /** The user id to write for a whole session; `undefined` when there is no user-id column. */
  #userIdOf(data: JsonObject): UserIdWrite {
    return this.options.userIdPath === undefined ? undefined : userIdOf(data, this.options.userIdPath);
  }

  #key(sid: unknown): string {
    assertSessionId(sid);
    return this.options.hashSessionIds ? hashSessionId(sid) : sid;
  }

  /** The stored key of `sid`: the one its state was loaded under (checked then), else computed now. */
  #keyOf(sid: string, state: LoadedState | undefined): string {
    return state !== undefined && state.key !== undefined && state.sid === sid ? state.key : this.#key(sid);
  }

  /** When a session saved now expires: the call's own expiry, else the format's, else `ttl` from now. */
  #expiry(session: object, now: number, options: SaveOptions | undefined): number {
    const given = options?.expiresAt;
    const at = given instanceof Date ? given.getTime() : (given ?? this.#format.expiresAt(session, now));
    return at !== undefined && Number.isFinite(at) ? at : now + this.options.ttlSeconds * 1000;
  }

  /** Serialises a session, refusing what cannot be stored or is too large. */
  #serialise(session: unknown): { data: JsonObject; text: string } {
    const data = toJsonValue(session);
    if (!isJsonObject(data)) {
      throw new SessionStoreError('ERR_VALUE_NOT_STORABLE', `a session must be an object, got ${Array.isArray(data) ? 'an array' : typeof data}`);
    }
    const text = JSON.stringify(data);
    this.#checkSize(text, this.options.maxSize);
    return { data, text };
  }

  /** Refuses text over `limit` bytes: the session stays as stored, never cut short by a column. */
  #checkSize(text: string, limit: number, limitedBy?: string): void {
    // Only a text that could be over the limit is measured: a UTF-16 unit is at most 3 bytes of UTF-8.
    if (text.length * 3 <= limit) return;
    const size = Buffer.byteLength(text, 'utf8');
    if (size > limit) {
      const why = limitedBy === undefined ? `over maxSize (${limit})` : `over the ${limit} bytes that ${limitedBy} allows`;
      throw new SessionStoreError('ERR_SESSION_TOO_LARGE', `the session is ${size} bytes as JSON, ${why}`);
    }
  }

  /**
   * Creates the storage if it does not exist (for SQL: the table and its
   * expiry index, with a `lock_version` column when `locking` is `optimistic`).
   */
  async createTable(): Promise<void> {
    try {
      await (await this.#open()).create(this.#needs(true));
      this.#prepared = undefined;
      this.#ready = undefined;
      await this.#prepare();
    } catch (error) {
      throw await this.#failure(error, `creating the ${this.#opener.storageName}`);
    }
  }

  /**
   * Reads a live session; `null` when there is none or it has expired.
   *
   * @throws {SessionStoreError} `ERR_INVALID_SESSION_ID`, `ERR_CORRUPT_ROW`, `ERR_DATABASE`
   */
  async load(sid: string): Promise<LoadedSession | null> {
    const key = this.#key(sid);
    return this.#call('loading the session', async ({ storage }) => {
      const row = await storage.load(key, Date.now());
      if (row === null) return null;
      const session = storedSession(row);
      const text = row.text as string;
      // The base a save diffs against, copied before the application can change the session: a copy of the parsed
      // tree costs a fraction of parsing the text again at save time.
      const view = cloneJson(session);
      const { version, expiresAt } = row;
      const changes = row.changes ?? undefined;
      if (changes === undefined)
        return {
          session,
          state: { viewText: text, view, viewLength: text.length, baseText: text, viewIsBase: true, version, expiresAt, sid, key, documentLength: text.length },
        };
      // The stored text is not the session yet: its text is written out only if a later call needs it.
      let viewText: string | undefined;
      const whole = (): string => (viewText ??= JSON.stringify(view));
      return {
        session,
        state: {
          get viewText() {
            return whole();
          },
          get baseText() {
            return whole();
          },
          view,
          // Applying a change never makes the document longer than the change's own text.
          viewLength: text.length + changes.length,
          viewIsBase: true,
          version,
          expiresAt,
          sid,
          key,
          changes,
          documentLength: text.length,
        },
      };
    });
  }

  /**
   * Opens a session for one request: its handle keeps what was loaded, so
   * {@link SessionHandle.commit} writes only this request's change. `null`
   * when there is no live session with that id.
   */
  async open(sid: string): Promise<SessionHandle | null> {
    const loaded = await this.load(sid);
    return loaded === null ? null : new SessionHandle(this, sid, loaded.session, loaded.state);
  }

  /** A handle for a session that is not stored yet (nothing is written until it is committed). */
  create(sid: string): SessionHandle {
    assertSessionId(sid);
    return new SessionHandle(this, sid, {}, undefined);
  }

  /**
   * Saves a session.
   *
   * With the `state` its request loaded, only that request's delta is written,
   * merged into the latest stored session; if the session was destroyed in
   * the meantime nothing is written (a logout sticks). A session whose data
   * did not change writes at most its expiry. Without `state` the session is
   * stored as given.
   *
   * Resolves to the state for a further save of the same request.
   *
   * @throws {SessionStoreError} `ERR_INVALID_SESSION_ID`, `ERR_VALUE_NOT_STORABLE`, `ERR_FORBIDDEN_KEY`,
   *   `ERR_SESSION_TOO_LARGE` (nothing written in each case), `ERR_DATABASE`
   */
  async save(sid: string, session: object, state?: LoadedState, options?: SaveOptions): Promise<LoadedState> {
    const key = this.#keyOf(sid, state);
    if (!JsonWalk.isKeyed(session)) {
      throw new SessionStoreError(
        'ERR_VALUE_NOT_STORABLE',
        `a session must be an object, got ${Array.isArray(session) ? 'an array' : session === null ? 'null' : typeof session}`,
      );
    }
    const now = Date.now();
    const expiresAt = this.#expiry(session, now, options);
    if (state === undefined) {
      const current = this.#serialise(session);
      return this.#call('saving the session', async ({ storage, sizeLimit, limitedBy }) => {
        this.#checkSize(current.text, sizeLimit, limitedBy);
        await storage.upsert({ key, now, expiresAt, text: current.text, userId: this.#userIdOf(current.data) });
        return { viewText: current.text, view: current.data, baseText: current.text, version: null, expiresAt, sid, key, documentLength: current.text.length };
      });
    }
    // Only what changed is converted and validated, before any statement: the rest was stored JSON already.
    const loaded = state.view ?? parseStoredSession(state.viewText);
    const delta = this.#deltaOf(loaded, session);
    return this.#call('saving the session', async (prepared) => {
      if (delta === null) return (await this.#touch(prepared.storage, key, expiresAt, now, state)) ?? state;
      const encoded = JSON.stringify(deltaToJson(delta));
      const { view, viewLength } = this.#view(loaded, delta, encoded, state.viewLength ?? state.viewText.length, prepared);
      const saved = await this.#saveDelta(prepared, { key, now, expiresAt, delta, encoded, state, view });
      if (saved === null) return state;
      // The view's text is written out only if a later call needs it (the merge wrote it already when the view was its base).
      let viewText: string | undefined = saved.viewIsBase ? saved.baseText : undefined;
      return {
        view,
        viewLength,
        get viewText() {
          return (viewText ??= JSON.stringify(view));
        },
        baseText: saved.baseText,
        viewIsBase: saved.viewIsBase,
        version: saved.version,
        expiresAt,
        sid,
        key,
        changes: saved.changes,
        documentLength: saved.documentLength ?? state.documentLength,
      };
    });
  }

  /**
   * The session as this request now sees it: the delta merged into what it
   * loaded (copying only the changed paths), after refusing a result over the
   * size limit. The size is bounded from the loaded text and the delta first:
   * the whole text is built to measure it only when the bound is over.
   */
  #view(
    loaded: JsonObject,
    delta: SessionDelta,
    encoded: string,
    loadedLength: number,
    { sizeLimit, limitedBy }: SizeLimit,
  ): { view: JsonObject; viewLength: number } {
    const view = applyDelta(loaded, delta);
    // An upper bound of the merged text's length (applying a delta never adds more than its JSON text); a UTF-16
    // unit is at most 3 bytes of UTF-8.
    let viewLength = loadedLength + encoded.length;
    if (viewLength * 3 > sizeLimit) {
      const text = JSON.stringify(view);
      this.#checkSize(text, sizeLimit, limitedBy);
      viewLength = text.length;
    }
    return { view, viewLength };
  }

  /**
   * The change from `loaded` to the live `session`, or `null` when nothing
   * worth writing changed. The format's bookkeeping keys are not diffed: any
   * write carries them whole, and they alone are a change only when the
   * format says so.
   */
  #deltaOf(loaded: JsonObject, session: object): SessionDelta | null {
    const { bookkeeping } = this.#format;
    const delta = diffLive(loaded, session, bookkeeping);
    if (bookkeeping.size === 0) return isEmptyDelta(delta) ? null : delta;
    // The bookkeeping as JSON, converted once: to tell whether it changed, and to write it.
    const current: JsonObject = {};
    for (const name of bookkeeping) {
      const live = (session as Record<string, unknown>)[name];
      const value = live === undefined ? undefined : toJsonValue(live);
      if (value !== undefined) current[name] = value;
    }
    if (isEmptyDelta(delta) && !this.#format.bookkeepingChanged(loaded, current)) return null;
    for (const name of bookkeeping) {
      if (Object.hasOwn(current, name)) delta.set.set(name, { kind: 'value', value: current[name] as JsonValue });
      else if (loaded[name] !== undefined) delta.unset.push(name);
    }
    return delta;
  }

  /** Merges the delta into the stored session, refusing a result over the size limit. */
  #merged(stored: StoredData, delta: SessionDelta, limit: SizeLimit): { text: string; userId: UserIdWrite } {
    return this.#document(applyDelta(storedSession(stored), delta), limit);
  }

  /** A merged session as the text to write, refusing it over the size limit. */
  #document(merged: JsonObject, { sizeLimit, limitedBy }: SizeLimit): { text: string; userId: UserIdWrite } {
    const text = JSON.stringify(merged);
    this.#checkSize(text, sizeLimit, limitedBy);
    return { text, userId: this.#userIdOf(merged) };
  }

  /** Writes a delta in the locking mode in force; `null` when the session is gone (destroyed or expired). */
  async #saveDelta(
    prepared: Prepared,
    {
      key,
      now,
      expiresAt,
      delta,
      encoded,
      state,
      view,
    }: { key: string; now: number; expiresAt: number; delta: SessionDelta; encoded: string; state: LoadedState; view: JsonObject },
  ): Promise<{ baseText: string; version: number | null; viewIsBase: boolean; changes?: string; documentLength?: number } | null> {
    const { storage } = prepared;
    if (storage.locking === 'atomic') {
      // One round trip: the delta is appended or merged inside the database, so no lock is held between statements.
      const path = this.options.userIdPath;
      const userId = path === undefined ? undefined : userIdAfterDelta(delta, path)?.userId;
      if (storage.keepsChanges !== true) {
        return (await storage.applyDelta({ key, now, expiresAt, delta, userId, append: undefined }))
          ? { baseText: '', version: null, viewIsBase: false }
          : null;
      }
      // A save that finds many pending changes also writes the document they make (the view it saved on), so that
      // loads stay cheap; the database does so only if the stored changes still start with those the view has.
      const { changes } = state;
      const documentLength = state.documentLength ?? state.viewLength ?? 0;
      const fold =
        changes !== undefined && state.view !== undefined && shouldFold(changes.length, documentLength)
          ? { changes, text: JSON.stringify(state.view) }
          : undefined;
      const append = { entry: changeEntry(encoded), marker: changesMarker(), documentLength, fold };
      if (!(await storage.applyDelta({ key, now, expiresAt, delta, userId, append }))) return null;
      // What the stored changes now are, unless another request appended too (then a later fold is refused).
      if (fold === undefined) return { baseText: '', version: null, viewIsBase: false, changes: (changes ?? append.marker) + append.entry };
      return { baseText: '', version: null, viewIsBase: false, changes: append.marker + append.entry, documentLength: fold.text.length };
    }
    if (storage.locking === 'optimistic') {
      let base: StoredData = { text: state.baseText };
      let version = state.version;
      // The delta merged into what the request saw is the view already: when that is the stored base, no parse.
      let mergesIntoView = state.viewIsBase === true;
      for (let attempt = 0; attempt < OPTIMISTIC_ATTEMPTS; attempt++) {
        if (version === null) {
          const row = await storage.load(key, Date.now());
          if (row === null) return null;
          base = row;
          version = row.version;
          mergesIntoView = false;
          if (version === null) break;
        }
        const merged = mergesIntoView ? this.#document(view, prepared) : this.#merged(base, delta, prepared);
        if (await storage.compareAndSwap({ key, now: Date.now(), expiresAt, version, ...merged })) {
          return { baseText: merged.text, version: version + 1, viewIsBase: mergesIntoView, documentLength: merged.text.length };
        }
        // Someone saved in between: reload and merge again, after a short random pause once it repeats.
        version = null;
        if (attempt > 0) await sleep(Math.random() * Math.min(50, 2 ** attempt));
      }
      // Heavy contention: stop retrying and take the row lock, which always makes progress.
    }
    let mergedText = '';
    const written = await storage.updateLocked({
      key,
      now,
      expiresAt,
      merge: (row) => {
        const merged = this.#merged(row, delta, prepared);
        mergedText = merged.text;
        return merged;
      },
    });
    return written ? { baseText: mergedText, version: null, viewIsBase: false, documentLength: mergedText.length } : null;
  }

  async #touch(storage: ReadyBackend, key: string, expiresAt: number, now: number, state?: LoadedState): Promise<LoadedState | undefined> {
    // At most a tenth of the session's lifetime: a short-lived session kept alive by reads must not run out while in use.
    const threshold = Math.min(this.options.touchAfterMs, (expiresAt - now) / 10);
    // What the request loaded tells the stored expiry: no statement at all when it would barely move.
    if (state !== undefined && expiresAt - state.expiresAt <= threshold) return state;
    await storage.extendExpiry({ key, now, expiresAt, movedBefore: expiresAt - threshold });
    return state === undefined ? undefined : { ...state, expiresAt };
  }

  /**
   * Keeps a session alive: moves its stored expiry, but only when it would
   * move by more than `touchAfter`. Never creates a session.
   */
  async touch(sid: string, session: object, state?: LoadedState, options?: SaveOptions): Promise<LoadedState | undefined> {
    const key = this.#keyOf(sid, state);
    const now = Date.now();
    const expiresAt = this.#expiry(session, now, options);
    return this.#call('touching the session', ({ storage }) => this.#touch(storage, key, expiresAt, now, state));
  }

  /** Deletes a session. Concurrent saves of it will not bring it back. */
  async destroy(sid: string): Promise<void> {
    const key = this.#key(sid);
    return this.#call('destroying the session', ({ storage }) => storage.destroy(key));
  }

  #assertUserIdColumn(): void {
    if (this.options.userIdPath === undefined) {
      throw new SessionStoreError('ERR_INVALID_OPTION', 'option "userIdKey" must be set to find sessions by user');
    }
  }

  /**
   * Logs a user out everywhere: deletes every session whose `userIdKey` holds
   * `userId`. Concurrent saves of those sessions will not bring them back.
   * Resolves to the number of sessions deleted.
   */
  async destroyByUser(userId: string | number): Promise<number> {
    this.#assertUserIdColumn();
    return this.#call("destroying the user's sessions", ({ storage }) => storage.destroyByUser(String(userId)));
  }

  /** The live sessions of a user (rows that cannot be read as a session are skipped). */
  async listByUser(userId: string | number): Promise<UserSession[]> {
    this.#assertUserIdColumn();
    return this.#call("listing the user's sessions", async ({ storage }) => {
      const sessions: UserSession[] = [];
      for (const row of await storage.listByUser(String(userId), Date.now())) {
        try {
          sessions.push({ session: storedSession(row), expiresAt: new Date(row.expiresAt) });
        } catch {
          // A corrupt row must not hide the user's other sessions.
        }
      }
      return sessions;
    });
  }

  /** Every live session. Rows that cannot be read as a session are skipped. */
  async all(): Promise<JsonObject[]> {
    return this.#call('listing sessions', async ({ storage }) => {
      const sessions: JsonObject[] = [];
      for (const row of await storage.all(Date.now())) {
        try {
          sessions.push(storedSession(row));
        } catch {
          // A corrupt row must not hide every other session.
        }
      }
      return sessions;
    });
  }

  /** Number of live sessions. */
  async length(): Promise<number> {
    return this.#call('counting sessions', ({ storage }) => storage.count(Date.now()));
  }

  /** Deletes every session. */
  async clear(): Promise<void> {
    return this.#call('clearing sessions', ({ storage }) => storage.clear());
  }

  /**
   * Removes expired sessions in batches of `batchSize` rows, yielding to other
   * work between batches. Single-flight: within a process concurrent calls
   * share one run, and across processes a database lock lets one purge at a
   * time (the others resolve to 0). Resolves to the number removed.
   */
  purge(options: PurgeOptions = {}): Promise<number> {
    if (this.#purging !== undefined) return this.#purging;
    const batchSize = options.batchSize ?? this.options.autopurge?.batchSize ?? 1000;
    if (!Number.isInteger(batchSize) || batchSize <= 0) {
      return Promise.reject(new SessionStoreError('ERR_INVALID_OPTION', `option "batchSize" must be a positive integer, got ${JSON.stringify(batchSize)}`));
    }
    const running = this.#call(
      'purging expired sessions',
      async ({ storage }) => (await storage.purge({ now: Date.now(), batchSize, onProgress: options.onProgress })) ?? 0,
    );
    this.#purging = running.finally(() => {
      this.#purging = undefined;
    });
    return this.#purging;
  }

  /** How many live and expired sessions the storage holds. */
  async stats(): Promise<SessionStats> {
    return this.#call('counting sessions', ({ storage }) => storage.stats(Date.now()));
  }

  /** Closes the connections the store opened. Calls after this fail with `ERR_STORE_CLOSED`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#autopurge?.stop();
    if (this.#unavailable !== undefined) clearInterval(this.#unavailable.probe);
    this.#unavailable = undefined;
    await this.#purging?.catch(() => undefined);
    const opened = this.#backend;
    this.#backend = undefined;
    this.#prepared = undefined;
    this.#ready = undefined;
    if (opened === undefined) return;
    try {
      await (await opened).close();
    } catch (error) {
      throw toStoreError(error, 'closing the store');
    }
  }
}
