/**
 * The session layer of `smart-session-store/fastify`: @fastify/session's
 * hooks and `request.session`, over the store's per-request handle instead
 * of a store's `get`/`set`.
 *
 * `onRequest` reads the cookie (parsed here: @fastify/cookie is not needed),
 * verifies its signature, opens the session it names once, and builds
 * `request.session` in @fastify/session's shape: the session's data as its
 * own properties, its `cookie` as @fastify/session stores it. `onSend`,
 * before the headers leave, commits the session once through its handle: the
 * core diffs it against what the request loaded and writes that delta, or
 * only the expiry, or nothing; there is no whole-session hash. The cookie is
 * decided after the commit, as @fastify/session decides it.
 */
import { isForbiddenKey, isJsonObject } from '../../core/json.js';
import { carryKey, identityOf, plainView } from '../../core/live-session.js';
import type { SessionHandle } from '../../core/session-handle.js';
import { requestClient } from './session-client.js';
import { SessionStoreError } from '../../errors.js';
import type { SessionStore } from '../../store.js';
import { type Callback, settle } from './cookie-session.js';
import {
  type CookieSource,
  clearingSetCookie,
  FastifySessionCookie,
  type FastifySessionCookieOptions,
  pathMatches,
  type SessionSigner,
  sessionSetCookie,
} from './fastify-cookie.js';
import { ObjectSlot } from './object-slot.js';
import { isSessionId } from './session-keeper.js';
import { cookieValues } from './signed-cookie.js';

/** The request as the layer reads and decorates it (a Fastify request, or any object `decryptSession` is given). */
export interface LayerRequest {
  session?: unknown;
  readonly protocol?: string;
  readonly raw?: { readonly url?: string | undefined; readonly headers?: { readonly cookie?: string | undefined; readonly [name: string]: unknown } };
}

/** What the layer was made with, checked and with its defaults. */
export interface FastifyLayerSettings {
  /** The store the sessions are kept in (in @fastify/session's format). */
  readonly store: SessionStore;
  readonly signer: SessionSigner;
  readonly cookieName: string;
  readonly cookiePrefix: string;
  /** The cookie options, `secure` defaulted to `true`. */
  readonly cookie: FastifySessionCookieOptions;
  readonly idGenerator: (request?: never) => string;
  readonly rolling: boolean;
  readonly saveUninitialized: boolean;
  /** The request header that may carry the signed id instead of the cookie (lower-cased); `undefined` for the cookie only. */
  readonly header: string | undefined;
}

/** What a request's sessions share: the cookie it came with, and whether its response is settled. */
interface RequestState {
  /** The signed cookie value the request came with, its prefix removed; `undefined` without one. */
  readonly cookieValue: string | undefined;
  /** Its signature verified with an older secret: send it again, signed with the first. */
  readonly renew: boolean;
  readonly https: boolean;
  /** The request named its session in the id header: it is answered there, never with a cookie. */
  readonly viaHeader: boolean;
  /**
   * The commit `onSend` started: an error answer runs the hooks again, and an
   * application that sends twice (`reply.send()` in an async handler without
   * `return reply`) does too; the session is committed once.
   */
  commit: Promise<void> | undefined;
}

const requestStates = new ObjectSlot<RequestState>('smart-session-store/fastify request');

/** The request came over HTTPS (Fastify's `request.protocol`, which follows `X-Forwarded-Proto` under `trustProxy`). */
function isHttps(request: LayerRequest): boolean {
  try {
    return request.protocol === 'https';
  } catch {
    // A custom request object given to decryptSession may have no socket behind `protocol`.
    return false;
  }
}

/** The keys of a session's data (never its `cookie`). */
function dataKeys(session: object): string[] {
  return Object.keys(session).filter((key) => key !== 'cookie');
}

let sessionAccess: {
  handle(session: FastifySession): SessionHandle;
  request(session: FastifySession): LayerRequest;
  saved(session: FastifySession): void;
};

/**
 * `request.session`: the session's data as its own properties, its `cookie`,
 * and @fastify/session's methods. `sessionId` and `encryptedSessionId` are
 * getters: only the data and the cookie are the session's JSON.
 */
export class FastifySession {
  /** The session cookie (@fastify/session's `Cookie`). */
  cookie: FastifySessionCookie;
  readonly #layer: FastifySessionLayer;
  readonly #request: LayerRequest;
  #handle: SessionHandle;
  /** The cookie options this session was made with, and those `options()` added. */
  #cookieOptions: CookieSource;
  readonly #encrypted: string;
  #saved = false;
  /** The data's top-level values as loaded or last saved: what `isModified()` compares with. */
  #baseline: Map<string, unknown>;

  constructor(layer: FastifySessionLayer, request: LayerRequest, handle: SessionHandle, cookieOptions: CookieSource, https: boolean) {
    this.#layer = layer;
    this.#request = request;
    this.#handle = handle;
    handle.client ??= requestClient(layer.settings.store, request.raw?.headers, () => (request as { ip?: unknown }).ip);
    this.#encrypted = layer.settings.signer.sign(handle.id);
    const stored = handle.isNew ? undefined : handle.data['cookie'];
    if (stored !== undefined && stored !== null && !isJsonObject(stored))
      throw new SessionStoreError('ERR_CORRUPT_ROW', 'stored session has a cookie that is not an object');
    const previous = stored === undefined || stored === null ? undefined : (stored as CookieSource);
    // A touch moves only the stored expiry, not the JSON: the cookie gets the expiry the session really has.
    const restored: CookieSource = previous === undefined ? { ...cookieOptions } : { ...cookieOptions, ...previous };
    if (previous?.expires != null && handle.expiresAt !== undefined) restored.expires = new Date(handle.expiresAt);
    // What regenerate() and options() start from, as @fastify/session keeps it.
    const own: CookieSource = { ...restored };
    if (own.originalMaxAge != null) own.maxAge = own.originalMaxAge;
    if (own.expires && own.originalMaxAge == null) {
      const expires = new Date(own.expires);
      if (!Number.isFinite(expires.getTime()) || expires.getTime() <= Date.now()) delete own.expires;
    }
    delete own.originalMaxAge;
    delete own.originalExpires;
    this.#cookieOptions = own;
    this.cookie = new FastifySessionCookie(restored, https);
    const data = handle.data;
    for (const key of Object.keys(data)) {
      // A key not read yet stays so: it is copied when the application first reads it.
      if (key !== 'cookie' && key !== 'sessionId' && key !== 'encryptedSessionId') carryKey(this, data, key);
    }
    this.#baseline = this.#snapshot();
  }

  static {
    sessionAccess = {
      handle: (session) => session.#handle,
      request: (session) => session.#request,
      saved: (session) => {
        session.#saved = true;
        session.#baseline = session.#snapshot();
      },
    };
  }

  /** The handle a session commits through. */
  static handleOf(session: FastifySession): SessionHandle {
    return sessionAccess.handle(session);
  }

  /** The request a session belongs to. */
  static requestOf(session: FastifySession): LayerRequest {
    return sessionAccess.request(session);
  }

  /** Marks a session saved by the layer's commit (what `isSaved()` and `isModified()` then say). */
  static markSaved(session: FastifySession): void {
    sessionAccess.saved(session);
  }

  #snapshot(): Map<string, unknown> {
    const values = new Map<string, unknown>();
    // Reading a key is not replacing it: a key not read yet, and the copy its first read makes, are one value here.
    for (const key of dataKeys(this)) values.set(key, identityOf(this, key));
    return values;
  }

  /** What `console.log` and `util.inspect` show: the data and the cookie, keys not read yet as stored (nothing is copied). */
  [Symbol.for('nodejs.util.inspect.custom')](): Record<string, unknown> {
    return plainView(this);
  }

  /** The session id. */
  get sessionId(): string {
    return this.#handle.id;
  }

  /** The signed session id: the cookie's value (without `cookiePrefix`). */
  get encryptedSessionId(): string {
    return this.#encrypted;
  }

  /** The value under `key`. */
  get(key: string): unknown {
    return (this as Record<string, unknown>)[key];
  }

  /** Sets `key`. @throws {SessionStoreError} `ERR_FORBIDDEN_KEY` for `__proto__`, `constructor`, `prototype`. */
  set(key: string, value: unknown): void {
    if (isForbiddenKey(key)) throw new SessionStoreError('ERR_FORBIDDEN_KEY', `session key "${key}" is not allowed`);
    (this as Record<string, unknown>)[key] = value;
  }

  /** Moves the cookie's expiry to `maxAge` from now (when it has a `maxAge`). */
  touch(): void {
    if (this.cookie.originalMaxAge) this.cookie.expires = new Date(Date.now() + this.cookie.originalMaxAge);
  }

  /** Changes this session's cookie options (the cookie is made again from them). */
  options(options: Partial<FastifySessionCookieOptions>): void {
    if (Object.keys(options).length === 0) return;
    this.#cookieOptions = { ...this.#cookieOptions, ...options };
    this.cookie = new FastifySessionCookie(this.#cookieOptions, isHttps(this.#request));
  }

  /**
   * Replaces the session with a new one under a new id, carrying only `keys`;
   * the old session is deleted at once (requests still carrying its id
   * cannot bring it back). The new one is stored when the response is sent.
   */
  regenerate(callback: Callback): void;
  regenerate(keys: string[], callback: Callback): void;
  regenerate(keys?: string[]): Promise<void>;
  regenerate(keysOrCallback?: string[] | Callback, callback?: Callback): Promise<void> | undefined {
    const keys = Array.isArray(keysOrCallback) ? keysOrCallback : undefined;
    const done = typeof keysOrCallback === 'function' ? keysOrCallback : callback;
    return this.#run(async () => {
      const id = this.#layer.newId(this.#request);
      const handle = this.#handle;
      const next = handle.isNew && !handle.isDestroyed ? this.#layer.settings.store.create(id) : await handle.regenerate(id);
      const session = new FastifySession(this.#layer, this.#request, next, this.#cookieOptions, isHttps(this.#request));
      for (const key of keys ?? []) session.set(key, (this as Record<string, unknown>)[key]);
      this.#request.session = session;
    }, done);
  }

  /**
   * Gives the session a new id and keeps its data (call it at login, so an id
   * known before is worth nothing after, while the rest stays): this
   * request's changes are saved, then the stored session, with every change
   * other requests committed to it, moves to the new id, whose cookie the
   * reply sends. The old id is dead at once: requests still carrying it find
   * no session and save nothing. `request.session` is the moved session.
   */
  rotate(callback: Callback): void;
  rotate(): Promise<void>;
  rotate(callback?: Callback): Promise<void> | undefined {
    return this.#run(async () => {
      const next = await this.#handle.rotate(this.#layer.newId(this.#request), this);
      const session = new FastifySession(this.#layer, this.#request, next, this.#cookieOptions, isHttps(this.#request));
      // The handle holds what was loaded: the moved session carries what this request has, saved just now.
      const moved = session as unknown as Record<string, unknown>;
      for (const key of dataKeys(session)) delete moved[key];
      for (const key of dataKeys(this)) moved[key] = (this as Record<string, unknown>)[key];
      session.cookie = this.cookie;
      FastifySession.markSaved(session);
      this.#request.session = session;
    }, callback);
  }

  /** Deletes the session at once (concurrent requests cannot bring it back); `request.session` becomes `null`. */
  destroy(callback: Callback): void;
  destroy(): Promise<void>;
  destroy(callback?: Callback): Promise<void> | undefined {
    return this.#run(async () => {
      try {
        await this.#handle.destroy();
      } finally {
        this.#request.session = null;
      }
    }, callback);
  }

  /**
   * Loads the session again from the store into a new `request.session`
   * (what other requests saved meanwhile, without this request's unsaved
   * changes). A session gone meanwhile gives a new, empty one under a fresh id.
   */
  reload(callback: Callback): void;
  reload(): Promise<void>;
  reload(callback?: Callback): Promise<void> | undefined {
    return this.#run(async () => {
      const handle = (await this.#layer.settings.store.open(this.#handle.id)) ?? this.#layer.settings.store.create(this.#layer.newId(this.#request));
      this.#request.session = new FastifySession(this.#layer, this.#request, handle, this.#cookieOptions, isHttps(this.#request));
    }, callback);
  }

  /** Saves the session now: what this request changed, merged into the latest stored session (a new one whole). */
  save(callback: Callback): void;
  save(): Promise<void>;
  save(callback?: Callback): Promise<void> | undefined {
    return this.#run(async () => {
      await this.#handle.commit(this);
      FastifySession.markSaved(this);
    }, callback);
  }

  /**
   * True when a top-level key of the data was set, replaced or deleted since
   * the session was loaded or saved. A change made inside a nested object in
   * place is not seen here (there is no whole-session hash); it is saved
   * all the same.
   */
  isModified(): boolean {
    const keys = dataKeys(this);
    if (keys.length !== this.#baseline.size) return true;
    for (const key of keys) {
      if (!this.#baseline.has(key) || !Object.is(this.#baseline.get(key), identityOf(this, key))) return true;
    }
    return false;
  }

  /** True once the session was saved in this request (`save()`). */
  isSaved(): boolean {
    return this.#saved;
  }

  #run(operation: () => Promise<void>, callback: Callback | undefined): Promise<void> | undefined {
    if (typeof callback === 'function') {
      settle(operation(), callback);
      return undefined;
    }
    return operation();
  }
}

/** A response whose headers the layer adds to (Fastify's reply). */
export interface LayerReply {
  header(name: string, value: string): unknown;
}

/** The session layer: what the plugin's hooks and `decryptSession` run. */
export class FastifySessionLayer {
  readonly settings: FastifyLayerSettings;

  constructor(settings: FastifyLayerSettings) {
    this.settings = settings;
  }

  /** A fresh session id. @throws {SessionStoreError} `ERR_INVALID_SESSION_ID` when `idGenerator` made an unusable one. */
  newId(request: LayerRequest): string {
    const id = this.settings.idGenerator(request as never);
    if (!isSessionId(id)) throw new SessionStoreError('ERR_INVALID_SESSION_ID', `idGenerator returned an unusable session id: ${JSON.stringify(id)}`);
    return id;
  }

  /** The signed id of the request's id header (the `header` option), when it sends one; `null` when it does not. */
  #headerOf(request: LayerRequest): { value: string; id: string | undefined; renew: boolean } | undefined | null {
    const name = this.settings.header;
    const value = name === undefined ? undefined : request.raw?.headers?.[name];
    if (typeof value !== 'string') return null;
    if (value === '') return undefined;
    const unsigned = this.settings.signer.unsign(value);
    const valid = unsigned.valid && unsigned.value !== null && isSessionId(unsigned.value);
    return { value, id: valid ? (unsigned.value as string) : undefined, renew: valid && unsigned.renew };
  }

  /** The signed value of the request's session cookie, its prefix removed; the first of several that verifies, else the first. */
  #cookieOf(request: LayerRequest): { value: string; id: string | undefined; renew: boolean } | undefined {
    const header = request.raw?.headers?.cookie;
    if (typeof header !== 'string') return undefined;
    const { cookieName, cookiePrefix, signer } = this.settings;
    let first: { value: string; id: string | undefined; renew: boolean } | undefined;
    for (const raw of cookieValues(header, cookieName)) {
      let value = raw;
      try {
        if (value.includes('%')) value = decodeURIComponent(value);
      } catch {
        continue;
      }
      if (cookiePrefix !== '') {
        if (!value.startsWith(cookiePrefix)) continue;
        value = value.slice(cookiePrefix.length);
      }
      if (value === '') continue;
      const unsigned = signer.unsign(value);
      if (unsigned.valid && unsigned.value !== null && isSessionId(unsigned.value)) return { value, id: unsigned.value, renew: unsigned.renew };
      first ??= { value, id: undefined, renew: false };
    }
    return first;
  }

  /** `onRequest`: `request.session` for the request (`{}` outside the cookie's path). */
  async onRequest(request: LayerRequest): Promise<void> {
    request.session = {};
    const url = request.raw?.url ?? '/';
    const path = url.split('?', 1)[0] ?? '/';
    if (!pathMatches(path, this.settings.cookie.path || '/')) return;
    // The id header, when the request sends it, names the session alone: a cookie beside it is not looked at.
    const fromHeader = this.#headerOf(request);
    const cookie = fromHeader === null ? this.#cookieOf(request) : fromHeader;
    const https = isHttps(request);
    requestStates.set(request, { cookieValue: cookie?.value, renew: cookie?.renew ?? false, https, viaHeader: fromHeader !== null, commit: undefined });
    await this.#open(request, cookie?.id, this.settings.cookie, https);
  }

  /** `fastify.decryptSession`: the session a signed cookie value names, as `request.session` of any object. */
  async decrypt(signedValue: string, request: LayerRequest, cookieOptions: FastifySessionCookieOptions): Promise<void> {
    const unsigned = this.settings.signer.unsign(signedValue);
    const id = unsigned.valid && unsigned.value !== null && isSessionId(unsigned.value) ? unsigned.value : undefined;
    await this.#open(request, id, cookieOptions, isHttps(request));
  }

  async #open(request: LayerRequest, id: string | undefined, cookieOptions: FastifySessionCookieOptions, https: boolean): Promise<void> {
    const handle = (id === undefined ? null : await this.settings.store.open(id)) ?? this.settings.store.create(this.newId(request));
    request.session = new FastifySession(this, request, handle, cookieOptions, https);
  }

  /**
   * `onSend`, before the headers leave: commits `request.session` through its
   * handle, once, and sets or clears the cookie as @fastify/session does.
   */
  onSend(request: LayerRequest, reply: LayerReply): Promise<void> {
    const state = requestStates.get(request);
    if (state === undefined) return Promise.resolve();
    // A second pass waits for the first (and does not fail again: its error is being answered).
    if (state.commit !== undefined) return state.commit.then(undefined, () => undefined);
    state.commit = this.#commit(request, reply, state);
    return state.commit;
  }

  async #commit(request: LayerRequest, reply: LayerReply, state: RequestState): Promise<void> {
    const session = request.session;
    if (!(session instanceof FastifySession) || FastifySession.requestOf(session) !== request) return;
    const { cookieName, cookiePrefix, saveUninitialized, rolling } = this.settings;
    const handle = FastifySession.handleOf(session);
    if (handle.isDestroyed) return;
    const sameCookie = state.cookieValue === session.encryptedSessionId;
    const insecure = session.cookie.secure === true && !state.https;
    const idHeader = this.settings.header;
    const setCookie = () => {
      // The id header has no expiry of its own to move: it is sent when the id or its signature is new, or with rolling.
      if (idHeader !== undefined && (state.viaHeader ? !sameCookie || rolling || state.renew : !sameCookie)) reply.header(idHeader, session.encryptedSessionId);
      if (!state.viaHeader) reply.header('Set-Cookie', sessionSetCookie(cookieName, cookiePrefix + session.encryptedSessionId, session.cookie, state.https));
    };
    const clearStale = () => {
      // A cookie of another (gone, forged, replaced) session: cleared, as @fastify/session does.
      if (state.cookieValue !== undefined && !sameCookie && !state.viaHeader)
        reply.header('Set-Cookie', clearingSetCookie(cookieName, { domain: this.settings.cookie.domain, path: this.settings.cookie.path }, state.https));
    };
    const uninitialized =
      handle.isNew && !saveUninitialized && dataKeys(session).every((key) => (session as unknown as Record<string, unknown>)[key] === undefined);
    if (insecure || uninitialized) {
      clearStale();
      if (session.isSaved()) setCookie();
      return;
    }
    const wasNew = handle.isNew;
    const expiresAt = handle.expiresAt;
    await handle.commit(session);
    const written = wasNew || handle.expiresAt !== expiresAt;
    if (written) FastifySession.markSaved(session);
    if (!sameCookie || rolling || state.renew || written || session.isSaved()) {
      if (!sameCookie && state.cookieValue !== undefined && this.#clearsOther(session)) clearStale();
      setCookie();
    }
  }

  /** A clearing cookie is needed beside the new one only when they would not replace each other (another path or domain). */
  #clearsOther(session: FastifySession): boolean {
    return (session.cookie.path || '/') !== (this.settings.cookie.path || '/') || (session.cookie.domain ?? undefined) !== this.settings.cookie.domain;
  }
}
