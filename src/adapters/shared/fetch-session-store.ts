/**
 * The Fetch session layer: sessions of a `Request`, committed onto its
 * `Response`, under a signed cookie. `smart-session-store/fetch` is this
 * layer as it is; `smart-session-store/hono` is it plus Hono's middleware.
 */
import { EventEmitter } from 'node:events';
import type { SessionStoreEvents } from '../../core/session-store.js';
import type { SessionStoreOptions } from '../../options.js';
import { SessionStore } from '../../store.js';
import { type FetchSession, openFetchSession, requestSessionOf, type SessionData } from './fetch-session.js';
import {
  cookieValues,
  invalidOption,
  resolveCookie,
  resolveIdHeader,
  resolveSecrets,
  serializeCookie,
  signSessionId,
  unsignSessionId,
  type ResolvedCookie,
  type SessionCookieOptions,
} from './signed-cookie.js';
import { requestClient } from './session-client.js';
import { assertKeeperOptions, cookieAfterCommit, cookieExpiry, FETCH_SESSION_FORMAT, isSessionId, SessionKeeper } from './session-keeper.js';
import { delegateStoreMethods, forwardStoreEvents, type StoreMethods } from './store-methods.js';

/** Options of {@link FetchSessionStore}: the store's options (see the README's "Options") and these. */
export interface FetchSessionStoreOptions extends SessionStoreOptions {
  /**
   * The secret the session cookie is signed with, or several: the first
   * signs, every one verifies, so a new secret goes first and an old one
   * stays behind it until the cookies it signed have expired (a cookie
   * signed with an older secret is signed again with the first).
   */
  secret: string | readonly string[];
  /** The session cookie. @default { name: 'sid', path: '/', httpOnly: true, secure: 'auto', sameSite: 'lax' } */
  cookie?: SessionCookieOptions;
  /**
   * Send the cookie again on every response of a stored session, so its
   * `maxAge` runs from the latest request rather than from the login.
   * @default false
   */
  rolling?: boolean;
  /**
   * Store a new session even when the request put nothing in it (and send
   * its cookie). Left `false`, a visitor whose requests store nothing costs
   * no write and gets no cookie.
   * @default false
   */
  saveUninitialized?: boolean;
  /**
   * Makes a new session id. The default gives 24 random bytes (192 bits),
   * base64url. Ids must be unpredictable: whoever knows one holds the session.
   * @default 24 bytes of node:crypto randomness, base64url
   */
  genid?: () => string;
  /**
   * A request header that may carry the session id instead of the cookie,
   * for API and mobile clients: `'x-session-id'`, say. Its value is signed
   * as the cookie's is (`s:<id>.<signature>`). A request that sends it gets
   * its new or renewed id back in the same response header (an empty value
   * when its session ended) and never a `Set-Cookie`; a request without it
   * is served by the cookie, and a new session's id is sent in both. A
   * browser app exposing it across origins lists it in
   * `Access-Control-Expose-Headers`.
   * @default undefined (the cookie only)
   */
  header?: string;
}

/** The response headers a commit adds: name (lower-case) and value. */
type ResponseHeader = readonly [name: string, value: string];

/**
 * Sessions for Fetch-API servers: {@link open} the session of a `Request`,
 * {@link commit} it onto the `Response` (or {@link withSession} does both
 * around a handler). Also the store's management methods (`close`, `purge`,
 * `destroyByUser`, ...) and events (`connect`, `disconnect`, `purge`, `purgeError`).
 *
 * @typeParam Data What sessions hold.
 * @typeParam FlashData What flash messages they hold.
 */
export class FetchSessionStore<Data extends object = SessionData, FlashData extends object = Data> extends EventEmitter<SessionStoreEvents> {
  /** The framework-neutral store underneath. */
  readonly store: SessionStore;
  /** The lifecycle of sessions over {@link store}. */
  readonly #keeper: SessionKeeper;
  readonly #cookie: ResolvedCookie;
  readonly #secrets: readonly string[];
  readonly #rolling: boolean;
  /** The id header's name, lower-cased; `undefined` without the `header` option. */
  readonly #idHeader: string | undefined;

  /**
   * @param options Where and how to store sessions (at least `url`), the
   *   secret and the cookie.
   * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the offending option.
   */
  constructor(options: FetchSessionStoreOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw invalidOption('options', 'must be an object with at least "url" and "secret"');
    const { secret, cookie, rolling = false, saveUninitialized = false, genid, header, ...storeOptions } = options;
    this.#secrets = resolveSecrets(secret);
    this.#cookie = resolveCookie(cookie);
    this.#idHeader = resolveIdHeader(header);
    assertKeeperOptions({ rolling, saveUninitialized, genid });
    this.#rolling = rolling;
    this.store = new SessionStore(storeOptions, { format: FETCH_SESSION_FORMAT });
    this.#keeper = new SessionKeeper(this.store, { genid, saveUninitialized });
    forwardStoreEvents(this.store, this);
  }

  /** The session cookie's name. */
  get cookieName(): string {
    return this.#cookie.name;
  }

  /**
   * Opens the session of a request: the live session its signed cookie
   * names, else a new, empty one (nothing is written until it is committed
   * holding something). A missing, tampered or unknown cookie gives a new
   * session under a fresh id.
   *
   * @param source The `Request`, its `Headers`, or its `Cookie` header.
   * @throws {SessionStoreError} when the database fails (`ERR_DATABASE`, `ERR_UNAVAILABLE`, `ERR_CORRUPT_ROW`).
   */
  async open(source: Request | Headers | string | null | undefined): Promise<FetchSession<Data, FlashData>> {
    let header: string | null = null;
    let headers: Headers | undefined;
    let https = false;
    if (typeof source === 'string') header = source;
    else if (source !== null && source !== undefined) {
      if ('url' in source && typeof source.url === 'string') {
        headers = source.headers;
        https = source.url.startsWith('https:');
      } else {
        headers = source as Headers;
      }
      header = headers.get('cookie');
    }
    // The id header, when the request sends it, names the session alone: a cookie beside it is not looked at.
    const idHeader = this.#idHeader === undefined || headers === undefined ? null : headers.get(this.#idHeader);
    const values = idHeader !== null ? (idHeader === '' ? [] : [idHeader]) : header === null ? [] : cookieValues(header, this.#cookie.name);
    let signed: { id: string; secretIndex: number } | undefined;
    for (const value of values) {
      signed = unsignSessionId(value, this.#secrets);
      if (signed !== undefined && isSessionId(signed.id)) break;
      signed = undefined;
    }
    const handle = await this.#keeper.load(signed?.id);
    // The Fetch API has no client address: the user agent only.
    if (typeof source === 'object' && source !== null)
      handle.client = requestClient(this.#keeper.store, 'url' in source ? source.headers : source, () => undefined);
    const loaded = signed !== undefined && handle.id === signed.id;
    return openFetchSession<Data, FlashData>({
      handle,
      keeper: this.#keeper,
      hadCookie: values.length > 0,
      renew: loaded && signed !== undefined && signed.secretIndex > 0,
      https,
      replaced: false,
      cleared: false,
      viaHeader: idHeader !== null,
    });
  }

  /**
   * Commits, and says what the response must carry: a `Set-Cookie`, the id
   * header, both (a new session of a cookie request when the `header` option
   * is on) or nothing.
   * @internal
   */
  async commitHeaders(session: object): Promise<ResponseHeader[]> {
    const state = requestSessionOf(session);
    if (state === undefined || state.keeper !== this.#keeper) throw new TypeError('smart-session-store/fetch: commit() takes a session this store opened');
    const outcome = await this.#keeper.commit(state.handle, state.handle.data, cookieExpiry(this.#cookie.maxAge, this.#cookie.expires));
    const secure = this.#cookie.secure === 'auto' ? state.https : this.#cookie.secure;
    const action = cookieAfterCommit(outcome, state, { rolling: this.#rolling, replaced: state.replaced });
    if (action === undefined) return [];
    const signed = action === 'set' ? signSessionId(state.handle.id, this.#secrets[0] as string) : '';
    const answer: ResponseHeader[] = [];
    if (!state.viaHeader) answer.push(['set-cookie', serializeCookie(this.#cookie, signed, { secure, expired: action === 'clear' })]);
    // A cookie request learns its new id in the header too (how an API client gets its first one), never that it ended.
    if (this.#idHeader !== undefined && (state.viaHeader || action === 'set')) answer.push([this.#idHeader, signed]);
    return answer;
  }

  /**
   * Commits the session: writes what this request changed (a new session
   * only when it holds something, or `saveUninitialized`), and sets the
   * cookie only when needed: a new session stored, a new id after
   * `regenerate`, `rolling`, a cookie signed with an older secret, or a
   * clearing cookie after `destroy`. Resolves once the write is committed.
   *
   * - `commit(session)`: resolves to the `Set-Cookie` value, or `undefined`
   *   (the id header of the `header` option needs one of the forms below).
   * - `commit(session, headers)`: appends it to `headers`.
   * - `commit(session, response)`: resolves to the response with it (a copy
   *   when the response's headers are immutable).
   *
   * @throws {SessionStoreError} when the write fails (`ERR_VALUE_NOT_STORABLE`, `ERR_SESSION_TOO_LARGE`, `ERR_DATABASE`, ...): answer with an error, not the response.
   */
  commit<D extends object, F extends object>(session: FetchSession<D, F>): Promise<string | undefined>;
  commit<D extends object, F extends object>(session: FetchSession<D, F>, headers: Headers): Promise<void>;
  commit<D extends object, F extends object>(session: FetchSession<D, F>, response: Response): Promise<Response>;
  // biome-ignore lint/suspicious/noConfusingVoidType: the implementation of an overload that returns Promise<void>
  async commit<D extends object, F extends object>(session: FetchSession<D, F>, target?: Headers | Response): Promise<string | undefined | void | Response> {
    const answer = await this.commitHeaders(session);
    if (target === undefined) return answer.find(([name]) => name === 'set-cookie')?.[1];
    if ('status' in target && 'headers' in target) return answer.length === 0 ? target : withHeaders(target, answer);
    for (const [name, value] of answer) addHeader(target, name, value);
  }

  /**
   * Wraps a Fetch handler: opens the request's session, runs the handler,
   * commits the session onto its response. Extra arguments (a Next.js
   * route's `{ params }`, Bun's server) are passed through. A handler that
   * throws commits nothing; a commit that fails rejects (the server answers
   * with an error, never the handler's response).
   */
  withSession<Args extends unknown[]>(
    handler: (request: Request, session: FetchSession<Data, FlashData>, ...args: Args) => Response | Promise<Response>,
  ): (request: Request, ...args: Args) => Promise<Response> {
    return async (request, ...args) => {
      const session = await this.open(request);
      const response = await handler(request, session, ...args);
      return this.commit(session, response);
    };
  }
}

/** Adds a header the commit decided: `Set-Cookie` beside the others, the id header in place of any. */
function addHeader(headers: Headers, name: string, value: string): void {
  if (name === 'set-cookie') headers.append(name, value);
  else headers.set(name, value);
}

/** The response with the commit's headers: itself, or a copy when its headers are immutable. */
function withHeaders(response: Response, answer: readonly ResponseHeader[]): Response {
  try {
    for (const [name, value] of answer) addHeader(response.headers, name, value);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    for (const [name, value] of answer) addHeader(copy.headers, name, value);
    return copy;
  }
}

// The store's own methods: createTable, ready, close, purge, stats, destroyByUser, destroyByHandle, listByUser, lockingMode.
delegateStoreMethods(FetchSessionStore);
// biome-ignore lint/correctness/noUnusedVariables: merged with the class, it must repeat the class's type parameters
export interface FetchSessionStore<Data extends object = SessionData, FlashData extends object = Data> extends StoreMethods {}
