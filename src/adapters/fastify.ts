/**
 * Fastify adapter: {@link smartSession}, a plugin that is its own session
 * layer (no @fastify/session), giving `request.session` with
 * @fastify/session's API, options and signed cookie, and saving each
 * request's delta; and, the compatibility path, {@link SmartSessionStore}
 * under @fastify/session itself ({@link withFastifySession} registers the
 * two together).
 *
 * ```ts
 * import Fastify from 'fastify';
 * import smartSession from 'smart-session-store/fastify';
 *
 * const app = Fastify();
 * await app.register(smartSession, {
 *   secret: process.env.SESSION_SECRET, // at least 32 characters
 *   cookie: { maxAge: 24 * 3600 * 1000, secure: 'auto' },
 *   store: { url: 'postgres://postgres@127.0.0.1:5432/test', createTable: true },
 * });
 * app.post('/visit', async (request) => ({ visits: (request.session.visits = (request.session.visits ?? 0) + 1) }));
 * ```
 *
 * `store` may also be a {@link SmartSessionStore} the application made
 * (`new SmartSessionStore({ url })`), which the application then closes.
 * The plugin needs Fastify only: neither @fastify/session nor
 * @fastify/cookie nor fastify-plugin is loaded by it, and the cookie is
 * @fastify/session's (`<id>.<HMAC-SHA256>`, same secrets), its sessions
 * stored as @fastify/session stores them through {@link SmartSessionStore}:
 * users moving between the two stay logged in.
 *
 * @module
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest, Session } from 'fastify';
import { isJsonObject } from '../core/json.js';
import type { SessionFormat } from '../core/session-format.js';
import { SessionStoreError } from '../errors.js';
import type { SessionStoreOptions } from '../options.js';
import { SessionStore } from '../store.js';
import { type Callback, cookieSessionFormat, settle, type ValueCallback } from './shared/cookie-session.js';
import {
  assertFastifyCookieOptions,
  type CookieSource,
  type FastifyCookiePriority,
  type FastifyCookieSameSite,
  type FastifySessionCookie,
  type FastifySessionCookieOptions,
  type SessionSigner,
  signerOf,
} from './shared/fastify-cookie.js';
import { FastifySessionLayer, type LayerRequest } from './shared/fastify-session-layer.js';
import { LoadLedger } from './shared/load-ledger.js';
import { optionalPeer } from './shared/optional-peer.js';
import { assertKeeperOptions } from './shared/session-keeper.js';
import { invalidOption, resolveIdHeader } from './shared/signed-cookie.js';
import { delegateStoreMethods, forwardStoreEvents, type StoreMethods, storeFromOption } from './shared/store-methods.js';

export type { SessionStoreOptions } from '../options.js';
export type { LockingMode } from '../core/options.js';
export type { UserSession, PurgeOptions, SessionStats } from '../core/session-store.js';
export { SessionStoreError };
export type { SessionStoreErrorCode } from '../errors.js';
export type { CookieSource, FastifyCookiePriority, FastifyCookieSameSite, FastifySessionCookie, FastifySessionCookieOptions, SessionSigner };
/** What sessions hold: `fastify`'s `Session` interface, which the application declares its keys in (`declare module 'fastify' { interface Session { ... } }`). */
export type { Session };

/** The adapter's name, as errors and warnings give it. */
const ADAPTER = 'smart-session-store/fastify';

/**
 * @fastify/session's sessions: the top-level `cookie` is its bookkeeping, and
 * its `expires` is the session's expiry. @fastify/session rolls `expires`
 * forward on every load and keeps the previous one as `originalExpires`:
 * neither is a change on its own. The plugin's own layer stores sessions in
 * this same shape.
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
 * The sessions' store, decorating the Fastify instance as
 * `fastify.sessionStore` (and the request as `request.sessionStore`): the
 * store's management methods (`createTable`, `ready`, `close`, `purge`,
 * `stats`, `destroyByUser`, `listByUser`, `lockingMode`), its events
 * (`connect`, `disconnect`, `purge`, `purgeError`), and @fastify/session's
 * store interface (`get`, `set`, `destroy`), for the compatibility path.
 *
 * The plugins make one from `store`'s options, or take one made by the
 * application (`store: new SmartSessionStore({ url })`, to use it before or
 * beside the app). Under @fastify/session, register it with
 * {@link withFastifySession}, not by handing it to @fastify/session
 * directly: only that plugin's hooks tie each request to what it loaded.
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
      'Register the store through the smartSession or withFastifySession plugin of smart-session-store/fastify, and keep session calls inside the request',
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

// The store's own methods: createTable, ready, close, purge, stats, destroyByUser, destroyByHandle, listByUser, lockingMode.
delegateStoreMethods(SmartSessionStore);
export interface SmartSessionStore extends StoreMethods {}

/**
 * Options of the plugins: @fastify/session's, meaning what they mean there,
 * with `store` taking smart-session-store's options (or a
 * {@link SmartSessionStore}).
 */
export interface SmartSessionOptions {
  /**
   * The secret the cookie is signed with: a string of 32 characters or
   * more; or an array of them, the first signing, every one verifying (a
   * rotation: a cookie an older one signed is sent again, signed with the
   * first; the array may be changed in place); or a signer object with
   * `sign(value)` and `unsign(value)` (@fastify/cookie's `Signer`).
   */
  secret: string | string[] | SessionSigner;
  /**
   * The HMAC's hash, for a string or array `secret`.
   * @default 'sha256'
   */
  algorithm?: string;
  /**
   * The session cookie's name.
   * @default 'sessionId'
   */
  cookieName?: string;
  /**
   * Put before the signed id in the cookie's value (`'s:'` reads and writes
   * express-session's format).
   * @default ''
   */
  cookiePrefix?: string;
  /**
   * The session cookie: `maxAge` (milliseconds), `expires`, `httpOnly`,
   * `secure` (`true`, `false`, `'auto'`), `sameSite`, `path`, `domain`,
   * `partitioned`, `priority`.
   * @default { path: '/', httpOnly: true, secure: true }
   */
  cookie?: FastifySessionCookieOptions;
  /**
   * Send the cookie, with its expiry moved to `maxAge` from now, on every
   * response of a stored session. An unchanged session costs no data write:
   * its stored expiry moves only once per `touchAfter`.
   * @default true
   */
  rolling?: boolean;
  /**
   * Store (and send a cookie for) a new session nobody put anything in.
   * Unlike @fastify/session, off by default: a request that puts nothing in
   * its session inserts nothing (no row for every visitor, bot or probe).
   * @default false
   */
  saveUninitialized?: boolean;
  /**
   * Makes a new session id (given the request). Ids must be unpredictable:
   * whoever knows one holds the session.
   * @default 24 random bytes (node:crypto), base64url: 32 characters
   */
  idGenerator?: (request?: FastifyRequest) => string;
  /**
   * A request header that may carry the session id instead of the cookie,
   * for API and mobile clients: `'x-session-id'`, say. Its value is the
   * cookie's signed id (`encryptedSessionId`, without `cookiePrefix`). A
   * request that sends it is answered in the same header when its id is new
   * (a new or regenerated session), `rolling` is on, or its signature was
   * renewed, and never gets a `Set-Cookie`; a request without it is served
   * by the cookie, and a new session's id is sent in both. A browser app
   * reading it across origins lists it in `Access-Control-Expose-Headers`.
   * @default undefined (the cookie only)
   */
  header?: string;
  /**
   * Where and how sessions are stored: at least `url` (or `connection`); see
   * the README, "Options". The plugin opens that store and closes it when
   * Fastify closes. Or a {@link SmartSessionStore} the application made: the
   * application closes that one (it may outlive the app, or serve several).
   * Any other store (the framework-neutral `SessionStore`, another
   * adapter's) is refused: its sessions are in another format.
   */
  store: SessionStoreOptions | SmartSessionStore;
}

/**
 * `request.session`: @fastify/session's session object. The data are its
 * own properties (declare them in `fastify`'s `Session` interface), beside
 * `cookie`; nothing is written until the response is sent (or `save()`),
 * and then only what this request changed.
 */
export interface FastifySessionObject extends Session {
  /** The session id. */
  readonly sessionId: string;
  /** The signed id: the cookie's value, without `cookiePrefix`. */
  readonly encryptedSessionId: string;
  /**
   * The session's cookie: `maxAge`, `originalMaxAge`, `expires` and its
   * attributes, stored with the session. (Where @fastify/session's types are
   * loaded too, `Session` declares a `cookie` of its own: this is both.)
   */
  cookie: Session extends { cookie: infer Declared } ? FastifySessionCookie & Declared : FastifySessionCookie;
  /** The value under `key`. */
  get<K extends keyof Session>(key: K): Session[K] | undefined;
  /** Sets `key` (`__proto__`, `constructor` and `prototype` are refused: `ERR_FORBIDDEN_KEY`). */
  set<K extends keyof Session>(key: K, value: Session[K]): void;
  /** Moves the cookie's expiry to `maxAge` from now. */
  touch(): void;
  /**
   * A new session under a new id, carrying only `keys`; the old one is
   * deleted at once, and requests still carrying its id cannot bring it back.
   */
  regenerate(callback: (error?: unknown) => void): void;
  regenerate(keys: string[], callback: (error?: unknown) => void): void;
  regenerate(keys?: string[]): Promise<void>;
  /**
   * Moves the session to a new id keeping its data (call it at login): this
   * request's changes are saved, then the stored session, with every change
   * other requests committed to it, goes under the new id, whose cookie the
   * reply sends; the old id is dead at once. `request.session` is the moved
   * session. The plugin's sessions only (@fastify/session has no rotation).
   */
  rotate(callback: (error?: unknown) => void): void;
  rotate(): Promise<void>;
  /** Changes this session's cookie options. */
  options(options: Partial<FastifySessionCookieOptions>): void;
  /** Deletes the session at once; `request.session` becomes `null`. */
  destroy(callback: (error?: unknown) => void): void;
  destroy(): Promise<void>;
  /** Loads the session again from the store, as a new `request.session`. */
  reload(callback: (error?: unknown) => void): void;
  reload(): Promise<void>;
  /** Saves now: what this request changed, merged into the latest stored session. */
  save(callback: (error?: unknown) => void): void;
  save(): Promise<void>;
  /** True when a top-level key was set, replaced or deleted since the load or the last save (a change inside a nested object in place is not seen). */
  isModified(): boolean;
  /** True once the session was saved in this request. */
  isSaved(): boolean;
}

/** What the plugin adds to Fastify's request. */
export interface SmartSessionRequest {
  /** The request's session (`{}` outside the cookie's path, `null` after `destroy()`). */
  session: FastifySessionObject;
  /** The sessions' store. */
  readonly sessionStore: SmartSessionStore;
}

declare module 'fastify' {
  interface Session {}
  interface FastifyRequest extends SmartSessionRequest {}
  interface FastifyInstance {
    /** smart-session-store's store, as registered by `smart-session-store/fastify`: its management methods and events. */
    sessionStore: SmartSessionStore;
    /** Loads the session a signed cookie value names as `request.session` of any object (@fastify/session's decorator). */
    decryptSession(sessionId: string, request: object, cookieOptions: FastifySessionCookieOptions, callback: (error?: unknown) => void): void;
    decryptSession(sessionId: string, request: object, callback: (error?: unknown) => void): void;
  }
}

/** @fastify/session's default ids: 24 random bytes, base64url. */
function randomId(): string {
  return randomBytes(24).toString('base64url');
}

/** An error for Fastify's callbacks. */
function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}

/** Marks a plugin as fastify-plugin does (not encapsulated, named, for Fastify 5), without needing fastify-plugin. */
function unencapsulated<Plugin extends object>(plugin: Plugin, name: string): Plugin {
  Object.assign(plugin, {
    [Symbol.for('skip-override')]: true,
    [Symbol.for('fastify.display-name')]: name,
    [Symbol.for('plugin-meta')]: { fastify: '5.x', name },
  });
  return plugin;
}

/**
 * The options checked, with their defaults, before any store is opened.
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the offending option.
 */
function layerOptions(options: SmartSessionOptions) {
  if (typeof options !== 'object' || options === null) throw invalidOption('options', 'must be an object with at least "secret" and "store"');
  const {
    secret,
    algorithm = 'sha256',
    cookieName = 'sessionId',
    cookiePrefix = '',
    cookie,
    rolling = true,
    saveUninitialized = false,
    idGenerator,
    header,
  } = options;
  const signer = signerOf(secret, algorithm);
  if (typeof cookieName !== 'string' || !/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(cookieName))
    throw invalidOption('cookieName', `must be a cookie name (letters, digits, !#$%&'*+-.^_\`|~), got ${JSON.stringify(cookieName)}`);
  if (typeof cookiePrefix !== 'string') throw invalidOption('cookiePrefix', 'must be a string');
  assertFastifyCookieOptions(cookie);
  assertKeeperOptions({ rolling, saveUninitialized, genid: idGenerator });
  return {
    signer,
    cookieName,
    cookiePrefix,
    cookie: { ...cookie, secure: cookie?.secure ?? true },
    rolling,
    saveUninitialized,
    idGenerator: (idGenerator ?? randomId) as (request?: never) => string,
    header: resolveIdHeader(header),
  };
}

const plugin: FastifyPluginAsync<SmartSessionOptions> = async (fastify: FastifyInstance, options: SmartSessionOptions) => {
  const settings = layerOptions(options);
  const given = options.store;
  const store = storeFromOption(given, SmartSessionStore, ADAPTER);
  const layer = new FastifySessionLayer({ ...settings, store: store.store });
  // A store the application made is the application's to close: it may serve other apps, or outlive this one.
  if (store !== given) {
    fastify.addHook('onClose', async () => {
      await store.close();
    });
  }
  fastify.decorate('sessionStore', store);
  fastify.decorate(
    'decryptSession',
    function decryptSession(
      sessionId: string,
      request: object,
      cookieOrCallback: FastifySessionCookieOptions | ((error?: unknown) => void),
      callback?: (error?: unknown) => void,
    ): void {
      const done = typeof cookieOrCallback === 'function' ? cookieOrCallback : callback;
      const cookie = typeof cookieOrCallback === 'function' ? {} : cookieOrCallback;
      settle(layer.decrypt(sessionId, request as LayerRequest, { ...settings.cookie, ...cookie }), done);
    },
  );
  fastify.decorateRequest('sessionStore', { getter: () => store });
  fastify.decorateRequest('session', null as never);
  fastify.addHook('onRequest', function loadSession(request, _reply, done) {
    layer.onRequest(request as LayerRequest).then(
      () => done(),
      (error: unknown) => done(asError(error)),
    );
  });
  fastify.addHook('onSend', function commitSession(request, reply, payload, done) {
    // Headers already out: the application sent twice, and the other pass answered (with this commit's cookie).
    layer.onSend(request as LayerRequest, reply).then(
      () => reply.raw.headersSent || done(null, payload),
      (error: unknown) => reply.raw.headersSent || done(asError(error)),
    );
  });
};

/**
 * The plugin: Fastify's session layer, standing on its own (no
 * @fastify/session, no @fastify/cookie), with @fastify/session's options,
 * `request.session` and signed cookie. Not encapsulated: `request.session`
 * exists on every route, `fastify.sessionStore` on the instance. Register it
 * instead of @fastify/session, not beside it.
 *
 * Each request's session is loaded once (`onRequest`) and committed once,
 * in `onSend` before the headers leave, through the store's handle: only
 * what the request changed is written, merged into the latest stored
 * session, so overlapping requests keep each other's changes; a request
 * that changed nothing writes nothing (but, with `rolling`, a throttled
 * expiry); destroy and regenerate stick. A store failure answers the
 * request with an error (Fastify's error handler), never crashes.
 */
export const smartSession = unencapsulated(plugin, 'smart-session-store');

export default smartSession;

/** A Fastify plugin module as `require` gives it (CommonJS, perhaps with `default`). */
type PluginModule = { default?: unknown } | ((...args: unknown[]) => unknown);

/** An optional peer plugin, or the error saying to install it. */
function peerPlugin(name: string): Parameters<FastifyInstance['register']>[0] {
  const loaded = optionalPeer<PluginModule>(name);
  if (loaded === undefined)
    throw new SessionStoreError(
      'ERR_INVALID_OPTION',
      `${ADAPTER}: withFastifySession registers ${name}, which is not installed (npm install ${name}); or use smartSession, which needs neither`,
    );
  const plugin = typeof loaded === 'function' ? loaded : loaded.default;
  return plugin as Parameters<FastifyInstance['register']>[0];
}

const compatibility: FastifyPluginAsync<SmartSessionOptions> = async (fastify: FastifyInstance, options: SmartSessionOptions) => {
  const { store: given, ...sessionOptions } = options;
  const fastifySession = peerPlugin('@fastify/session');
  const store = storeFromOption(given, SmartSessionStore, ADAPTER);
  // A store the application made is the application's to close: it may serve other apps, or outlive this one.
  if (store !== given) {
    fastify.addHook('onClose', async () => {
      await store.close();
    });
  }
  fastify.decorate('sessionStore', store);
  // @fastify/session needs @fastify/cookie; one the application registered itself (with its own options) is kept.
  if (!fastify.hasPlugin('@fastify/cookie')) await fastify.register(peerPlugin('@fastify/cookie'));
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
    const cookie = (request as FastifyRequest & { cookies?: Record<string, string | undefined> }).cookies?.[cookieName];
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
      (error: unknown) => done(asError(error)),
    );
  });
  await fastify.register(fastifySession, { ...sessionOptions, saveUninitialized, store });
  // This one right after @fastify/session's onRequest, which has made request.session.
  fastify.addHook('onRequest', function bindLoadedSession(request, _reply, done) {
    pluginAccess.bind(store, request);
    done();
  });
};

/**
 * The compatibility path: registers @fastify/session itself (and
 * @fastify/cookie, unless the application did), with the options given and
 * a {@link SmartSessionStore} as its store, plus the hooks that tie each
 * request's save to what it loaded, so a save still writes only the
 * request's delta. What `smart-session-store/fastify`'s plugin was before it
 * became its own session layer; needs `@fastify/session` and
 * `@fastify/cookie` installed. Sessions and cookies are the same as
 * {@link smartSession}'s: an app can move from one to the other and keep
 * its users logged in.
 */
export const withFastifySession = unencapsulated(compatibility, 'smart-session-store/with-fastify-session');
