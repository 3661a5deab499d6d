/**
 * express-session adapter.
 *
 * ```ts
 * import session from 'express-session';
 * import { SmartSessionStore } from 'smart-session-store/express';
 *
 * app.use(session({
 *   secret: process.env.SESSION_SECRET!,
 *   resave: false,
 *   saveUninitialized: false,
 *   store: new SmartSessionStore({ url: 'postgres://postgres@127.0.0.1:5432/test', createTable: true }),
 * }));
 * ```
 *
 * @module
 */
import type { Request } from 'express';
import session from 'express-session';
import { SessionStore, type LoadedState, type PurgeOptions, type SessionStats, type UserSession } from '../core/session-store.js';
import { isJsonObject } from '../core/json.js';
import { SessionStoreError } from '../errors.js';
import type { LockingMode, SessionStoreOptions } from '../core/options.js';

export type { SessionStoreOptions, LockingMode } from '../core/options.js';
export type { UserSession, PurgeOptions, SessionStats } from '../core/session-store.js';
export { SessionStoreError };
export type { SessionStoreErrorCode } from '../errors.js';

/** Options of {@link SmartSessionStore}: the store's options (see the README). */
export type SmartSessionStoreOptions = SessionStoreOptions;

type Callback = (error?: unknown) => void;
type ValueCallback<T> = (error: unknown, value?: T) => void;

/** Calls a Node-style callback outside the promise chain, so a throwing callback is never swallowed. */
function settle<T>(promise: Promise<T>, callback: ValueCallback<T> | undefined): void {
  promise.then(
    (value) => {
      if (callback !== undefined) process.nextTick(callback, null, value);
    },
    (error: unknown) => {
      if (callback !== undefined) process.nextTick(callback, error);
    },
  );
}

/**
 * An express-session store that saves only what each request changed, merged
 * into the latest stored session: overlapping requests of one user never
 * erase each other's changes, and a destroyed session stays destroyed.
 *
 * It remembers, per request, the session as loaded (express-session hands the
 * same session object back to `set` and `touch`), so `set` can compute the
 * request's delta.
 */
export class SmartSessionStore extends session.Store {
  /** The framework-neutral store underneath, promise-based. */
  readonly store: SessionStore;
  /** What each live session object was loaded as (or last saved as): keyed by the object, dropped with it. */
  readonly #loaded = new WeakMap<object, LoadedState>();

  /**
   * @param options Where and how to store sessions; at least `url`.
   * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the offending option.
   */
  constructor(options: SmartSessionStoreOptions) {
    super();
    this.store = new SessionStore(options);
    // express-session stops using a store after `disconnect` and resumes after `connect`.
    this.store.on('disconnect', (error) => this.emit('disconnect', error));
    this.store.on('connect', () => this.emit('connect'));
    this.store.on('purge', (removed) => this.emit('purge', removed));
    this.store.on('purgeError', (error) => this.emit('purgeError', error));
  }

  /** Loads a session; yields `null` when there is none or it has expired. */
  override get(sid: string, callback: (error: unknown, session?: session.SessionData | null) => void): void {
    settle(
      this.store.load(sid).then((loaded) => {
        if (loaded === null) return null;
        const { cookie } = loaded.session;
        // express-session rebuilds its Cookie from this; anything but an object would throw in there.
        if (cookie === undefined) loaded.session['cookie'] = { originalMaxAge: null, expires: null, httpOnly: true, path: '/' };
        else if (!isJsonObject(cookie)) throw new SessionStoreError('ERR_CORRUPT_ROW', 'stored session has a cookie that is not an object');
        this.#loaded.set(loaded.session, loaded.state);
        return loaded.session as unknown as session.SessionData;
      }),
      callback,
    );
  }

  /**
   * Called by express-session with what {@link get} returned; the request's
   * session object inherits the loaded state, so its `set` writes a delta.
   */
  override createSession(req: Request, data: session.SessionData): session.Session & session.SessionData {
    const state = this.#loaded.get(data);
    const created = super.createSession(req, data);
    if (state !== undefined) this.#loaded.set(created, state);
    return created;
  }

  /** Saves the request's changes (or the whole session, if it was not loaded through this store). */
  override set(sid: string, data: session.SessionData, callback?: Callback): void {
    settle(
      this.store.save(sid, data, this.#loaded.get(data)).then((state) => {
        this.#loaded.set(data, state);
      }),
      callback,
    );
  }

  /** Moves the expiry forward, writing only when it moves by more than `touchAfter`. */
  override touch(sid: string, data: session.SessionData, callback?: Callback): void {
    settle(
      this.store.touch(sid, data, this.#loaded.get(data)).then((state) => {
        if (state !== undefined) this.#loaded.set(data, state);
      }),
      callback,
    );
  }

  /** Deletes the session; concurrent saves of it will not bring it back. */
  override destroy(sid: string, callback?: Callback): void {
    settle(this.store.destroy(sid), callback);
  }

  /** Every live session, as an array (session ids are stored hashed, so they cannot be listed). */
  override all(callback: (error: unknown, sessions?: session.SessionData[] | null) => void): void {
    // Stored sessions are what express-session saved: its SessionData, in JSON form.
    settle(this.store.all() as unknown as Promise<session.SessionData[]>, callback);
  }

  /** Number of live sessions. */
  override length(callback: (error: unknown, length?: number) => void): void {
    settle(this.store.length(), callback);
  }

  /** Deletes every session. */
  override clear(callback?: Callback): void {
    settle(this.store.clear(), callback);
  }

  /** Logs a user out everywhere (needs `userIdKey`); resolves to the number of sessions deleted. */
  destroyByUser(userId: string | number): Promise<number> {
    return this.store.destroyByUser(userId);
  }

  /** The live sessions of a user (needs `userIdKey`). */
  listByUser(userId: string | number): Promise<UserSession[]> {
    return this.store.listByUser(userId);
  }

  /** Removes expired sessions in batches; resolves to the number removed (see {@link SessionStore.purge}). */
  purge(options?: PurgeOptions): Promise<number> {
    return this.store.purge(options);
  }

  /** How many live and expired sessions the table holds. */
  stats(): Promise<SessionStats> {
    return this.store.stats();
  }

  /** Creates the table and its expiry index if missing. */
  createTable(): Promise<void> {
    return this.store.createTable();
  }

  /** The locking mode in force (decided from the table when the option is left out). */
  lockingMode(): Promise<LockingMode> {
    return this.store.lockingMode();
  }

  /** Closes the connections the store opened. */
  close(): Promise<void> {
    return this.store.close();
  }
}

export default SmartSessionStore;
