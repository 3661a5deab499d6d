/**
 * React Router 7.9+ and 8 sessions: a `SessionStorage` (`getSession`,
 * `commitSession`, `destroySession`) whose commits write only what the
 * request changed, merged into the latest stored session, and a middleware
 * (`future.v8_middleware`) that loads the session once per request and
 * commits it after the loaders and actions ran.
 *
 * ```ts
 * // app/sessions.server.ts
 * import { createSmartSessionStorage } from 'smart-session-store/react-router';
 *
 * export const sessionStorage = createSmartSessionStorage({
 *   url: 'postgres://postgres@127.0.0.1:5432/test',
 *   createTable: true,
 *   cookie: { name: '__session', secrets: [process.env.SESSION_SECRET], maxAge: 24 * 3600 },
 * });
 *
 * // app/root.tsx
 * export const middleware = [sessionStorage.middleware];
 *
 * // any loader or action
 * const session = context.get(sessionStorage.context);
 * session.set('visits', (session.get('visits') ?? 0) + 1);
 * ```
 *
 * The session objects are React Router's own (`createSession`), flash
 * messages included: a flash is removed from the store by the commit of
 * the request that read it, and only then.
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import {
  createContext,
  createCookie,
  createSession,
  isCookie,
  isSession,
  type Cookie,
  type CookieOptions,
  type CookieParseOptions,
  type CookieSerializeOptions,
  type MiddlewareFunction,
  type RouterContext,
  type Session,
  type SessionData,
  type SessionStorage,
} from 'react-router';
import type { SessionHandle } from '../core/session-handle.js';
import type { SessionStoreEvents } from '../core/session-store.js';
import { SessionStoreError } from '../errors.js';
import { SessionStore } from '../store.js';
import type { SessionStoreOptions } from '../options.js';
import { assertCookieMaxAge } from './shared/cookie-lifetime.js';
import { ObjectSlot } from './shared/object-slot.js';
import {
  assertKeeperOptions,
  cookieAfterCommit,
  cookieExpiry,
  FETCH_SESSION_FORMAT,
  isSessionId,
  SessionKeeper,
  type CookieState,
} from './shared/session-keeper.js';
import { requestClient } from './shared/session-client.js';
import { appendSetCookie, cookieValues } from './shared/signed-cookie.js';
import { delegateStoreMethods, forwardStoreEvents, type StoreMethods } from './shared/store-methods.js';
import { warnUntiedSession } from './shared/untied.js';

export type { SessionStoreOptions } from '../options.js';
export type { LockingMode } from '../core/options.js';
export type { UserSession, PurgeOptions, SessionStats } from '../core/session-store.js';
export { SessionStoreError };
export type { SessionStoreErrorCode } from '../errors.js';
export { FETCH_SESSION_FORMAT };

/** Options of {@link createSmartSessionStorage}: the store's options (see the README's "Options") and these. */
export interface SmartSessionStorageOptions extends SessionStoreOptions {
  /**
   * The cookie holding the session id: a React Router `Cookie`
   * (`createCookie(...)`), or its options plus a `name`. Sign it
   * (`secrets`; the first signs, all verify). `maxAge` (seconds) or
   * `expires` is also the stored session's expiry; without either the cookie
   * lasts the browser session and the stored session `ttl` seconds after its
   * last write. Given as options, a `maxAge` over 400 days (34,560,000 s),
   * the longest browsers keep a cookie, is refused with `ERR_INVALID_OPTION`:
   * it is usually milliseconds (`86400000` for a day).
   * @default { name: '__session', path: '/', httpOnly: true, sameSite: 'lax' }
   */
  cookie?: Cookie | (CookieOptions & { name?: string });
  /**
   * Store a new session even when the request put nothing in it. Left
   * `false`, `commitSession` of a new, empty session writes nothing and
   * resolves to `''` (no cookie to set).
   * @default false
   */
  saveUninitialized?: boolean;
  /**
   * The middleware sends the cookie again on every response of a stored
   * session, so its `maxAge` runs from the latest request. (`commitSession`
   * always returns the cookie of a stored session.)
   * @default false
   */
  rolling?: boolean;
  /**
   * Makes a new session id (unpredictable: whoever knows one holds the session).
   * @default 24 bytes of node:crypto randomness, base64url
   */
  genid?: () => string;
}

/** What the storage knows of a session it gave out. */
interface SessionState extends CookieState {
  handle: SessionHandle;
  /** This session replaces a destroyed one (regenerateSession). */
  readonly replaces: boolean;
  /** destroySession ran on it. */
  destroyed: boolean;
  /** The session regenerateSession gave in its place. */
  successor: object | undefined;
}

let unsignedWarned = false;

/**
 * React Router sessions in smart-session-store: a `SessionStorage`, plus
 * {@link middleware} and its {@link context}. Also the store's management
 * methods (`close`, `purge`, `destroyByUser`, ...) and events. The methods
 * are bound: `const { getSession, commitSession } = storage` works.
 *
 * @typeParam Data What sessions hold.
 * @typeParam FlashData What flash messages they hold.
 */
export class SmartSessionStorage<Data = SessionData, FlashData = Data> extends EventEmitter<SessionStoreEvents> implements SessionStorage<Data, FlashData> {
  /** The framework-neutral store underneath. */
  readonly store: SessionStore;
  /** The cookie holding the session id. */
  readonly cookie: Cookie;
  /**
   * Where {@link middleware} puts the request's session:
   * `context.get(storage.context)` in a loader or action.
   */
  readonly context: RouterContext<Session<Data, FlashData>> = createContext<Session<Data, FlashData>>();
  readonly #keeper: SessionKeeper;
  readonly #rolling: boolean;
  /** What the storage knows of each session it gave out, for as long as the session object lives. */
  readonly #sessions = new ObjectSlot<SessionState>('smart-session-store/react-router session');
  /** Router contexts whose request already has its session (the middleware placed on nested routes loads once). */
  readonly #loaded = new ObjectSlot<true>('smart-session-store/react-router loaded');

  /** @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the offending option. */
  constructor(options: SmartSessionStorageOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw new SessionStoreError('ERR_INVALID_OPTION', 'options must be an object with at least "url"');
    const { cookie, saveUninitialized = false, rolling = false, genid, ...storeOptions } = options;
    assertKeeperOptions({ rolling, saveUninitialized, genid });
    if (cookie !== undefined && (typeof cookie !== 'object' || cookie === null))
      throw new SessionStoreError('ERR_INVALID_OPTION', 'option "cookie" must be a Cookie or cookie options');
    // A Cookie already made keeps its maxAge to itself; its options are checked where they are seen.
    if (!isCookie(cookie) && typeof cookie?.maxAge === 'number') assertCookieMaxAge('cookie.maxAge', cookie.maxAge);
    this.cookie = isCookie(cookie) ? cookie : createCookie(cookie?.name ?? '__session', { httpOnly: true, path: '/', sameSite: 'lax', ...cookie });
    if (!this.cookie.isSigned && !unsignedWarned) {
      unsignedWarned = true;
      process.emitWarning(
        `smart-session-store/react-router: the "${this.cookie.name}" cookie is not signed; give it "secrets" so a tampered cookie is refused.`,
        {
          code: 'SMART_SESSION_STORE_UNSIGNED_COOKIE',
          type: 'SmartSessionStoreWarning',
        },
      );
    }
    this.#rolling = rolling;
    this.store = new SessionStore(storeOptions, { format: FETCH_SESSION_FORMAT });
    this.#keeper = new SessionKeeper(this.store, { genid, saveUninitialized });
    forwardStoreEvents(this.store, this);
  }

  /**
   * The session a `Cookie` header names, or a new, empty one under a fresh
   * id (its `id` is set from the start; nothing is stored until it is
   * committed holding something). A cookie naming a missing, expired or
   * destroyed session, or a tampered one, gives a new session.
   */
  readonly getSession = async (cookieHeader?: string | null, options?: CookieParseOptions): Promise<Session<Data, FlashData>> => {
    const header = cookieHeader ?? null;
    const raw = header === null ? undefined : cookieValues(header, this.cookie.name)[0];
    const parsed: unknown = raw === undefined ? null : await this.cookie.parse(header, options);
    const id = isSessionId(parsed) ? parsed : undefined;
    const handle = await this.#keeper.load(id);
    const loaded = id !== undefined && handle.id === id;
    const renew = loaded && raw !== undefined && this.cookie.isSigned && !(await this.#signedWithFirstSecret(raw, id));
    return this.#track(handle, { hadCookie: raw !== undefined, renew, replaces: false });
  };

  #track(handle: SessionHandle, facts: Pick<SessionState, 'hadCookie' | 'renew' | 'replaces'>): Session<Data, FlashData> {
    // React Router's session copies the top-level entries; the handle keeps the loaded text, so the commit diffs against that.
    const session = createSession<Data, FlashData>(handle.data as Data, handle.id);
    this.#sessions.set(session, { handle, ...facts, destroyed: false, successor: undefined, cleared: false });
    return session;
  }

  /** True when the cookie as the client sent it is what the first secret signs (signatures are deterministic). */
  async #signedWithFirstSecret(raw: string, id: string): Promise<boolean> {
    const serialized = await this.cookie.serialize(id);
    const pair = serialized.slice(0, serialized.includes(';') ? serialized.indexOf(';') : undefined);
    return pair.slice(pair.indexOf('=') + 1) === raw;
  }

  /** When a session committed now expires (epoch ms): the commit's `maxAge` or `expires`, else the cookie's, else `undefined` (`ttl`). */
  #expiresAt(options: CookieSerializeOptions | undefined): number | undefined {
    return cookieExpiry(options?.maxAge, options?.expires ?? this.cookie.expires);
  }

  /** Commits a session of this storage; `undefined` when the session is gone (destroyed or regenerated). */
  async #commitTracked(session: Session<Data, FlashData>, state: SessionState, options: CookieSerializeOptions | undefined) {
    if (state.destroyed || state.successor !== undefined) return 'unstored' as const;
    return this.#keeper.commit(state.handle, session.data, this.#expiresAt(options));
  }

  /**
   * Writes what the request changed (the whole session, for a new one
   * holding something) and resolves to the `Set-Cookie` header naming it.
   * A new, empty session writes nothing and resolves to `''` (unless
   * `saveUninitialized`); a destroyed one resolves to a clearing cookie.
   * Resolves once the write is committed.
   *
   * @throws {SessionStoreError} when the write fails (`ERR_VALUE_NOT_STORABLE`, `ERR_SESSION_TOO_LARGE`, `ERR_DATABASE`, ...).
   */
  readonly commitSession = async (session: Session<Data, FlashData>, options?: CookieSerializeOptions): Promise<string> => {
    const state = this.#sessions.get(session);
    if (state === undefined) return this.#commitUntied(session, options);
    const outcome = await this.#commitTracked(session, state, options);
    if (outcome === 'unstored') return state.destroyed || state.successor !== undefined ? this.#clearingCookie(options) : '';
    return this.cookie.serialize(state.handle.id, options);
  };

  /** A session this storage did not give out: stored whole, with a warning (it cannot tell what the request changed). */
  async #commitUntied(session: Session<Data, FlashData>, options: CookieSerializeOptions | undefined): Promise<string> {
    if (!isSession(session)) throw new TypeError('smart-session-store/react-router: commitSession() takes a session');
    warnUntiedSession('smart-session-store/react-router', session);
    const handle = this.store.create(isSessionId(session.id) ? session.id : this.#keeper.newId());
    await handle.commit(session.data, { expiresAt: this.#expiresAt(options) });
    return this.cookie.serialize(handle.id, options);
  }

  #clearingCookie(options: CookieSerializeOptions | undefined): Promise<string> {
    return this.cookie.serialize('', { ...options, maxAge: undefined, expires: new Date(0) });
  }

  /**
   * Deletes the session at once (logout) and resolves to a clearing
   * `Set-Cookie` header. Concurrent requests committing it afterwards do not
   * bring it back.
   */
  readonly destroySession = async (session: Session<Data, FlashData>, options?: CookieSerializeOptions): Promise<string> => {
    const state = this.#sessions.get(session);
    if (state !== undefined) {
      state.destroyed = true;
      if (!state.handle.isNew) await state.handle.destroy();
    } else if (isSession(session) && isSessionId(session.id)) {
      await this.store.destroy(session.id);
    }
    return this.#clearingCookie(options);
  };

  /**
   * Destroys the session and gives a new, empty one under a fresh id (call
   * it at login, so an id known before is worth nothing after). Pass the
   * router `context` and it holds the new session from now on; the
   * middleware commits the new session either way. `commitSession` of the
   * old one gives a clearing cookie.
   */
  readonly regenerateSession = async (
    session: Session<Data, FlashData>,
    context?: { set(context: RouterContext<Session<Data, FlashData>>, value: Session<Data, FlashData>): void },
  ): Promise<Session<Data, FlashData>> => {
    const state = this.#sessions.get(session);
    if (state === undefined) throw new TypeError('smart-session-store/react-router: regenerateSession() takes a session this storage gave out');
    const handle = await this.#keeper.replace(state.handle);
    state.destroyed = true;
    const successor = this.#track(handle, { hadCookie: state.hadCookie, renew: false, replaces: true });
    state.successor = successor;
    context?.set(this.context, successor);
    return successor;
  };

  /**
   * Gives the session a new id and keeps its data (call it at login, so an id
   * known before is worth nothing after, while the cart and the rest stay):
   * this request's changes are saved, then the stored session, with every
   * change other requests committed to it, moves to the new id. The old id is
   * dead at once. Pass the router `context` and it holds the new session from
   * now on; the middleware commits the new session either way, and
   * `commitSession` of the old one gives a clearing cookie.
   */
  readonly rotateSession = async (
    session: Session<Data, FlashData>,
    context?: { set(context: RouterContext<Session<Data, FlashData>>, value: Session<Data, FlashData>): void },
  ): Promise<Session<Data, FlashData>> => {
    const state = this.#sessions.get(session);
    if (state === undefined) throw new TypeError('smart-session-store/react-router: rotateSession() takes a session this storage gave out');
    const live = session.data as Record<string, unknown>;
    const handle = await this.#keeper.rotate(state.handle, live);
    // React Router's session holds a copy of the data: the new one starts from what the request has.
    const data = handle.data as Record<string, unknown>;
    for (const key of Object.keys(data)) if (!Object.hasOwn(live, key)) delete data[key];
    Object.assign(data, live);
    state.destroyed = true;
    const successor = this.#track(handle, { hadCookie: state.hadCookie, renew: true, replaces: true });
    state.successor = successor;
    context?.set(this.context, successor);
    return successor;
  };

  /** The newest session of a request: the one a chain of `regenerateSession` ends with. */
  #latest(session: Session<Data, FlashData>): { session: Session<Data, FlashData>; state: SessionState | undefined } {
    let current = session;
    let state = this.#sessions.get(current);
    while (state?.successor !== undefined) {
      current = state.successor as Session<Data, FlashData>;
      state = this.#sessions.get(current);
    }
    return { session: current, state };
  }

  /**
   * The `Set-Cookie` the middleware adds after committing, or `undefined`:
   * only when needed (a new session stored, a new id, `rolling`, a cookie
   * signed with an older secret, a clearing cookie after a destroy).
   */
  async #commitForResponse(session: Session<Data, FlashData>): Promise<string | undefined> {
    const latest = this.#latest(session);
    const { state } = latest;
    if (state === undefined) {
      // A session the loaders put there themselves, not from this storage.
      return this.#commitUntied(latest.session, undefined);
    }
    const outcome = await this.#commitTracked(latest.session, state, undefined);
    switch (cookieAfterCommit(outcome, state, { rolling: this.#rolling, replaced: state.destroyed || state.replaces })) {
      case 'set':
        return this.cookie.serialize(state.handle.id);
      case 'clear':
        return this.#clearingCookie(undefined);
      default:
        return undefined;
    }
  }

  /**
   * Route middleware for `export const middleware = [storage.middleware]` in
   * `root.tsx` (with `future.v8_middleware`): loads the request's session
   * once, puts it in {@link context}, and after the loaders and actions ran
   * (also when they threw or redirected) commits it, awaiting the write, and
   * adds the cookie to the response when needed (unless the response already
   * sets it, from a `commitSession` of the loader's own). A failing write
   * becomes an error response, never the loaders' answer.
   */
  readonly middleware: MiddlewareFunction<Response> = async ({ request, context }, next) => {
    if (this.#loaded.has(context)) return next();
    this.#loaded.set(context, true);
    const session = await this.getSession(request.headers.get('Cookie'));
    const handle = this.#sessions.get(session)?.handle;
    // The Fetch API has no client address: the user agent only.
    if (handle !== undefined) handle.client = requestClient(this.store, request.headers, () => undefined);
    context.set(this.context, session);
    const response = await next();
    const setCookie = await this.#commitForResponse(context.get(this.context));
    if (setCookie === undefined || setsCookie(response, this.cookie.name)) return response;
    return appendSetCookie(response, setCookie);
  };
}

/** True when the response already sets the cookie `name`. */
function setsCookie(response: Response, name: string): boolean {
  return response.headers.getSetCookie().some((setCookie) => setCookie.startsWith(`${name}=`));
}

// The store's own methods: createTable, ready, close, purge, stats, destroyByUser, destroyByHandle, listByUser, lockingMode.
delegateStoreMethods(SmartSessionStorage);
// biome-ignore lint/correctness/noUnusedVariables: merged with the class, it must repeat the class's type parameters
export interface SmartSessionStorage<Data = SessionData, FlashData = Data> extends StoreMethods {}

/**
 * A React Router `SessionStorage` on smart-session-store, with its
 * middleware: see {@link SmartSessionStorage}.
 *
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the offending option.
 */
export function createSmartSessionStorage<Data = SessionData, FlashData = Data>(options: SmartSessionStorageOptions): SmartSessionStorage<Data, FlashData> {
  return new SmartSessionStorage<Data, FlashData>(options);
}

export default createSmartSessionStorage;
