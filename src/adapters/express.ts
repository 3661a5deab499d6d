/**
 * express adapter: `session(options)`, a session middleware that replaces
 * express-session (its options, `req.session` and signed cookie, so users
 * stay logged in across the switch) and saves each request's delta; and
 * {@link SmartSessionStore}, a store for express-session itself, the
 * compatibility path.
 *
 * ```ts
 * import { session } from 'smart-session-store/express';
 *
 * app.use(session({
 *   url: 'postgres://postgres@127.0.0.1:5432/test',
 *   createTable: true,
 *   secret: process.env.SESSION_SECRET ?? 'change me',
 *   cookie: { maxAge: 24 * 3600 * 1000 },
 * }));
 * ```
 *
 * express-session is needed only by the Store: it is loaded when present,
 * and `session` works without it. `req.session` has the type
 * `@types/express-session` declares (express-session's own), so existing
 * `declare module 'express-session' { interface SessionData { ... } }`
 * augmentations keep typing it.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { Request, RequestHandler } from 'express';
import type expressSessionTypes from 'express-session';
import { isJsonObject } from '../core/json.js';
import type { SessionFormat } from '../core/session-format.js';
import { SessionStoreError } from '../errors.js';
import type { SessionStoreOptions } from '../options.js';
import { SessionStore } from '../store.js';
import { type Callback, cookieSessionFormat, settle } from './shared/cookie-session.js';
import { assertCookieName, assertCookieOptions, type SessionCookieOptions } from './shared/express-cookie.js';
import { ExpressSession, SessionLayer, type SessionRequest } from './shared/express-session-layer.js';
import { LoadLedger } from './shared/load-ledger.js';
import { optionalPeer } from './shared/optional-peer.js';
import { assertKeeperOptions } from './shared/session-keeper.js';
import { invalidOption, resolveIdHeader, resolveSecrets } from './shared/signed-cookie.js';
import { delegateStoreMethods, forwardStoreEvents, type StoreMethods, storeFromOption } from './shared/store-methods.js';

export type { SessionStoreOptions } from '../options.js';
export type { LockingMode } from '../core/options.js';
export type { UserSession, PurgeOptions, SessionStats } from '../core/session-store.js';
export { SessionStoreError };
export type { SessionStoreErrorCode } from '../errors.js';
export type { CookiePriority, CookieSameSite, SessionCookieOptions } from './shared/express-cookie.js';

/** The module, as errors and warnings name it. */
const ADAPTER = 'smart-session-store/express';

/** express-session, when it is installed (only the Store needs it). */
const expressSession = optionalPeer<typeof expressSessionTypes>('express-session');

/** The error of a Store method express-session alone calls, without express-session. */
function withoutExpressSession(): SessionStoreError {
  return new SessionStoreError(
    'ERR_INVALID_OPTION',
    `${ADAPTER}: SmartSessionStore is express-session's Store, and express-session is not installed (npm install express-session), or use session() from ${ADAPTER}`,
  );
}

/**
 * What {@link SmartSessionStore} extends without express-session: an
 * EventEmitter, as express-session's Store is. The store still serves
 * {@link session}; the methods only express-session calls say what is missing.
 */
class StoreWithoutExpressSession extends EventEmitter {
  regenerate(): void {
    throw withoutExpressSession();
  }
  load(): void {
    throw withoutExpressSession();
  }
  createSession(): never {
    throw withoutExpressSession();
  }
}

/** express-session's Store when it is installed, else a stand-in. */
const StoreBase = (expressSession?.Store ?? StoreWithoutExpressSession) as typeof expressSessionTypes.Store;

/** Options of {@link SmartSessionStore}: the store's options (see the README). */
export type SmartSessionStoreOptions = SessionStoreOptions;

/**
 * express-session's sessions: the `cookie` is its bookkeeping, and its
 * `expires` (rolled forward on every request) is the session's expiry.
 */
export const EXPRESS_SESSION_FORMAT: SessionFormat = cookieSessionFormat(['expires']);

/**
 * The store of {@link session}, and a store for express-session (the
 * compatibility path), saving only what each request changed, merged
 * into the latest stored session: overlapping requests of one user never
 * erase each other's changes, and a destroyed session stays destroyed.
 *
 * Under express-session, each request's session gets a handle of the store
 * when it is loaded (express-session hands the same session object back to
 * `set` and `touch`), so `set` can write the request's delta. Without
 * express-session installed, it is an EventEmitter serving {@link session}.
 */
export class SmartSessionStore extends StoreBase {
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
    this.#ledger = new LoadLedger(this.store, ADAPTER);
    // express-session stops using a store after `disconnect` and resumes after `connect`.
    forwardStoreEvents(this.store, this);
  }

  /** Loads a session; yields `null` when there is none or it has expired. */
  override get(sid: string, callback: (error: unknown, session?: expressSessionTypes.SessionData | null) => void): void {
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
        return handle.data as unknown as expressSessionTypes.SessionData;
      }),
      callback,
    );
  }

  /**
   * Called by express-session with what {@link get} returned: the request's
   * session object takes over its handle, so its `set` writes a delta.
   */
  override createSession(req: Request, data: expressSessionTypes.SessionData): expressSessionTypes.Session & expressSessionTypes.SessionData {
    const handle = this.#ledger.boundTo(data);
    const created = super.createSession(req, data);
    if (handle !== undefined) {
      this.#ledger.bind(created, handle);
      this.#ledger.claimed(handle.id);
    }
    return created;
  }

  /** Saves the request's changes (or the whole session, for a new one). */
  override set(sid: string, data: expressSessionTypes.SessionData, callback?: Callback): void {
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
  override touch(sid: string, data: expressSessionTypes.SessionData, callback?: Callback): void {
    const handle = this.#ledger.boundTo(data, sid);
    settle(handle !== undefined ? handle.touch(data) : this.store.touch(sid, data).then(() => undefined), callback);
  }

  /** Deletes the session; concurrent saves of it will not bring it back. */
  override destroy(sid: string, callback?: Callback): void {
    settle(this.store.destroy(sid), callback);
  }

  /** Every live session, as an array (session ids are stored hashed, so they cannot be listed). */
  override all(callback: (error: unknown, sessions?: expressSessionTypes.SessionData[] | null) => void): void {
    // Stored sessions are what express-session saved: its SessionData, in JSON form.
    settle(this.store.all() as unknown as Promise<expressSessionTypes.SessionData[]>, callback);
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

// The store's own methods: createTable, ready, close, purge, stats, destroyByUser, destroyByHandle, listByUser, lockingMode.
delegateStoreMethods(SmartSessionStore);
export interface SmartSessionStore extends StoreMethods {}

/**
 * Options of {@link session}: express-session's, and the store's own (`url`,
 * `createTable`, `ttl`, ... see docs/options.md), or a `store`.
 */
export interface SessionOptions extends SessionStoreOptions {
  /**
   * The secret the session cookie is signed with, or several: the first
   * signs, every one verifies, so a new secret goes first and an old one
   * stays behind it until the cookies it signed have expired (a cookie
   * signed with an older secret is signed again with the first). Signed as
   * express-session signs (HMAC-SHA256): the same secret reads its cookies.
   */
  secret: string | readonly string[];
  /** The session cookie's name. @default 'connect.sid' */
  name?: string | undefined;
  /**
   * The session cookie's name, under express-session's older option name.
   * @deprecated Use `name`.
   * @default undefined
   */
  key?: string | undefined;
  /**
   * The session cookie (`maxAge` in milliseconds), or a function of the
   * request returning it.
   * @default { path: '/', httpOnly: true, secure: false, maxAge: null }
   */
  cookie?: SessionCookieOptions | ((req: Request) => SessionCookieOptions) | undefined;
  /**
   * Makes a new session id. Ids must be unpredictable: whoever knows one holds the session.
   * @default 24 bytes of node:crypto randomness, base64url (as express-session's uid-safe)
   */
  genid?: ((req: Request) => string) | undefined;
  /**
   * Whether to trust `X-Forwarded-Proto` for `secure: 'auto'` and secure
   * cookies: `true` trusts it, `false` ignores it (only a TLS socket
   * counts), left undefined express's `req.secure` decides (its `trust proxy`).
   * @default undefined
   */
  proxy?: boolean | undefined;
  /**
   * Send the cookie on every response of a stored session, so its `maxAge`
   * runs from the latest request rather than from the latest change.
   * @default false
   */
  rolling?: boolean | undefined;
  /**
   * Store a new session (and send its cookie) even when the request put
   * nothing in it. Left `false`, a visitor whose requests store nothing
   * costs no write and gets no cookie. (express-session's default is `true`.)
   * @default false
   */
  saveUninitialized?: boolean | undefined;
  /**
   * What `req.session = null` (or `delete req.session`) does: `'keep'` the
   * stored session as it is, or `'destroy'` it at the end of the response.
   * @default 'keep'
   */
  unset?: 'keep' | 'destroy' | undefined;
  /**
   * A request header that may carry the session id instead of the cookie,
   * for API and mobile clients: `'x-session-id'`, say. Its value is the
   * cookie's, signed the same way (`s:<id>.<signature>`). A request that
   * sends it is answered in the same header whenever the cookie would have
   * been set (a new or regenerated session, `rolling`, a renewed signature)
   * and never gets a `Set-Cookie`; a request without it is served by the
   * cookie, and a new session's id is sent in both. A browser app reading
   * it across origins lists it in `Access-Control-Expose-Headers`.
   * @default undefined (the cookie only)
   */
  header?: string | undefined;
  /**
   * Accepted for express-session's sake, and without effect: a session is
   * written when the request changed it (only what changed), and an
   * unchanged one only has its expiry moved, once per `touchAfter`.
   * @default false
   */
  resave?: boolean | undefined;
  /**
   * A {@link SmartSessionStore} the application made (it then closes it),
   * or the store's options, given here rather than beside the others.
   * @default a store made of the other options
   */
  store?: SmartSessionStore | SessionStoreOptions | undefined;
}

/** The middleware {@link session} returns, with the store it saves through (close it when the application stops). */
export type SessionMiddleware = RequestHandler & {
  /** The store sessions are kept in. */
  readonly store: SmartSessionStore;
};

/** 24 random bytes, base64url: 32 characters, as express-session's ids. */
function randomSessionId(): string {
  return randomBytes(24).toString('base64url');
}

/**
 * A session middleware that replaces express-session: `req.session`,
 * `req.sessionID` and `req.sessionStore` as express-session gives them, its
 * signed cookie, and sessions stored as it stores them, so users stay
 * logged in when an application moves from express-session (with this
 * package's store) to this middleware, or back. Each request's session is
 * loaded once and committed once, when the response ends and before its
 * headers go out: only what the request changed is written, merged into the
 * latest stored session, so overlapping requests never erase each other's
 * changes. A store error goes to `next(error)`, the application's error
 * handler.
 *
 * @param options express-session's options and the store's (at least `url` and `secret`).
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the offending option.
 */
export function session(options: SessionOptions): SessionMiddleware {
  if (typeof options !== 'object' || options === null) throw invalidOption('options', 'must be an object with at least "url" and "secret"');
  const { secret, name: givenName, key, cookie = {}, genid, proxy, rolling, saveUninitialized, unset, resave, header, store, ...storeOptions } = options;
  const idHeader = resolveIdHeader(header);
  assertKeeperOptions({ rolling, saveUninitialized, genid: genid as (() => string) | undefined });
  if (unset !== undefined && unset !== 'keep' && unset !== 'destroy') throw invalidOption('unset', `must be "keep" or "destroy", got ${JSON.stringify(unset)}`);
  if (proxy !== undefined && typeof proxy !== 'boolean') throw invalidOption('proxy', 'must be true, false or undefined');
  if (resave !== undefined && typeof resave !== 'boolean') throw invalidOption('resave', 'must be true or false');
  const secrets = resolveSecrets(secret);
  const name = givenName ?? key ?? 'connect.sid';
  assertCookieName(name);
  if (typeof cookie !== 'function') assertCookieOptions(cookie);
  if (store !== undefined && Object.keys(storeOptions).length > 0) {
    throw invalidOption('store', `comes alone: the store's options (${Object.keys(storeOptions).join(', ')}) go inside it, or without "store"`);
  }
  const smartStore = storeFromOption(store ?? storeOptions, SmartSessionStore, ADAPTER);
  const layer = new SessionLayer(smartStore.store, smartStore, {
    name,
    secrets,
    cookie: cookie as SessionCookieOptions | ((req: SessionRequest) => SessionCookieOptions),
    genid: (genid as ((req: SessionRequest) => string) | undefined) ?? randomSessionId,
    proxy,
    rolling: rolling ?? false,
    saveUninitialized: saveUninitialized ?? false,
    unsetDestroy: unset === 'destroy',
    header: idHeader,
  });
  return Object.assign(layer.middleware as unknown as RequestHandler, { store: smartStore });
}

/**
 * Moves `req.session` to a new id keeping its data: `req.session.rotate()`
 * of the {@link session} middleware, as a promise and typed (express-session's
 * own types have no such method). Call it at login: this request's changes
 * are saved, then the stored session, with every change other requests
 * committed to it, goes under the new id, whose cookie the response sends;
 * the old id is dead at once.
 *
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` when `req.session` is not one of this middleware's (express-session's cannot rotate); the store's errors.
 */
export function rotateSession(req: Request): Promise<void> {
  const current: unknown = (req as { session?: unknown }).session;
  if (!(current instanceof ExpressSession)) {
    return Promise.reject(
      invalidOption(
        'req.session',
        "is not a session of smart-session-store/express's session() middleware: only those rotate (express-session's regenerate starts empty)",
      ),
    );
  }
  return new Promise((resolve, reject) => current.rotate((error) => (error === undefined || error === null ? resolve() : reject(error))));
}

export default SmartSessionStore;
