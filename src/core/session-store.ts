/**
 * The store itself, free of any backend and of any web framework: its API
 * over the backend port (`./backend.ts`). The link to the backend and its
 * retries are in `./backend-link.ts`, the save paths of each locking mode in
 * `./save-paths.ts`. Framework adapters open a {@link SessionHandle} per
 * request and tell the store their session format (`./session-format.ts`).
 */
import { EventEmitter } from 'node:events';
import { SessionStoreError, toStoreError } from '../errors.js';
import { Autopurge } from './autopurge.js';
import type { BackendOpener, ReadyBackend, StorageNeeds } from './backend.js';
import { BackendLink } from './backend-link.js';
import { JsonWalk, parseStoredSession, type JsonObject, type JsonValue } from './json.js';
import { fieldsOf, sealed, type LoadedSession, type LoadedState, type SaveOptions, type StateFields } from './loaded-state.js';
import type { LockingMode, ResolvedStoreOptions } from './options.js';
import { type SaveCall, saveChange, saveNew, touchSession } from './save-request.js';
import { ParsedSessions } from './parsed-sessions.js';
import { openHandle, type SessionHandle } from './session-handle.js';
import { PLAIN_FORMAT, type SessionFormat } from './session-format.js';
import type {
  DestroyByUserOptions,
  ListByUserOptions,
  PurgeOptions,
  ReportOptions,
  SessionStats,
  SessionStoreEvents,
  StoreReport,
  UserSession,
} from './store-types.js';
import { assertSessionId, hashSessionId, publicHandle } from './session-id.js';
import {
  allSessions,
  countSessions,
  destroyUserSessionByHandle,
  destroyUserSessions,
  evictBeyond,
  listUserSessions,
  renameSession,
  sessionStats,
} from './storage-queries.js';
import { userIdOf } from './user-id.js';
import { destroySession, loadSession, operationMessage, publishConnection, purgeExpired, reportOn } from './store-calls.js';
import { insertSession, ReadThrough, type SessionSource } from './session-source.js';
import { type SaveMessage, TRACING } from './tracing.js';

export type { LoadedSession, LoadedState, SaveOptions } from './loaded-state.js';
export {
  SESSION_STORE_EVENTS,
  type PurgeOptions,
  type ReportOptions,
  type StoreReport,
  type StorageReport,
  type SessionStats,
  type SessionStoreEvents,
  type UserSession,
  type SessionClient,
  type ListByUserOptions,
  type DestroyByUserOptions,
  type SessionEvent,
  type DestroyedEvent,
  type RotatedEvent,
  type ExpiredEvent,
} from './store-types.js';

/** The options the core runs on, and the backend it runs on. */
export interface CoreSetup {
  readonly options: ResolvedStoreOptions;
  readonly backend: BackendOpener;
  /** The session format of the adapter using the store. @default no bookkeeping, expiry from `ttl` */
  readonly format?: SessionFormat | undefined;
  /** Another store that a session this one does not have is read from, copied in, and deleted from with it (`migrateFrom`). @default none */
  readonly source?: SessionSource | undefined;
}

/**
 * A session store that saves each request's delta into the latest stored
 * session, so overlapping requests never erase each other's changes.
 *
 * Promise-based and framework-neutral. Users construct `SessionStore` from
 * the package entry point; framework adapters wrap it.
 */
export class SessionStoreCore extends EventEmitter<SessionStoreEvents> {
  /** @internal The options as validated, with defaults filled in. */
  readonly options: ResolvedStoreOptions;
  readonly #opener: BackendOpener;
  readonly #format: SessionFormat;
  readonly #link: BackendLink;
  /** The purge running in this process, if any: purges are single-flight. */
  #purging: Promise<number> | undefined;
  readonly #autopurge: Autopurge | undefined;
  readonly #readThrough: ReadThrough | undefined;
  /** Sessions as last parsed: a load of an unchanged text parses nothing. */
  readonly #parsed = new ParsedSessions();

  /** @internal Users construct `SessionStore`. */
  constructor({ options, backend, format = PLAIN_FORMAT, source }: CoreSetup) {
    super();
    this.#readThrough = source === undefined ? undefined : new ReadThrough(source);
    this.options = options;
    this.#opener = backend;
    this.#format = format;
    const autopurge = (this.#autopurge = options.autopurge === undefined ? undefined : new Autopurge(options.autopurge, () => this.#purgeInBackground()));
    this.#link = new BackendLink({
      opener: backend,
      needs: (createIfMissing): StorageNeeds => ({
        locking: options.locking,
        userId: options.userIdPath !== undefined,
        createIfMissing,
        createdAt: options.absoluteTimeoutMs !== undefined,
        client: options.recordClient,
      }),
      createIfMissing: options.createTable,
      maxSize: options.maxSize,
      events: {
        connect: () => {
          publishConnection(this.#opener, 'up');
          this.emit('connect');
        },
        disconnect: (error) => {
          publishConnection(this.#opener, 'down', error);
          this.emit('disconnect', error);
        },
        succeeded: autopurge === undefined ? () => undefined : () => autopurge.maybeStart(this.#purging !== undefined),
      },
    });
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
    return (await this.#link.prepare()).storage.locking;
  }

  /** Connects and inspects the storage; calls do this on their own, this only surfaces problems early. */
  async ready(): Promise<void> {
    await this.#link.prepare();
  }

  #call<T>(doing: string, operation: (storage: ReadyBackend) => Promise<T>): Promise<T> {
    return this.#link.call(doing, ({ storage }) => operation(storage));
  }

  #purgeInBackground(): void {
    if (this.#link.closed || this.#link.unavailable || this.#purging !== undefined) return;
    this.purge().then(
      (removed) => this.emit('purge', removed),
      (error: unknown) => this.emit('purgeError', toStoreError(error, 'purging expired sessions')),
    );
  }

  #key(sid: unknown): string {
    assertSessionId(sid);
    return this.options.hashSessionIds ? hashSessionId(sid) : sid;
  }

  /** The stored key of `sid`: the one its state was loaded under (checked then), else computed now. */
  #keyOf(sid: string, state: StateFields | undefined): string {
    return state !== undefined && state.key !== undefined && state.sid === sid ? state.key : this.#key(sid);
  }

  /**
   * When a session saved now expires: the call's own expiry, else the format's, else `ttl` from now; never past
   * its creation (`createdAt`, as its state knows it) plus the absolute timeout.
   */
  #expiry(session: object, now: number, options: SaveOptions | undefined, createdAt: number | undefined): number {
    const given = options?.expiresAt;
    const at = given instanceof Date ? given.getTime() : (given ?? this.#format.expiresAt(session, now));
    const idle = at !== undefined && Number.isFinite(at) ? at : now + this.options.ttlSeconds * 1000;
    const absolute = this.options.absoluteTimeoutMs;
    return absolute === undefined || createdAt === undefined ? idle : Math.min(idle, createdAt + absolute);
  }

  /** The client to record with a session this save creates (`recordClient`), as stored. */
  #client(options: SaveOptions | undefined): string | undefined {
    const client = options?.client;
    if (!this.options.recordClient || client === undefined) return undefined;
    const text = (value: unknown): string | undefined => (typeof value === 'string' && value.length > 0 ? value.slice(0, 512) : undefined);
    return JSON.stringify({ userAgent: text(client.userAgent), ip: text(client.ip) });
  }

  /**
   * Creates the storage if it does not exist (for SQL: the table and its
   * expiry index, with a `lock_version` column when `locking` is `optimistic`).
   */
  createTable(): Promise<void> {
    return this.#link.createStorage();
  }

  /**
   * Reads a live session; `null` when there is none or it has expired. With
   * a source (`migrateFrom`), a session missing here is read from there,
   * copied in and returned.
   *
   * @throws {SessionStoreError} `ERR_INVALID_SESSION_ID`, `ERR_CORRUPT_ROW`, `ERR_DATABASE`
   */
  async load(sid: string): Promise<LoadedSession | null> {
    return this.#load(sid, 'whole');
  }

  async #load(sid: string, copy: 'whole' | 'onRead'): Promise<LoadedSession | null> {
    const key = this.#key(sid);
    const absoluteTimeoutMs = this.options.absoluteTimeoutMs;
    const parse = (text: string | null): JsonObject => this.#parsed.parse(key, text);
    const loaded = await loadSession(this.#opener, this.#link, sid, key, absoluteTimeoutMs, copy, parse);
    if (loaded !== null || this.#readThrough === undefined) return loaded;
    const copied = await this.#readThrough.copy(sid, {
      insert: (found) => insertSession(this.#link, this.options, key, parseStoredSession(found.text), found.expiresAt),
      destroy: () => destroySession(this.#opener, this.#link, key),
    });
    return copied ? loadSession(this.#opener, this.#link, sid, key, absoluteTimeoutMs, copy, parse) : null;
  }

  /**
   * Stores a session under `sid` with its expiry, unless a live session is
   * stored under that id (an expired one is replaced): how sessions are
   * brought over from another store, copied once whoever copies first, and
   * never over what a request saved. Resolves `true` when stored.
   *
   * @throws {SessionStoreError} `ERR_INVALID_SESSION_ID`, `ERR_VALUE_NOT_STORABLE`, `ERR_SESSION_TOO_LARGE` (nothing written), `ERR_DATABASE`
   */
  async insertIfAbsent(sid: string, session: object, expiresAt: number | Date): Promise<boolean> {
    const at = expiresAt instanceof Date ? expiresAt.getTime() : expiresAt;
    if (!Number.isFinite(at)) throw new SessionStoreError('ERR_INVALID_OPTION', `expiresAt must be a finite instant, got ${String(expiresAt)}`);
    return insertSession(this.#link, this.options, this.#key(sid), session, at);
  }

  /**
   * Opens a session for one request: its handle keeps what was loaded, so
   * {@link SessionHandle.commit} writes only this request's change. `null`
   * when there is no live session with that id.
   */
  async open(sid: string): Promise<SessionHandle | null> {
    // The handle's data copies each top-level object on first read: a request pays for the keys it touches.
    const loaded = await this.#load(sid, 'onRead');
    return loaded === null ? null : openHandle(this, sid, loaded.session, loaded.state);
  }

  /** A handle for a session that is not stored yet (nothing is written until it is committed). */
  create(sid: string): SessionHandle {
    assertSessionId(sid);
    return openHandle(this, sid, {}, undefined);
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
  async save(sid: string, session: object, loadedState?: LoadedState, options?: SaveOptions): Promise<LoadedState> {
    const state = loadedState === undefined ? undefined : fieldsOf(loadedState);
    const key = this.#keyOf(sid, state);
    if (!JsonWalk.isKeyed(session)) {
      throw new SessionStoreError(
        'ERR_VALUE_NOT_STORABLE',
        `a session must be an object, got ${Array.isArray(session) ? 'an array' : session === null ? 'null' : typeof session}`,
      );
    }
    const now = Date.now();
    // A session stored now for the first time is created now (a whole write over a stored one keeps its creation).
    const call = this.#saveCall(sid, key, now, this.#expiry(session, now, options, state === undefined ? now : state.createdAt));
    const saved =
      state === undefined || loadedState === undefined
        ? await saveNew(call, session, this.#client(options))
        : await saveChange(call, session, state, loadedState);
    await this.#afterSave(key, session, state);
    return saved;
  }

  /**
   * What a save sets off: the `created` event for a new session, and when the session has become a user's (its
   * user id differs from the one the request loaded), the `maxSessionsPerUser` limit.
   */
  async #afterSave(key: string, session: object, state: StateFields | undefined): Promise<void> {
    const path = this.options.userIdPath;
    const limit = this.options.maxSessionsPerUser;
    const tellCreated = state === undefined && this.listenerCount('created') > 0;
    if (!tellCreated && (limit === undefined || path === undefined)) return;
    const userId = path === undefined ? null : userIdOf(session as JsonValue, path);
    if (tellCreated) this.emit('created', { handle: publicHandle(key), userId: userId ?? undefined });
    if (limit === undefined || path === undefined || userId === null) return;
    if (state !== undefined && userIdOf(state.view ?? parseStoredSession(state.viewText), path) === userId) return;
    const absoluteTimeoutMs = this.options.absoluteTimeoutMs;
    const evicted = await this.#call("limiting the user's sessions", (storage) => evictBeyond(storage, userId, limit, absoluteTimeoutMs));
    for (const evictedKey of evicted) this.emit('evicted', { handle: publicHandle(evictedKey), userId });
  }

  /**
   * Moves a session to a new id with its data, as it is stored (every change committed to it before, this
   * request's included once saved): the way to log a user in without a session fixation, keeping what the
   * session held. The old id is dead once this resolves: a request still using it finds no session, and its save
   * writes nothing. Resolves to the state to save the session under `newSid` with (`state`'s, moved; a fresh load
   * without it), or `null` when there was no live session under `sid`.
   *
   * @throws {SessionStoreError} `ERR_INVALID_SESSION_ID` for either id; `ERR_DATABASE`
   */
  async rotate(sid: string, newSid: string, loadedState?: LoadedState): Promise<LoadedState | null> {
    const state = loadedState === undefined ? undefined : fieldsOf(loadedState);
    const fromKey = this.#keyOf(sid, state);
    const toKey = this.#key(newSid);
    if (toKey === fromKey) throw new SessionStoreError('ERR_INVALID_SESSION_ID', 'a session is rotated to a new id, not to the one it has');
    const path = this.options.userIdPath;
    const moved = await this.#call('rotating the session id', (storage) => renameSession(storage, fromKey, toKey, path));
    this.#parsed.forget(fromKey);
    if (!moved) return null;
    let next: LoadedState;
    if (state === undefined) {
      const loaded = await this.load(newSid);
      if (loaded === null) return null;
      next = loaded.state;
    } else {
      next = sealed({ ...state, sid: newSid, key: toKey });
    }
    if (this.listenerCount('rotated') > 0) {
      const fields = fieldsOf(next);
      const userId = path === undefined ? null : userIdOf(fields.view ?? parseStoredSession(fields.viewText), path);
      this.emit('rotated', { handle: publicHandle(toKey), previous: publicHandle(fromKey), userId: userId ?? undefined });
    }
    return next;
  }

  /**
   * Keeps a session alive: moves its stored expiry, but only when it would
   * move by more than `touchAfter`. Never creates a session.
   */
  async touch(sid: string, session: object, loadedState?: LoadedState, options?: SaveOptions): Promise<LoadedState | undefined> {
    const state = loadedState === undefined ? undefined : fieldsOf(loadedState);
    const key = this.#keyOf(sid, state);
    const now = Date.now();
    return touchSession(this.#saveCall(sid, key, now, this.#expiry(session, now, options, state?.createdAt)), state);
  }

  /** What a save or touch of this request needs, with its message when someone subscribes to the `save` channel. */
  #saveCall(sid: string, key: string, now: number, expiresAt: number): SaveCall {
    const message: SaveMessage | undefined = TRACING.save.hasSubscribers
      ? { ...operationMessage(this.#opener, this.#link), handle: publicHandle(key), outcome: undefined, bytes: 0, folded: false }
      : undefined;
    return { link: this.#link, format: this.#format, settings: this.options, sid, key, now, expiresAt, message, parsed: this.#parsed };
  }

  /** Deletes a session (from the source too, with `migrateFrom`). Concurrent saves of it will not bring it back. */
  async destroy(sid: string): Promise<void> {
    const key = this.#key(sid);
    // From the store being migrated from first: a copy racing this destroy then sees it gone and drops itself.
    await this.#readThrough?.remove(sid);
    await destroySession(this.#opener, this.#link, key);
    this.#parsed.forget(key);
    if (this.listenerCount('destroyed') > 0) this.emit('destroyed', { handle: publicHandle(key), userId: undefined, reason: 'destroy' });
  }

  #assertUserIdColumn(): void {
    if (this.options.userIdPath === undefined) {
      throw new SessionStoreError('ERR_INVALID_OPTION', 'option "userIdKey" must be set to find sessions by user');
    }
  }

  /**
   * Logs a user out everywhere: deletes every session whose `userIdKey` holds
   * `userId`, but the one whose id is `except` ("log out my other devices").
   * Concurrent saves of those sessions will not bring them back. Resolves to
   * the number of sessions deleted.
   *
   * @throws {SessionStoreError} `ERR_INVALID_OPTION` without `userIdKey`; `ERR_INVALID_SESSION_ID` for a malformed `except`
   */
  async destroyByUser(userId: string | number, options: DestroyByUserOptions = {}): Promise<number> {
    this.#assertUserIdColumn();
    // From the store being migrated from first, as destroy does.
    if (this.options.userIdPath !== undefined) await this.#readThrough?.removeByUser(this.options.userIdPath, String(userId));
    const exceptKey = options.except === undefined ? undefined : this.#key(options.except);
    const user = String(userId);
    return this.#call("destroying the user's sessions", async (storage) => {
      // Listened to: the sessions are named as listed just before they go.
      const listed = this.listenerCount('destroyed') > 0 ? (await storage.listByUser(user, Date.now())).filter(({ key }) => key !== exceptKey) : [];
      const destroyed = await destroyUserSessions(storage, user, exceptKey);
      for (const { key } of listed) this.emit('destroyed', { handle: publicHandle(key), userId: user, reason: 'user' });
      return destroyed;
    });
  }

  /**
   * Logs one session of a user out: the one whose public `handle` (from
   * {@link listByUser}) is given, found among that user's sessions only.
   * Concurrent saves of it will not bring it back. Resolves to `true` when it
   * was there to delete.
   *
   * @throws {SessionStoreError} `ERR_INVALID_OPTION` without `userIdKey`
   */
  async destroyByHandle(userId: string | number, handle: string): Promise<boolean> {
    this.#assertUserIdColumn();
    if (typeof handle !== 'string' || handle.length === 0) return false;
    const key = await this.#call("destroying one of the user's sessions", (storage) => destroyUserSessionByHandle(storage, String(userId), handle));
    if (key === undefined) return false;
    this.emit('destroyed', { handle, userId: String(userId), reason: 'handle' });
    return true;
  }

  /**
   * The live sessions of a user, oldest first, each with its public handle, creation and last-seen times, expiry,
   * data and (with `recordClient`) client; `current` marks the one whose id is `options.current`. Rows that cannot
   * be read as a session are skipped.
   */
  async listByUser(userId: string | number, options: ListByUserOptions = {}): Promise<UserSession[]> {
    this.#assertUserIdColumn();
    const currentKey = options.current === undefined ? undefined : this.#key(options.current);
    const absoluteTimeoutMs = this.options.absoluteTimeoutMs;
    return this.#call("listing the user's sessions", (storage) => listUserSessions(storage, String(userId), { currentKey, absoluteTimeoutMs }));
  }

  /** Every live session. Rows that cannot be read as a session are skipped. */
  async all(): Promise<JsonObject[]> {
    return this.#call('listing sessions', (storage) => allSessions(storage));
  }

  /** Number of live sessions. */
  async length(): Promise<number> {
    return this.#call('counting sessions', (storage) => countSessions(storage));
  }

  /** Deletes every session. */
  async clear(): Promise<void> {
    return this.#call('clearing sessions', (storage) => storage.clear());
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
    const running = purgeExpired(this.#opener, this.#link, batchSize, options.onProgress).then((removed) => {
      if (removed > 0) this.emit('expired', { count: removed });
      return removed;
    });
    this.#purging = running.finally(() => {
      this.#purging = undefined;
    });
    return this.#purging;
  }

  /** How many live and expired sessions the storage holds. */
  async stats(): Promise<SessionStats> {
    return this.#call('counting sessions', (storage) => sessionStats(storage));
  }

  /**
   * What an operator wants at a glance: live and expired sessions, the
   * locking mode, and what the storage can tell of itself (its size on
   * disk, pending changes not yet folded in, the users with the most
   * sessions).
   */
  async report(options: ReportOptions = {}): Promise<StoreReport> {
    const topUsers = options.topUsers ?? 5;
    if (!Number.isInteger(topUsers) || topUsers < 0) {
      throw new SessionStoreError('ERR_INVALID_OPTION', `option "topUsers" must be a non-negative integer, got ${JSON.stringify(topUsers)}`);
    }
    return reportOn(this.#opener, this.#link, await this.stats(), topUsers);
  }

  /** Closes the connections the store opened. Calls after this fail with `ERR_STORE_CLOSED`. */
  async close(): Promise<void> {
    if (this.#link.closed) return;
    const opened = this.#link.shut();
    this.#autopurge?.stop();
    await this.#purging?.catch(() => undefined);
    await this.#readThrough?.close().catch(() => undefined);
    if (opened === undefined) return;
    try {
      await (await opened).close();
    } catch (error) {
      throw toStoreError(error, 'closing the store');
    }
  }
}
