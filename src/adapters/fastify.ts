/**
 * Fastify adapter: a plugin that gives `request.session` exactly as
 * @fastify/session does (it registers @fastify/session itself, with the
 * options you pass), with sessions kept in smart-session-store.
 *
 * ```ts
 * import Fastify from 'fastify';
 * import smartSession from 'smart-session-store/fastify';
 *
 * const app = Fastify();
 * await app.register(smartSession, {
 *   secret: process.env.SESSION_SECRET, // at least 32 characters
 *   cookie: { maxAge: 24 * 3600 * 1000 },
 *   store: { url: 'postgres://postgres@127.0.0.1:5432/test', createTable: true },
 * });
 * app.post('/visit', async (request) => ({ visits: (request.session.visits = (request.session.visits ?? 0) + 1) }));
 * ```
 *
 * `store` may also be a {@link SmartSessionStore} the application made
 * (`new SmartSessionStore({ url })`), which the application then closes.
 *
 * How each request is tied to what it loaded: @fastify/session calls its
 * store's `get`, `set` and `destroy` with a session id only. The plugin runs
 * @fastify/session's hooks inside an `AsyncLocalStorage` context holding the
 * request (entered by an `onRequest` hook registered just before
 * @fastify/session's), so `get` files the session it loads under its
 * request, whatever other hooks the application adds, sync or async. The
 * session object @fastify/session builds from it is then bound to that load
 * (at the end of `onRequest` and again at the start of `onSend`, by the
 * request the hooks are given), so the save @fastify/session makes in
 * `onSend` finds its load even when the application lost the async context
 * (a callback-style library in a handler). The loaded state is kept as JSON
 * text inside the store's handle: @fastify/session copies the loaded values
 * by reference, and the application's changes to them never touch it.
 *
 * Differences from @fastify/session used with its own stores:
 * `saveUninitialized` is off by default; a save of an unchanged session
 * (`rolling`, the default) writes nothing but, once per `touchAfter`, its
 * expiry; and a session whose cookie an older secret signed gets its cookie
 * re-signed rather than cleared (@fastify/session clears it when
 * `saveUninitialized` is off and nothing changed).
 *
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { EventEmitter } from 'node:events';
import fastifyCookie from '@fastify/cookie';
import fastifySession, { type FastifySessionOptions } from '@fastify/session';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest, Session } from 'fastify';
import fp from 'fastify-plugin';
import { isJsonObject } from '../core/json.js';
import type { SessionFormat } from '../core/session-format.js';
import { SessionStoreError } from '../errors.js';
import type { SessionStoreOptions } from '../options.js';
import { SessionStore } from '../store.js';
import { cookieSessionFormat, settle, type Callback, type ValueCallback } from './shared/cookie-session.js';
import { LoadLedger } from './shared/load-ledger.js';
import { delegateStoreMethods, forwardStoreEvents, storeFromOption, type StoreMethods } from './shared/store-methods.js';

export type { SessionStoreOptions } from '../options.js';
export type { LockingMode } from '../core/options.js';
export type { UserSession, PurgeOptions, SessionStats } from '../core/session-store.js';
export { SessionStoreError };
export type { SessionStoreErrorCode } from '../errors.js';

/** The adapter's name, as the untied-session warning gives it. */
const ADAPTER = 'smart-session-store/fastify';

/**
 * @fastify/session's sessions: the top-level `cookie` is its bookkeeping, and
 * its `expires` is the session's expiry. @fastify/session rolls `expires`
 * forward on every load and keeps the previous one as `originalExpires`:
 * neither is a change on its own.
 */
export const FASTIFY_SESSION_FORMAT: SessionFormat = cookieSessionFormat(['expires', 'originalExpires']);

/** The request's @fastify/session Session, if it has one (`request.session` is `{}` off the cookie's path, `null` after destroy). */
function sessionObjectOf(request: FastifyRequest): (object & { readonly sessionId: string }) | undefined {
  const session: unknown = request.session;
  if (typeof session !== 'object' || session === null) return undefined;
  const id: unknown = (session as { sessionId?: unknown }).sessionId;
  return typeof id === 'string' ? (session as object & { readonly sessionId: string }) : undefined;
}

/** What the plugin does with its store's request bookkeeping, kept off the store's public surface. */
interface PluginAccess {
  /** Runs the rest of the request's hooks (and so everything after them) knowing the request. */
  enter(store: SmartSessionStore, request: FastifyRequest, next: () => void): void;
  /** Ties the request's current session object to what the request loaded. */
  bind(store: SmartSessionStore, request: FastifyRequest): void;
  /** True when the request loaded the session under this id from the store (not made it new). */
  loaded(store: SmartSessionStore, request: FastifyRequest, sessionId: string): boolean;
}
let pluginAccess!: PluginAccess;

/**
 * The store the plugin hands @fastify/session, decorating the Fastify
 * instance as `fastify.sessionStore`: @fastify/session's store interface
 * (`get`, `set`, `destroy`, called by @fastify/session), the store's
 * management methods (`createTable`, `ready`, `close`, `purge`, `stats`,
 * `destroyByUser`, `listByUser`, `lockingMode`) and its events (`connect`,
 * `disconnect`, `purge`, `purgeError`).
 *
 * The plugin makes one from `store`'s options, or takes one made by the
 * application (`store: new SmartSessionStore({ url })`, to use it before or
 * beside the app). Give it to the plugin, never to @fastify/session
 * directly: only the plugin's hooks tie each request to what it loaded.
 */
export class SmartSessionStore extends EventEmitter {
  /** The framework-neutral store underneath, promise-based. */
  readonly store: SessionStore;
  /** The request whose hooks, handler and store calls are running. */
  readonly #requests = new AsyncLocalStorage<FastifyRequest>();
  /**
   * What each request loaded or created, by session id, and the handle each
   * of @fastify/session's Session objects saves through; ids loaded outside
   * any request the plugin knows are untied.
   */
  readonly #ledger: LoadLedger;

  /**
   * @param options Where and how to store sessions; at least `url`.
   * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the offending option.
   */
  constructor(options: SessionStoreOptions) {
    super();
    this.store = new SessionStore(options, { format: FASTIFY_SESSION_FORMAT });
    this.#ledger = new LoadLedger(
      this.store,
      ADAPTER,
      'Register the store only through the smart-session-store/fastify plugin, and keep session calls inside the request',
    );
    forwardStoreEvents(this.store, this);
  }

  static {
    pluginAccess = {
      enter: (store, request, next) => store.#requests.run(request, next),
      bind: (store, request) => store.#bind(request),
      loaded: (store, request, sessionId) => store.#ledger.loadedBy(sessionId, request),
    };
  }

  /**
   * Binds the request's current session object to what the request loaded,
   * by the request itself (no async context needed): the save
   * @fastify/session makes then finds its load.
   */
  #bind(request: FastifyRequest): void {
    const session = sessionObjectOf(request);
    if (session === undefined || this.#ledger.boundTo(session, session.sessionId) !== undefined) return;
    const handle = this.#ledger.handleOf(session.sessionId, request);
    if (handle !== undefined) this.#ledger.bind(session, handle);
  }

  /** Loads a session for @fastify/session; yields `null` when there is none or it has expired. */
  get(sessionId: string, callback: ValueCallback<Session | null>): void {
    const request = this.#requests.getStore();
    settle(
      this.store.open(sessionId).then((handle) => {
        if (handle === null) return null;
        const { cookie } = handle.data;
        if (cookie !== undefined && !isJsonObject(cookie)) throw new SessionStoreError('ERR_CORRUPT_ROW', 'stored session has a cookie that is not an object');
        // @fastify/session regenerates a session whose stored `expires` has passed; the stored document keeps the
        // expiry of its last write, the row the (later) one of its last touch: @fastify/session must see the latter.
        if (cookie !== undefined && cookie['expires'] != null && handle.expiresAt !== undefined) {
          cookie['expires'] = new Date(handle.expiresAt).toISOString();
        }
        // A reload in the same request replaces what the request loaded before.
        this.#ledger.loaded(handle, request);
        // @fastify/session copies these values by reference; the loaded state stays inside the handle, as text.
        return handle.data as unknown as Session;
      }),
      callback,
    );
  }

  /**
   * Saves a session for @fastify/session: only what the request changed,
   * merged into the latest stored session; for an unchanged one, at most its
   * expiry (once per `touchAfter`); a new one whole.
   */
  set(sessionId: string, session: Session, callback: Callback): void {
    settle(
      (async () => {
        // The Session object's own tie first: it holds even where the application lost the async context.
        await this.#ledger.forSessionSave(sessionId, session, this.#requests.getStore()).commit(session);
      })(),
      callback,
    );
  }

  /** Deletes a session for @fastify/session; concurrent saves of it will not bring it back. */
  destroy(sessionId: string, callback: Callback): void {
    settle(this.#ledger.destroy(sessionId, this.#requests.getStore()), callback);
  }
}

// The store's own methods: createTable, ready, close, purge, stats, destroyByUser, listByUser, lockingMode.
delegateStoreMethods(SmartSessionStore);
export interface SmartSessionStore extends StoreMethods {}

/**
 * Options of the plugin: @fastify/session's own (`secret`, `cookie`,
 * `cookieName`, `cookiePrefix`, `rolling`, `idGenerator`, `algorithm`, ...),
 * meaning what they mean there, with `store` taking the options of
 * smart-session-store.
 */
export interface SmartSessionOptions extends Omit<FastifySessionOptions, 'store' | 'saveUninitialized'> {
  /**
   * Where and how sessions are stored: at least `url` (or `connection`); see
   * the README, "Options". The plugin opens that store and closes it when
   * Fastify closes. Or a {@link SmartSessionStore} the application made: the
   * application closes that one (it may outlive the app, or serve several).
   * Any other store (the framework-neutral `SessionStore`, another
   * adapter's) is refused: its sessions are in another format.
   */
  store: SessionStoreOptions | SmartSessionStore;
  /**
   * Store (and send a cookie for) a session that is new and unchanged.
   * Unlike @fastify/session, off by default: a request that puts nothing in
   * its session inserts nothing (no row for every visitor, bot or probe).
   * @default false
   */
  saveUninitialized?: boolean;
}

declare module 'fastify' {
  interface FastifyInstance {
    /** smart-session-store's store, as registered by `smart-session-store/fastify`: its management methods and events. */
    sessionStore: SmartSessionStore;
  }
}

const plugin: FastifyPluginAsync<SmartSessionOptions> = async (fastify: FastifyInstance, options: SmartSessionOptions) => {
  const { store: given, ...sessionOptions } = options;
  const store = storeFromOption(given, SmartSessionStore, ADAPTER);
  fastify.decorate('sessionStore', store);
  // A store the application made is the application's to close: it may serve other apps, or outlive this one.
  if (store !== given) {
    fastify.addHook('onClose', async () => {
      await store.close();
    });
  }
  // @fastify/session needs @fastify/cookie; one the application registered itself (with its own options) is kept.
  if (!fastify.hasPlugin('@fastify/cookie')) await fastify.register(fastifyCookie);
  // These run right before @fastify/session's hooks of the same kind (hooks run in the order they are added).
  fastify.addHook('onRequest', function enterSessionRequest(request, _reply, done) {
    pluginAccess.enter(store, request, done);
  });
  const cookieName = sessionOptions.cookieName ?? 'sessionId';
  const cookiePrefix = sessionOptions.cookiePrefix ?? '';
  const saveUninitialized = sessionOptions.saveUninitialized ?? false;
  fastify.addHook('onSend', function bindSessionBeforeSave(request, _reply, payload, done) {
    pluginAccess.bind(store, request);
    const session = sessionObjectOf(request);
    const cookie = request.cookies[cookieName];
    // A stored session whose cookie an older secret signed is, for @fastify/session, a new session: unless it was
    // changed, with saveUninitialized: false it would clear that cookie, logging the user out after a secret
    // rotation. Saved (which writes at most its expiry), it gets its cookie again, signed with the current secret.
    if (
      saveUninitialized ||
      session === undefined ||
      cookie === undefined ||
      cookie === cookiePrefix + request.session.encryptedSessionId ||
      request.session.isModified() ||
      !pluginAccess.loaded(store, request, session.sessionId)
    ) {
      done(null, payload);
      return;
    }
    request.session.save().then(
      () => done(null, payload),
      (error: unknown) => done(error instanceof Error ? error : new Error(String(error))),
    );
  });
  await fastify.register(fastifySession, { ...sessionOptions, saveUninitialized: sessionOptions.saveUninitialized ?? false, store });
  // This one right after @fastify/session's onRequest, which has made request.session.
  fastify.addHook('onRequest', function bindLoadedSession(request, _reply, done) {
    pluginAccess.bind(store, request);
    done();
  });
};

/**
 * The plugin: registers @fastify/session (and @fastify/cookie, unless it is
 * registered already) with the options given, its sessions kept in
 * smart-session-store. Not encapsulated: `request.session` exists on every
 * route, `fastify.sessionStore` on the instance.
 *
 * Every overlapping request's change is kept (each save writes only what its
 * request changed), a request that changed nothing writes nothing but, with
 * `rolling`, a throttled expiry, and destroy and regenerate stick.
 */
export const smartSession = fp(plugin, { fastify: '5.x', name: 'smart-session-store' });

export default smartSession;
