/**
 * Koa adapter. Two ways to keep Koa sessions in smart-session-store:
 *
 * - `smartSession(options, app)`: a session middleware of its own, with
 *   koa-session's options and `ctx.session` (no koa-session needed), over the
 *   store's per-request handle: each request writes only what it changed.
 *
 *   ```ts
 *   import Koa from 'koa';
 *   import { smartSession } from 'smart-session-store/koa';
 *
 *   const app = new Koa();
 *   app.keys = [process.env.SESSION_SECRET];
 *   app.use(smartSession({ store: { url: 'postgres://postgres@127.0.0.1:5432/test', createTable: true }, maxAge: 24 * 3600 * 1000 }, app));
 *   ```
 *
 * - `SmartSessionStore`: an external store for koa-session 7 (the
 *   compatibility path, for apps that keep koa-session). koa-session passes
 *   the request's `ctx` to every call of its store (`get`, `set`, `destroy`),
 *   so each load is filed under its `ctx`, and a save of the same key with
 *   the same `ctx` is diffed against it.
 *
 * Both store sessions in koa-session's shape (`_expire`, `_maxAge`) under
 * koa-session's cookie, so an application moves from one to the other
 * without logging anyone out. Neither imports koa-session.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import { isJsonObject, type JsonObject } from '../core/json.js';
import { SessionStoreError } from '../errors.js';
import type { SessionStoreOptions } from '../options.js';
import { SessionStore } from '../store.js';
import { KOA_SESSION_FORMAT } from './shared/koa-session-format.js';
import { type KoaApplication, type KoaContext, type KoaSessionOptions, KoaSessionLayer, resolveKoaSessionOptions } from './shared/koa-session-layer.js';
import { LoadLedger } from './shared/load-ledger.js';
import { invalidOption } from './shared/signed-cookie.js';
import { delegateStoreMethods, forwardStoreEvents, storeFromOption, type StoreMethods } from './shared/store-methods.js';

export type { SessionStoreOptions } from '../options.js';
export type { LockingMode } from '../core/options.js';
export type { UserSession, PurgeOptions, SessionStats } from '../core/session-store.js';
export { SessionStoreError };
export type { SessionStoreErrorCode } from '../errors.js';
export { KOA_SESSION_FORMAT };
export type {
  KoaApplication,
  KoaCommitOptions,
  KoaContext,
  KoaCookieOptions,
  KoaExternalKey,
  KoaSession,
  KoaSessionCallback,
  KoaSessionOptions,
  KoaSessionRequestOptions,
} from './shared/koa-session-layer.js';

/** The adapter's name, as the untied-session warning gives it. */
const ADAPTER = 'smart-session-store/koa';

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

// The store's own methods: createTable, ready, close, purge, stats, destroyByUser, destroyByHandle, listByUser, lockingMode.
delegateStoreMethods(SmartSessionStore);
export interface SmartSessionStore extends StoreMethods {}

/**
 * Options of {@link smartSession}: koa-session's own (`key`, `maxAge`,
 * `rolling`, `renew`, `signed`, `httpOnly`, `sameSite`, `secure`, `genid`,
 * `prefix`, `valid`, `beforeSave`, `externalKey`, `autoCommit`, ...), meaning
 * what they mean there, and `store`: smart-session-store's options (or a
 * {@link SmartSessionStore}). koa-session's `encode`, `decode` and
 * `ContextStore` have no use here, and are refused.
 *
 * @typeParam Context The Koa context the hooks (`genid`, `valid`, `beforeSave`, `externalKey`) are given.
 */
export interface SmartKoaSessionOptions<Context extends object = KoaContext> extends KoaSessionOptions<Context> {
  /**
   * Where and how sessions are stored: at least `url` (see the README,
   * "Options"), or a {@link SmartSessionStore} (which koa-session apps of the
   * same process may share).
   * @default (required)
   */
  store: SmartSessionStoreOptions | SmartSessionStore;
}

/** The session middleware, with the store it saves through (close it when the application stops). */
export interface SmartKoaSessionMiddleware {
  (ctx: object, next: () => Promise<unknown>): Promise<void>;
  /** The store sessions are kept in. */
  readonly store: SmartSessionStore;
}

/**
 * Koa session middleware of smart-session-store's own, with koa-session's
 * options and `ctx.session` (`ctx.session = null`, `ctx.session = { ... }`,
 * `isNew`, `maxAge`, `save()`, `regenerate()`, `manuallyCommit()`,
 * `ctx.sessionOptions`), and koa-session's cookie (signed with `app.keys`):
 * sessions stored by koa-session with {@link SmartSessionStore} stay valid.
 * After the downstream middleware, each request writes only what it changed
 * (nothing when it changed nothing), merged into the latest stored session.
 *
 * @param options koa-session's options, and `store`.
 * @param app The Koa application (`ctx.session` is added to its context).
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming an offending option, or when `store` is a store of
 *   another kind (the framework-neutral `SessionStore`, another adapter's).
 */
export function smartSession<Context extends object = KoaContext>(options: SmartKoaSessionOptions<Context>, app: KoaApplication): SmartKoaSessionMiddleware {
  if (typeof options !== 'object' || options === null) throw invalidOption('options', 'must be an object with at least "store"');
  if (typeof app?.use !== 'function' || typeof app.context !== 'object' || app.context === null)
    throw new TypeError('app instance required: `smartSession(options, app)`');
  const { store: given, ...sessionOptions } = options;
  if (given === undefined || given === null) throw invalidOption('store', "is required: the store's options ({ url, ... }) or a SmartSessionStore");
  // Checked before the store opens anything.
  const settings = resolveKoaSessionOptions(sessionOptions as KoaSessionOptions<never>);
  const store = storeFromOption(given, SmartSessionStore, ADAPTER);
  const layer = new KoaSessionLayer(store.store, settings, app);
  return Object.assign(layer.middleware, { store });
}

export default SmartSessionStore;
