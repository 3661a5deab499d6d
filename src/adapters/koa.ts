/**
 * koa-session adapter: an external store for koa-session 7, giving
 * `ctx.session` exactly as koa-session does, with sessions kept in
 * smart-session-store.
 *
 * ```ts
 * import Koa from 'koa';
 * import session from 'koa-session';
 * import { SmartSessionStore } from 'smart-session-store/koa';
 *
 * const app = new Koa();
 * app.keys = [process.env.SESSION_SECRET];
 * const store = new SmartSessionStore({ url: 'postgres://postgres@127.0.0.1:5432/test', createTable: true });
 * app.use(session({ store, maxAge: 24 * 3600 * 1000 }, app));
 * ```
 *
 * or, in one call, `app.use(smartSession({ store: { url }, maxAge }, app))`.
 *
 * How each request is tied to what it loaded: koa-session passes the
 * request's `ctx` to every call of its store (`get`, `set`, `destroy`), so
 * each load is filed under its `ctx`, and a save of the same key with the
 * same `ctx` is diffed against it. The loaded state is kept as JSON text
 * inside the store's handle: koa-session copies the loaded values into its
 * session by reference, and the application's changes to them never touch it.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import createSession, { type CreateSessionOptions } from 'koa-session';
import { isJsonObject, jsonEqual, type JsonObject } from '../core/json.js';
import type { SessionFormat } from '../core/session-format.js';
import { SessionStoreError } from '../errors.js';
import type { SessionStoreOptions } from '../options.js';
import { SessionStore } from '../store.js';
import { LoadLedger } from './shared/load-ledger.js';
import { delegateStoreMethods, forwardStoreEvents, storeFromOption, type StoreMethods } from './shared/store-methods.js';

export type { SessionStoreOptions } from '../options.js';
export type { LockingMode } from '../core/options.js';
export type { UserSession, PurgeOptions, SessionStats } from '../core/session-store.js';
export { SessionStoreError };
export type { SessionStoreErrorCode } from '../errors.js';

/** The adapter's name, as the untied-session warning gives it. */
const ADAPTER = 'smart-session-store/koa';

/**
 * koa-session's sessions as it hands them to its store: the application's
 * keys plus its bookkeeping, `_expire` (when the session expires, epoch ms)
 * and `_maxAge` (the lifetime it was given), or `_session: true` for a
 * browser-session cookie. The bookkeeping is never diffed as data; `_expire`
 * is the session's expiry, and its moving alone is no change (the expiry is
 * then only touched, at most once per `touchAfter`); a changed `_maxAge` or
 * `_session` is written. A browser-session session lives `ttl` seconds from
 * its last write or touch.
 */
export const KOA_SESSION_FORMAT: SessionFormat = {
  bookkeeping: new Set(['_expire', '_maxAge', '_session']),
  bookkeepingChanged(loaded, current) {
    const { _maxAge: maxAge, _session: browserSession } = current;
    const liveMaxAge = typeof maxAge === 'number' ? maxAge : undefined;
    return !jsonEqual(loaded['_maxAge'], liveMaxAge) || (loaded['_session'] === true) !== (browserSession === true);
  },
  expiresAt(live) {
    const expire: unknown = (live as { _expire?: unknown })._expire;
    return typeof expire === 'number' && Number.isFinite(expire) ? expire : undefined;
  },
};

/** The options koa-session passes to its store's `get` and `destroy`. */
export interface KoaStoreCallOptions {
  /** The request's context: what ties a save to its load. */
  ctx?: unknown;
  /** koa-session's `rolling` option. */
  rolling?: boolean;
}

/** The options koa-session passes to its store's `set`. */
export interface KoaStoreSetOptions extends KoaStoreCallOptions {
  /**
   * koa-session's own verdict on whether the data changed. Not relied on:
   * koa-session also says `false` for `ctx.session.save()` and after a
   * regenerate, changed or not; the store compares with what was loaded.
   */
  changed?: boolean;
}

/** Options of {@link SmartSessionStore}: the store's options (see the README). */
export type SmartSessionStoreOptions = SessionStoreOptions;

/**
 * A koa-session external store that saves only what each request changed,
 * merged into the latest stored session: overlapping requests never erase
 * each other's changes, and a destroyed session stays destroyed.
 *
 * Pass it as koa-session's `store`. Besides koa-session's store interface it
 * has the store's management methods (`createTable`, `ready`, `close`,
 * `purge`, `stats`, `destroyByUser`, `listByUser`, `lockingMode`) and events
 * (`connect`, `disconnect`, `purge`, `purgeError`).
 */
export class SmartSessionStore extends EventEmitter {
  /** The framework-neutral store underneath. */
  readonly store: SessionStore;
  /** What each request (by its `ctx`) loaded or created, by key: the handle its saves go through. */
  readonly #ledger: LoadLedger;

  /**
   * @param options Where and how to store sessions; at least `url`.
   * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the offending option.
   */
  constructor(options: SmartSessionStoreOptions) {
    super();
    this.store = new SessionStore(options, { format: KOA_SESSION_FORMAT });
    this.#ledger = new LoadLedger(this.store, ADAPTER, "Use it as koa-session 7's store, which passes each request's ctx to get, set and destroy");
    forwardStoreEvents(this.store, this);
  }

  /**
   * Loads a session for koa-session; `undefined` when there is none or it
   * has expired. (`maxAge` is koa-session's; the stored expiry decides.)
   */
  async get(key: string, _maxAge?: number | 'session', options?: KoaStoreCallOptions): Promise<JsonObject | undefined> {
    const handle = await this.store.open(key);
    if (handle === null) return undefined;
    const { data } = handle;
    // koa-session drops a session whose `_expire` has passed; the stored document keeps the expiry of its last
    // write, the row the (later) one of its last touch: koa-session must see the latter.
    if (typeof data['_expire'] === 'number' && handle.expiresAt !== undefined) data['_expire'] = handle.expiresAt;
    // Filed under the request's ctx; loaded without one, untied: its save then warns.
    this.#ledger.loaded(handle, contextOf(options));
    // koa-session copies these values by reference; the loaded state stays inside the handle, as text.
    return data;
  }

  /**
   * Saves a session for koa-session: only what the request changed (keys it
   * set, changed or deleted, a whole-object replacement included), merged
   * into the latest stored session; for an unchanged one, at most its expiry
   * (once per `touchAfter`); a new one whole.
   */
  async set(key: string, session: object, _maxAge?: number | 'session', options?: KoaStoreSetOptions): Promise<void> {
    if (!isJsonObject(session))
      throw new SessionStoreError('ERR_VALUE_NOT_STORABLE', `a session must be an object, got ${Array.isArray(session) ? 'an array' : typeof session}`);
    // koa-session hands `set` a new copy of its session each time: the save is tied to its load by the ctx alone.
    await this.#ledger.forSave(key, session, contextOf(options)).commit(session);
  }

  /** Deletes a session for koa-session; concurrent saves of it will not bring it back. */
  async destroy(key: string, options?: KoaStoreCallOptions): Promise<void> {
    await this.#ledger.destroy(key, contextOf(options));
  }
}

/** The request's context koa-session passed, if it is one. */
function contextOf(options: KoaStoreCallOptions | undefined): object | undefined {
  const ctx = options?.ctx;
  return typeof ctx === 'object' && ctx !== null ? ctx : undefined;
}

// The store's own methods: createTable, ready, close, purge, stats, destroyByUser, listByUser, lockingMode.
delegateStoreMethods(SmartSessionStore);
export interface SmartSessionStore extends StoreMethods {}

/**
 * Options of {@link smartSession}: koa-session's own (`key`, `maxAge`,
 * `rolling`, `renew`, `signed`, `httpOnly`, `sameSite`, `secure`, `genid`,
 * `valid`, `beforeSave`, `externalKey`, ...), meaning what they mean there,
 * with `store` taking smart-session-store's options (or a store of this
 * module). koa-session's cookie-only options (`encode`, `decode`) and
 * `ContextStore` have no use with a store, and are not taken.
 */
export interface SmartKoaSessionOptions extends Omit<CreateSessionOptions, 'store' | 'ContextStore' | 'encode' | 'decode'> {
  /** Where and how sessions are stored: at least `url` (see the README, "Options"), or a {@link SmartSessionStore}. */
  store: SmartSessionStoreOptions | SmartSessionStore;
}

/** A Koa application, as far as koa-session needs one. */
export interface KoaApplication {
  use(...middleware: never[]): unknown;
  readonly context: object;
}

/** koa-session's middleware, with the store it saves through (close it when the application stops). */
export interface SmartKoaSessionMiddleware {
  (ctx: object, next: () => Promise<unknown>): Promise<void>;
  /** The store sessions are kept in. */
  readonly store: SmartSessionStore;
}

/**
 * koa-session's middleware with its sessions kept in smart-session-store:
 * `koaSession({ ...options, store: new SmartSessionStore(options.store) }, app)`.
 *
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming an offending store option, or when `store` is a store of
 *   another kind (the framework-neutral `SessionStore`, another adapter's).
 */
export function smartSession(options: SmartKoaSessionOptions, app: KoaApplication): SmartKoaSessionMiddleware {
  const { store: given, ...sessionOptions } = options;
  const store = storeFromOption(given, SmartSessionStore, ADAPTER);
  const middleware = createSession({ ...sessionOptions, store }, app);
  return Object.assign((ctx: object, next: () => Promise<unknown>) => middleware(ctx, next), { store });
}

export default SmartSessionStore;
