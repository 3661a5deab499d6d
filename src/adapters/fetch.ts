/**
 * Sessions for any Fetch-API server (a Next.js route handler, Bun, Deno,
 * `@hono/node-server`, a service worker-style `fetch(request)` function):
 * open the session of a `Request`, read and change it, commit it onto the
 * `Response`. Each request writes only what it changed, merged into the
 * latest stored session, so overlapping requests of one user keep all their
 * changes. `smart-session-store/hono` and `smart-session-store/react-router`
 * are built on this module.
 *
 * ```ts
 * import { FetchSessionStore } from 'smart-session-store/fetch';
 *
 * const sessions = new FetchSessionStore({
 *   url: 'postgres://postgres@127.0.0.1:5432/test',
 *   createTable: true,
 *   secret: process.env.SESSION_SECRET,
 *   cookie: { maxAge: 24 * 3600 }, // seconds
 * });
 *
 * export const POST = sessions.withSession(async (request, session) => {
 *   session.set('visits', Number(session.get('visits') ?? 0) + 1);
 *   return Response.json({ visits: session.get('visits') });
 * });
 * ```
 *
 * The cookie holds only the session id, signed as express-session signs it
 * (`s:<id>.<HMAC-SHA256, base64 without padding>`), so sessions survive a
 * move between express-session and this module when the secret is the same.
 *
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { isForbiddenKey } from '../core/json.js';
import type { SessionHandle } from '../core/session-handle.js';
import type { SessionFormat } from '../core/session-format.js';
import type { SessionStoreEvents } from '../core/session-store.js';
import { assertSessionId } from '../core/session-id.js';
import { SessionStoreError } from '../errors.js';
import { SessionStore } from '../store.js';
import type { SessionStoreOptions } from '../options.js';
import { delegateStoreMethods, forwardStoreEvents, type StoreMethods } from './store-methods.js';
import { assertCookieMaxAge } from './cookie-lifetime.js';
import { ObjectSlot } from './object-slot.js';

export type { SessionStoreOptions } from '../options.js';
export type { LockingMode } from '../core/options.js';
export type { UserSession, PurgeOptions, SessionStats } from '../core/session-store.js';
export { SessionStoreError };
export type { SessionStoreErrorCode } from '../errors.js';

/**
 * Sessions of this module: the application's data only, no bookkeeping. A
 * session expires `cookie.maxAge` seconds after its last write when the
 * cookie has a `maxAge` (each commit says so), else `ttl` seconds after it.
 */
export const FETCH_SESSION_FORMAT: SessionFormat = {
  bookkeeping: new Set(),
  bookkeepingChanged: () => false,
  expiresAt: () => undefined,
};

/** What a session holds, by key: any value JSON can hold. Narrow it with your own type. */
export type SessionData = Record<string, unknown>;

/**
 * The key a flash message is kept under in the session's data: React
 * Router's, so both adapters read each other's flashes.
 */
export function flashKey(name: string): `__flash_${string}__` {
  return `__flash_${name}__`;
}

/** `SameSite` of the session cookie. */
export type SameSite = 'lax' | 'strict' | 'none';

/** Attributes of the session cookie. */
export interface SessionCookieOptions {
  /**
   * The cookie's name. A name starting with `__Secure-` or `__Host-` makes
   * the cookie `Secure` whatever `secure` says (browsers refuse it otherwise).
   * @default 'sid'
   */
  name?: string;
  /** @default '/' */
  path?: string;
  /** The cookie's `Domain`; left out, the cookie goes to the exact host only. @default undefined */
  domain?: string;
  /** Keep the cookie away from scripts. @default true */
  httpOnly?: boolean;
  /**
   * `Secure`: sent over HTTPS only. `'auto'`: when the request's URL is
   * `https:` (behind a proxy that ends TLS the URL is usually `http:`: set
   * `true` there).
   * @default 'auto'
   */
  secure?: boolean | 'auto';
  /** `SameSite`, or `false` to leave the attribute out. @default 'lax' */
  sameSite?: SameSite | false;
  /**
   * Lifetime in **seconds** (as `Set-Cookie`'s `Max-Age`, Hono and React
   * Router count it; express counts milliseconds). The stored session
   * expires this long after its last write. At most 400 days (34,560,000 s),
   * the longest browsers keep a cookie: a larger value, usually milliseconds
   * (`86400000` for a day), is refused with `ERR_INVALID_OPTION`. Left out
   * (and no `expires`): a browser-session cookie, and the stored session
   * lives `ttl` seconds after its last write.
   * @default undefined
   */
  maxAge?: number;
  /** A fixed expiry for the cookie and the stored session; `maxAge` wins over it. @default undefined */
  expires?: Date;
  /** `Partitioned` (CHIPS); needs `secure`. @default false */
  partitioned?: boolean;
}

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
}

/** What a commit did, for the adapter deciding about the cookie. */
export type CommitOutcome =
  /** A new session was stored: the response must carry its cookie. */
  | 'created'
  /** A stored session was saved (its change, its expiry, or nothing needed writing). */
  | 'saved'
  /** Nothing is stored for this session: new and empty, or destroyed. */
  | 'unstored';

/** Random session ids: 192 bits. */
function randomId(): string {
  return randomBytes(24).toString('base64url');
}

/** True for a string the store accepts as a session id. */
export function isSessionId(id: unknown): id is string {
  try {
    assertSessionId(id);
    return true;
  } catch {
    return false;
  }
}

/** True when the session holds no value (an `undefined` value is not stored, so it does not count). */
function isEmptySession(data: object): boolean {
  return Object.values(data).every((value) => value === undefined);
}

/**
 * A session's life over the store, whatever the cookie looks like: load the
 * session a cookie names (or start a new one under a fresh id), commit it,
 * replace it. `FetchSessionStore` and the React Router adapter are built on it;
 * it is public for writing an adapter of another Fetch-API framework.
 */
export class SessionKeeper {
  /** The store underneath. */
  readonly store: SessionStore;
  readonly #genid: () => string;
  readonly #saveUninitialized: boolean;

  constructor(store: SessionStore, options: { genid?: (() => string) | undefined; saveUninitialized?: boolean | undefined } = {}) {
    this.store = store;
    this.#genid = options.genid ?? randomId;
    this.#saveUninitialized = options.saveUninitialized ?? false;
  }

  /** A fresh session id. @throws {SessionStoreError} `ERR_INVALID_SESSION_ID` when `genid` made an unusable one. */
  newId(): string {
    const id = this.#genid();
    assertSessionId(id);
    return id;
  }

  /**
   * The live session `id` names, or a new, empty one under a fresh id when
   * there is none: a cookie naming a missing, expired or destroyed session
   * never brings that id back.
   */
  async load(id: string | undefined): Promise<SessionHandle> {
    if (id !== undefined && isSessionId(id)) {
      const handle = await this.store.open(id);
      if (handle !== null) return handle;
    }
    return this.store.create(this.newId());
  }

  /** Destroys the session (when anything of it is stored) and gives a new, empty one under a fresh id. */
  async replace(handle: SessionHandle): Promise<SessionHandle> {
    const id = this.newId();
    if (handle.isNew && !handle.isDestroyed) return this.store.create(id);
    return handle.regenerate(id);
  }

  /**
   * Commits the live session: a new one is stored only when it holds
   * something (or `saveUninitialized`), a stored one writes its change, its
   * expiry or nothing. `expiresAt` (epoch ms) left out: `ttl` from now.
   */
  async commit(handle: SessionHandle, live: object, expiresAt: number | undefined): Promise<CommitOutcome> {
    if (handle.isDestroyed) return 'unstored';
    if (handle.isNew) {
      if (!this.#saveUninitialized && isEmptySession(live)) return 'unstored';
      await handle.commit(live, { expiresAt });
      return 'created';
    }
    await handle.commit(live, { expiresAt });
    return 'saved';
  }
}

/** A cookie name as RFC 6265 allows it (a token). */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A cookie attribute value: no `;`, no control characters. */
// eslint-disable-next-line no-control-regex
const ATTRIBUTE_VALUE = /^[^;\u0000-\u001f\u007f]*$/;

/** The values of every cookie called `name` in a `Cookie` header, in order. */
export function cookieValues(header: string, name: string): string[] {
  const values: string[] = [];
  for (const part of header.split(';')) {
    const equals = part.indexOf('=');
    if (equals < 0 || part.slice(0, equals).trim() !== name) continue;
    let value = part.slice(equals + 1).trim();
    if (value.length >= 2 && value.startsWith('"') && value.endsWith('"')) value = value.slice(1, -1);
    values.push(value);
  }
  return values;
}

/** express-session's signature of a value: HMAC-SHA256, base64 without `=` padding. */
function signatureOf(value: string, secret: string): string {
  return createHmac('sha256', secret).update(value).digest('base64').replace(/=+$/, '');
}

/** The cookie value for a session id: `s:<id>.<signature>`, as express-session writes it (before URL encoding). */
export function signSessionId(id: string, secret: string): string {
  return `s:${id}.${signatureOf(id, secret)}`;
}

/**
 * The session id a cookie value holds when its signature verifies with one
 * of `secrets` (compared in constant time), with the index of that secret;
 * `undefined` for an unsigned, tampered or malformed value. Accepts the value
 * URL-encoded or not.
 */
export function unsignSessionId(cookieValue: string, secrets: readonly string[]): { id: string; secretIndex: number } | undefined {
  let value = cookieValue;
  try {
    value = decodeURIComponent(cookieValue);
  } catch {
    return undefined;
  }
  if (!value.startsWith('s:')) return undefined;
  const dot = value.lastIndexOf('.');
  if (dot <= 2) return undefined;
  const id = value.slice(2, dot);
  const given = Buffer.from(value.slice(dot + 1));
  let secretIndex = -1;
  // Every secret is tried, so the time taken does not tell which one matched.
  secrets.forEach((secret, index) => {
    const expected = Buffer.from(signatureOf(id, secret));
    if (expected.length === given.length && timingSafeEqual(expected, given) && secretIndex < 0) secretIndex = index;
  });
  return secretIndex < 0 ? undefined : { id, secretIndex };
}

/** Cookie attributes after validation. */
interface ResolvedCookie {
  readonly name: string;
  readonly path: string;
  readonly domain: string | undefined;
  readonly httpOnly: boolean;
  readonly secure: boolean | 'auto';
  readonly sameSite: SameSite | false;
  readonly maxAge: number | undefined;
  readonly expires: Date | undefined;
  readonly partitioned: boolean;
}

function invalid(name: string, why: string): SessionStoreError {
  return new SessionStoreError('ERR_INVALID_OPTION', `option "${name}" ${why}`);
}

function resolveCookie(cookie: SessionCookieOptions | undefined): ResolvedCookie {
  if (cookie !== undefined && (typeof cookie !== 'object' || cookie === null)) throw invalid('cookie', 'must be an object');
  const { name = 'sid', path = '/', domain, httpOnly = true, secure = 'auto', sameSite = 'lax', maxAge, expires, partitioned = false } = cookie ?? {};
  if (typeof name !== 'string' || !COOKIE_NAME.test(name)) throw invalid('cookie.name', `must be a cookie name (letters, digits, !#$%&'*+-.^_\`|~), got ${JSON.stringify(name)}`);
  if (typeof path !== 'string' || !path.startsWith('/') || !ATTRIBUTE_VALUE.test(path)) throw invalid('cookie.path', `must be a path starting with "/", got ${JSON.stringify(path)}`);
  if (domain !== undefined && (typeof domain !== 'string' || !/^\.?[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(domain))) {
    throw invalid('cookie.domain', `must be a host name, got ${JSON.stringify(domain)}`);
  }
  if (typeof httpOnly !== 'boolean') throw invalid('cookie.httpOnly', 'must be true or false');
  if (secure !== 'auto' && typeof secure !== 'boolean') throw invalid('cookie.secure', 'must be true, false or "auto"');
  const sameSiteValue = typeof sameSite === 'string' ? (sameSite.toLowerCase() as SameSite) : sameSite;
  if (sameSiteValue !== false && !['lax', 'strict', 'none'].includes(sameSiteValue)) throw invalid('cookie.sameSite', `must be "lax", "strict", "none" or false, got ${JSON.stringify(sameSite)}`);
  if (maxAge !== undefined && (typeof maxAge !== 'number' || !Number.isFinite(maxAge) || maxAge <= 0)) {
    throw invalid('cookie.maxAge', `must be a positive number of seconds, got ${JSON.stringify(maxAge)}`);
  }
  if (maxAge !== undefined) assertCookieMaxAge('cookie.maxAge', maxAge);
  if (expires !== undefined && (!(expires instanceof Date) || !Number.isFinite(expires.getTime()))) throw invalid('cookie.expires', 'must be a valid Date');
  if (typeof partitioned !== 'boolean') throw invalid('cookie.partitioned', 'must be true or false');
  // Browsers refuse these prefixes without Secure (and __Host- with a Domain or a path other than /).
  const prefixed = name.startsWith('__Secure-') || name.startsWith('__Host-');
  if (name.startsWith('__Host-') && (domain !== undefined || path !== '/')) throw invalid('cookie.name', 'starting with "__Host-" needs path "/" and no domain');
  return { name, path, domain, httpOnly, secure: prefixed ? true : secure, sameSite: sameSiteValue, maxAge, expires, partitioned };
}

function resolveSecrets(secret: unknown): readonly string[] {
  const secrets = typeof secret === 'string' ? [secret] : Array.isArray(secret) ? (secret as unknown[]) : undefined;
  if (secrets === undefined || secrets.length === 0) throw invalid('secret', 'must be a non-empty string or a non-empty array of them (the first signs, all verify)');
  for (const [index, value] of secrets.entries()) {
    if (typeof value !== 'string' || value === '') throw invalid(typeof secret === 'string' ? 'secret' : `secret[${index}]`, 'must be a non-empty string');
  }
  return Object.freeze([...(secrets as string[])]);
}

/** A `Set-Cookie` header value. */
function serializeCookie(cookie: ResolvedCookie, value: string, { secure, expired }: { secure: boolean; expired: boolean }): string {
  const parts = [`${cookie.name}=${encodeURIComponent(value)}`, `Path=${cookie.path}`];
  if (cookie.domain !== undefined) parts.push(`Domain=${cookie.domain}`);
  if (expired) {
    parts.push('Max-Age=0', 'Expires=Thu, 01 Jan 1970 00:00:00 GMT');
  } else if (cookie.maxAge !== undefined) {
    parts.push(`Max-Age=${Math.floor(cookie.maxAge)}`, `Expires=${new Date(Date.now() + cookie.maxAge * 1000).toUTCString()}`);
  } else if (cookie.expires !== undefined) {
    parts.push(`Expires=${cookie.expires.toUTCString()}`);
  }
  if (cookie.httpOnly) parts.push('HttpOnly');
  if (secure) parts.push('Secure');
  if (cookie.sameSite !== false) parts.push(`SameSite=${cookie.sameSite[0]?.toUpperCase()}${cookie.sameSite.slice(1)}`);
  if (cookie.partitioned) parts.push('Partitioned');
  return parts.join('; ');
}

/** Appends a `Set-Cookie` to a response, copying the response when its headers are immutable (one from `fetch()`, say). */
export function appendSetCookie(response: Response, setCookie: string): Response {
  try {
    response.headers.append('Set-Cookie', setCookie);
    return response;
  } catch {
    const copy = new Response(response.body, response);
    copy.headers.append('Set-Cookie', setCookie);
    return copy;
  }
}

/** @internal What a request's session knows besides its handle. */
export interface RequestSession {
  handle: SessionHandle;
  readonly keeper: SessionKeeper;
  /** The request carried a cookie of this name (valid or not). */
  readonly hadCookie: boolean;
  /** The cookie verified with an older secret: send it again, signed with the first. */
  readonly renew: boolean;
  /** The request came over HTTPS (for `secure: 'auto'`). */
  readonly https: boolean;
  /** destroy() or regenerate() ran: the old session is gone. */
  replaced: boolean;
  /** A clearing cookie was already sent. */
  cleared: boolean;
}

const requestSessions = new ObjectSlot<RequestSession>('smart-session-store/fetch session');

/**
 * One request's session. Read and change it through {@link get} / {@link set}
 * / {@link unset} / {@link flash}, or through {@link data}, the live object
 * (change it in place; nested objects too). Values must be what JSON holds
 * (a `Date` is stored as its ISO string). Nothing is written until the store
 * commits the session, and then only what this request changed.
 *
 * @typeParam Data What the session holds.
 * @typeParam FlashData What flash messages it holds (read once, then gone).
 */
export class FetchSession<Data extends object = SessionData, FlashData extends object = Data> {
  readonly #state: RequestSession;

  /** @internal Sessions come from {@link FetchSessionStore.open}. */
  constructor(state: RequestSession) {
    this.#state = state;
    requestSessions.set(this, state);
  }

  /** The session id. A new session has its id from the start (it is stored, and its cookie sent, only once it holds something). */
  get id(): string {
    return this.#state.handle.id;
  }

  /** True while nothing of this session is stored: new (no cookie, or one naming no live session), or just regenerated. */
  get isNew(): boolean {
    return this.#state.handle.isNew;
  }

  /**
   * The session's data: the live object, changed in place. After
   * {@link regenerate} or {@link destroy} it is another (empty) object. Flash
   * messages sit in it under `__flash_<name>__`.
   */
  get data(): Data {
    return this.#state.handle.data as Data;
  }

  #values(): Record<string, unknown> {
    return this.#state.handle.data;
  }

  /** True when the session has a value, or an unread flash message, under `key`. */
  has(key: (keyof Data | keyof FlashData) & string): boolean {
    const values = this.#values();
    return (Object.hasOwn(values, key) && values[key] !== undefined) || Object.hasOwn(values, flashKey(key));
  }

  /**
   * The value under `key`, or else the flash message under `key`, which this
   * read removes (the request's commit deletes it from the store; a flash
   * another request sets meanwhile is not touched).
   */
  get<Key extends (keyof Data | keyof FlashData) & string>(
    key: Key,
  ): (Key extends keyof Data ? Data[Key] : never) | (Key extends keyof FlashData ? FlashData[Key] : never) | undefined {
    type Result = (Key extends keyof Data ? Data[Key] : never) | (Key extends keyof FlashData ? FlashData[Key] : never) | undefined;
    const values = this.#values();
    if (Object.hasOwn(values, key)) return values[key] as Result;
    const flashed = flashKey(key);
    if (!Object.hasOwn(values, flashed)) return undefined;
    const value = values[flashed];
    delete values[flashed];
    return value as Result;
  }

  /**
   * Sets `key`. @throws {SessionStoreError} `ERR_FORBIDDEN_KEY` for `__proto__`,
   * `constructor`, `prototype` (other values JSON cannot hold are refused by the commit).
   */
  set<Key extends keyof Data & string>(key: Key, value: Data[Key]): this {
    if (isForbiddenKey(key)) throw new SessionStoreError('ERR_FORBIDDEN_KEY', `session key "${key}" is not allowed`);
    this.#values()[key] = value;
    return this;
  }

  /** Removes `key`. */
  unset(key: keyof Data & string): this {
    delete this.#values()[key];
    return this;
  }

  /** Sets a flash message: kept until a request reads it with {@link get}. */
  flash<Key extends keyof FlashData & string>(key: Key, value: FlashData[Key]): this {
    if (isForbiddenKey(key)) throw new SessionStoreError('ERR_FORBIDDEN_KEY', `session key "${key}" is not allowed`);
    this.#values()[flashKey(key)] = value;
    return this;
  }

  /**
   * Gives the session a new id and nothing of the old one (call it at login,
   * so an id known before is worth nothing after). The old session is
   * deleted at once; requests still carrying its id cannot bring it back.
   * What the request sets afterwards is stored under the new id, whose
   * cookie the commit sends. To keep a value across, read it before.
   */
  async regenerate(): Promise<void> {
    const state = this.#state;
    state.handle = await state.keeper.replace(state.handle);
    state.replaced = true;
  }

  /**
   * Deletes the session at once (logout); concurrent requests cannot bring
   * it back. The commit clears the cookie, unless the request then sets
   * something (a flash "logged out", say): that starts a new session under a
   * new id, as after {@link regenerate}.
   */
  async destroy(): Promise<void> {
    await this.regenerate();
  }
}

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
  readonly keeper: SessionKeeper;
  readonly #cookie: ResolvedCookie;
  readonly #secrets: readonly string[];
  readonly #rolling: boolean;

  /**
   * @param options Where and how to store sessions (at least `url`), the
   *   secret and the cookie.
   * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the offending option.
   */
  constructor(options: FetchSessionStoreOptions) {
    super();
    if (typeof options !== 'object' || options === null) throw invalid('options', 'must be an object with at least "url" and "secret"');
    const { secret, cookie, rolling = false, saveUninitialized = false, genid, ...storeOptions } = options;
    this.#secrets = resolveSecrets(secret);
    this.#cookie = resolveCookie(cookie);
    if (typeof rolling !== 'boolean') throw invalid('rolling', 'must be true or false');
    if (typeof saveUninitialized !== 'boolean') throw invalid('saveUninitialized', 'must be true or false');
    if (genid !== undefined && typeof genid !== 'function') throw invalid('genid', 'must be a function returning a session id');
    this.#rolling = rolling;
    this.store = new SessionStore(storeOptions, { format: FETCH_SESSION_FORMAT });
    this.keeper = new SessionKeeper(this.store, { genid, saveUninitialized });
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
    let https = false;
    if (typeof source === 'string') header = source;
    else if (source !== null && source !== undefined) {
      if ('url' in source && typeof source.url === 'string') {
        header = source.headers.get('cookie');
        https = source.url.startsWith('https:');
      } else {
        header = (source as Headers).get('cookie');
      }
    }
    const values = header === null ? [] : cookieValues(header, this.#cookie.name);
    let signed: { id: string; secretIndex: number } | undefined;
    for (const value of values) {
      signed = unsignSessionId(value, this.#secrets);
      if (signed !== undefined && isSessionId(signed.id)) break;
      signed = undefined;
    }
    const handle = await this.keeper.load(signed?.id);
    const loaded = signed !== undefined && handle.id === signed.id;
    return new FetchSession<Data, FlashData>({
      handle,
      keeper: this.keeper,
      hadCookie: values.length > 0,
      renew: loaded && signed !== undefined && signed.secretIndex > 0,
      https,
      replaced: false,
      cleared: false,
    });
  }

  /** When a session committed now expires: `maxAge` from now, else the fixed `expires`, else `undefined` (`ttl`). */
  #expiresAt(): number | undefined {
    const { maxAge, expires } = this.#cookie;
    if (maxAge !== undefined) return Date.now() + maxAge * 1000;
    return expires?.getTime();
  }

  /** Commits, and says what the response's cookie must be: a `Set-Cookie` value, or `undefined` for none. */
  async #commit(session: object): Promise<string | undefined> {
    const state = requestSessions.get(session);
    if (state === undefined || state.keeper !== this.keeper) throw new TypeError('smart-session-store/fetch: commit() takes a session this store opened');
    const outcome = await this.keeper.commit(state.handle, state.handle.data, this.#expiresAt());
    const secure = this.#cookie.secure === 'auto' ? state.https : this.#cookie.secure;
    if (outcome === 'created' || (outcome === 'saved' && (this.#rolling || state.renew))) {
      return serializeCookie(this.#cookie, signSessionId(state.handle.id, this.#secrets[0] as string), { secure, expired: false });
    }
    if (outcome === 'unstored' && state.replaced && state.hadCookie && !state.cleared) {
      state.cleared = true;
      return serializeCookie(this.#cookie, '', { secure, expired: true });
    }
    // Nothing else sends a cookie: a stale one is left alone, since clearing it
    // could erase a new session's cookie that an overlapping response just set.
    return undefined;
  }

  /**
   * Commits the session: writes what this request changed (a new session
   * only when it holds something, or `saveUninitialized`), and sets the
   * cookie only when needed: a new session stored, a new id after
   * `regenerate`, `rolling`, a cookie signed with an older secret, or a
   * clearing cookie after `destroy`. Resolves once the write is committed.
   *
   * - `commit(session)`: resolves to the `Set-Cookie` value, or `undefined`.
   * - `commit(session, headers)`: appends it to `headers`.
   * - `commit(session, response)`: resolves to the response with it (a copy
   *   when the response's headers are immutable).
   *
   * @throws {SessionStoreError} when the write fails (`ERR_VALUE_NOT_STORABLE`, `ERR_SESSION_TOO_LARGE`, `ERR_DATABASE`, ...): answer with an error, not the response.
   */
  commit<D extends object, F extends object>(session: FetchSession<D, F>): Promise<string | undefined>;
  commit<D extends object, F extends object>(session: FetchSession<D, F>, headers: Headers): Promise<void>;
  commit<D extends object, F extends object>(session: FetchSession<D, F>, response: Response): Promise<Response>;
  async commit<D extends object, F extends object>(session: FetchSession<D, F>, target?: Headers | Response): Promise<string | undefined | void | Response> {
    const setCookie = await this.#commit(session);
    if (target === undefined) return setCookie;
    if ('status' in target && 'headers' in target) return setCookie === undefined ? target : appendSetCookie(target, setCookie);
    if (setCookie !== undefined) target.append('Set-Cookie', setCookie);
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

// The store's own methods: createTable, ready, close, purge, stats, destroyByUser, listByUser, lockingMode.
delegateStoreMethods(FetchSessionStore);
export interface FetchSessionStore<Data extends object = SessionData, FlashData extends object = Data> extends StoreMethods {}

export default FetchSessionStore;
