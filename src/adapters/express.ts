/**
 * express-session adapter.
 *
 * ```ts
 * import session from 'express-session';
 * import { SmartSessionStore } from 'smart-session-store/express';
 *
 * app.use(session({
 *   secret: process.env.SESSION_SECRET ?? 'change me',
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
import { isJsonObject } from '../core/json.js';
import type { SessionFormat } from '../core/session-format.js';
import { SessionStoreError } from '../errors.js';
import { SessionStore } from '../store.js';
import type { SessionStoreOptions } from '../options.js';
import { cookieSessionFormat, settle, type Callback } from './shared/cookie-session.js';
import { LoadLedger } from './shared/load-ledger.js';
import { delegateStoreMethods, forwardStoreEvents, type StoreMethods } from './shared/store-methods.js';

export type { SessionStoreOptions } from '../options.js';
export type { LockingMode } from '../core/options.js';
export type { UserSession, PurgeOptions, SessionStats } from '../core/session-store.js';
export { SessionStoreError };
export type { SessionStoreErrorCode } from '../errors.js';

/** Options of {@link SmartSessionStore}: the store's options (see the README). */
export type SmartSessionStoreOptions = SessionStoreOptions;

/**
 * express-session's sessions: the `cookie` is its bookkeeping, and its
 * `expires` (rolled forward on every request) is the session's expiry.
 */
export const EXPRESS_SESSION_FORMAT: SessionFormat = cookieSessionFormat(['expires']);

/**
 * An express-session store that saves only what each request changed, merged
 * into the latest stored session: overlapping requests of one user never
 * erase each other's changes, and a destroyed session stays destroyed.
 *
 * Each request's session gets a handle of the store when it is loaded
 * (express-session hands the same session object back to `set` and
 * `touch`), so `set` can write the request's delta.
 */
export class SmartSessionStore extends session.Store {
  /** The framework-neutral store underneath, promise-based. */
  readonly store: SessionStore;
  /**
   * The handle each session object saves through. express-session's `get`
   * knows no request, so a load is untied until express-session makes the
   * request's session object from it (`createSession`), which takes it over.
   */
  readonly #ledger: LoadLedger;

  /**
   * @param options Where and how to store sessions; at least `url`.
   * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the offending option.
   */
  constructor(options: SmartSessionStoreOptions) {
    super();
    this.store = new SessionStore(options, { format: EXPRESS_SESSION_FORMAT });
    this.#ledger = new LoadLedger(this.store, 'smart-session-store/express');
    // express-session stops using a store after `disconnect` and resumes after `connect`.
    forwardStoreEvents(this.store, this);
  }

  /** Loads a session; yields `null` when there is none or it has expired. */
  override get(sid: string, callback: (error: unknown, session?: session.SessionData | null) => void): void {
    settle(
      this.store.open(sid).then((handle) => {
        if (handle === null) return null;
        const { cookie } = handle.data;
        // express-session rebuilds its Cookie from this; anything but an object would throw in there.
        if (cookie === undefined) handle.data['cookie'] = { originalMaxAge: null, expires: null, httpOnly: true, path: '/' };
        else if (!isJsonObject(cookie)) throw new SessionStoreError('ERR_CORRUPT_ROW', 'stored session has a cookie that is not an object');
        // A touch moves only the stored expiry, not the JSON: the cookie gets the expiry the session really has,
        // so req.session.cookie.maxAge is right in every request. A cookie without expiry (a browser session) stays so.
        // As a Date, which express-session's Cookie takes as it is (a string it would parse again).
        else if (cookie['expires'] !== null && cookie['expires'] !== undefined && handle.expiresAt !== undefined) {
          (cookie as Record<string, unknown>)['expires'] = new Date(handle.expiresAt);
        }
        this.#ledger.bind(handle.data, handle);
        this.#ledger.loaded(handle, undefined);
        return handle.data as unknown as session.SessionData;
      }),
      callback,
    );
  }

  /**
   * Called by express-session with what {@link get} returned: the request's
   * session object takes over its handle, so its `set` writes a delta.
   */
  override createSession(req: Request, data: session.SessionData): session.Session & session.SessionData {
    const handle = this.#ledger.boundTo(data);
    const created = super.createSession(req, data);
    if (handle !== undefined) {
      this.#ledger.bind(created, handle);
      this.#ledger.claimed(handle.id);
    }
    return created;
  }

  /** Saves the request's changes (or the whole session, for a new one). */
  override set(sid: string, data: session.SessionData, callback?: Callback): void {
    settle(
      (async () => {
        // A session loaded by `get` but handed back as another object (the framework is not express-session)
        // is stored whole, with a warning; a new one is stored whole, as it must be.
        await this.#ledger.forSessionSave(sid, data, undefined).commit(data);
      })(),
      callback,
    );
  }

  /** Moves the expiry forward, writing only when it moves by more than `touchAfter`. */
  override touch(sid: string, data: session.SessionData, callback?: Callback): void {
    const handle = this.#ledger.boundTo(data, sid);
    settle(handle !== undefined ? handle.touch(data) : this.store.touch(sid, data).then(() => undefined), callback);
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
}

// The store's own methods: createTable, ready, close, purge, stats, destroyByUser, listByUser, lockingMode.
delegateStoreMethods(SmartSessionStore);
export interface SmartSessionStore extends StoreMethods {}

export default SmartSessionStore;
