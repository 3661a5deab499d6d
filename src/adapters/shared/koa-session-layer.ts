/**
 * The session layer of `smart-session-store/koa`: koa-session's middleware
 * and `ctx.session`, over the store's per-request handle instead of an
 * external store's `get`/`set`.
 *
 * The middleware reads the session cookie (signed by Koa's `ctx.cookies`,
 * `<key>.sig` beside it, as koa-session signs it) and opens the session it
 * names, once; `ctx.session` is built from it on first access. After the
 * downstream middleware (koa-session's commit point), the session is committed
 * once through its handle: the core diffs it against what the request loaded
 * and writes that delta, or only the expiry, or nothing. There is no
 * whole-session hash: whether the session changed is the delta's to say, and
 * the cookie is decided from it. A request that never reads `ctx.session`
 * commits nothing.
 */
import { randomUUID } from 'node:crypto';
import { inspect } from 'node:util';
import type { SessionHandle } from '../../core/session-handle.js';
import { carryKey, isUntouched, plainView } from '../../core/live-session.js';
import { assertSessionId } from '../../core/session-id.js';
import type { SessionStore } from '../../store.js';
import { commitKoaSession } from './koa-session-format.js';
import { ObjectSlot } from './object-slot.js';
import { requestClient } from './session-client.js';
import { isSessionId } from './session-keeper.js';
import { invalidOption, resolveIdHeader, signSessionId, unsignSessionId } from './signed-cookie.js';

/** koa-session's lifetime when `maxAge` is left out: one day. */
const ONE_DAY = 24 * 3600 * 1000;
/** The expiry of a clearing cookie, as koa-session writes it. */
const COOKIE_EPOCH = new Date('Thu, 01 Jan 1970 00:00:00 GMT');

/** Attributes of a cookie as Koa's `ctx.cookies` (the `cookies` package) takes them. */
export interface KoaCookieOptions {
  maxAge?: number | false | undefined;
  expires?: Date | undefined;
  path?: string | undefined;
  domain?: string | undefined;
  secure?: boolean | undefined;
  httpOnly?: boolean | undefined;
  sameSite?: 'strict' | 'lax' | 'none' | boolean | undefined;
  signed?: boolean | undefined;
  overwrite?: boolean | undefined;
  partitioned?: boolean | undefined;
  priority?: 'low' | 'medium' | 'high' | undefined;
}

/** What the layer uses of a Koa context (any Koa 2 or 3 `ctx` has it). */
export interface KoaContext {
  /** Koa's cookie jar: reads and sets (and signs, with `app.keys`) cookies. */
  readonly cookies: {
    get(name: string, options?: { signed?: boolean }): string | undefined;
    set(name: string, value?: string | null, options?: KoaCookieOptions): unknown;
  };
  /** The application, which the layer's events (`session:missed`, `session:invalid`) are emitted on; its `keys` sign the id header. */
  readonly app: { emit(event: string, ...args: unknown[]): unknown; readonly keys?: unknown };
  /** The request's headers (the id header of the `header` option is read there). */
  readonly headers?: Readonly<Record<string, string | string[] | undefined>>;
  /** Sets a response header. */
  set?(name: string, value: string): void;
}

/** Where the session id comes from and goes to when it is not the cookie: a header, say. */
export interface KoaExternalKey<Context extends object = KoaContext> {
  /** The request's session id, if it has one. */
  get(ctx: Context): string | undefined;
  /** Sends the session id with the response (called once the session is saved). */
  set(ctx: Context, key: string): void;
}

/** koa-session's options, as {@link smartSession} takes them (besides `store`). */
export interface KoaSessionOptions<Context extends object = KoaContext> {
  /**
   * The cookie's name (with `signed`, `<key>.sig` holds the signature).
   * @default 'koa.sess'
   */
  key?: string;
  /**
   * The session's lifetime in **milliseconds** from its last save, or
   * `'session'` for a cookie that ends with the browser session (the stored
   * session then lives `ttl` seconds from its last write). Left out, as in
   * koa-session, the stored session lives one day from its last save and the
   * cookie has no `Expires`.
   * @default 86400000 (one day; the cookie without `Expires`)
   */
  maxAge?: number | 'session';
  /**
   * Commit the session after the downstream middleware. Set `false` to
   * commit yourself with `ctx.session.manuallyCommit()`.
   * @default true
   */
  autoCommit?: boolean;
  /** Replace a `Set-Cookie` of the same name set earlier in the response. @default true */
  overwrite?: boolean;
  /** Keep the cookie away from scripts. @default true */
  httpOnly?: boolean;
  /** Sign the cookie with `app.keys` (keygrip, `<key>.sig`); a request whose signature does not verify gets a new session. @default true */
  signed?: boolean;
  /** Send the cookie (and keep the stored session alive) on every response of a stored session. @default false */
  rolling?: boolean;
  /** Send the cookie again (and keep the stored session alive) once less than half of `maxAge` is left. @default false */
  renew?: boolean;
  /** `Secure`; left out, Koa sets it when the request came over HTTPS. @default undefined */
  secure?: boolean;
  /** `SameSite` (`true` is `'strict'`); left out, no attribute. @default undefined */
  sameSite?: 'strict' | 'lax' | 'none' | boolean;
  /** The cookie's `Path`. @default '/' */
  path?: string;
  /** The cookie's `Domain`; left out, the exact host only. @default undefined */
  domain?: string;
  /** `Partitioned` (CHIPS). @default false */
  partitioned?: boolean;
  /** `Priority`. @default undefined */
  priority?: 'low' | 'medium' | 'high';
  /**
   * Makes a new session id. Ids must be unpredictable: whoever knows one holds the session.
   * @default `${prefix}${crypto.randomUUID()}`
   */
  genid?(ctx: Context): string;
  /** Put before every id the default `genid` makes (not used with a `genid` of your own). @default '' */
  prefix?: string;
  /**
   * Checks a loaded session before the request sees it (with koa-session's
   * `_expire` and `_maxAge`); `false` gives the request a new session.
   * @default undefined
   */
  valid?(ctx: Context, session: Record<string, unknown>): boolean;
  /**
   * Runs before each commit of a session the request read (koa-session: before
   * each save). The layer has no hash to tell beforehand whether the session
   * changed: a hook that changes it on every call makes every such request a write.
   * @default undefined
   */
  beforeSave?(ctx: Context, session: KoaSession): void;
  /** Take the session id from somewhere else than the cookie, as you choose (see `header` for a signed header). @default undefined (the cookie) */
  externalKey?: KoaExternalKey<Context>;
  /**
   * A request header that may carry the session id instead of the cookie,
   * for API and mobile clients: `'x-session-id'`, say. With `signed` (the
   * default) its value is signed with `app.keys` as express-session signs
   * its cookie (`s:<id>.<HMAC-SHA256>`; the first key signs, every one
   * verifies), else the bare id. A request that sends it is answered in the
   * same header whenever the cookie would have been sent (an empty value
   * when `ctx.session = null` ended the session) and never gets a cookie; a
   * request without it is served by the cookie, and a session under a new id
   * is sent in both. Not with `externalKey`.
   * @default undefined (the cookie only)
   */
  header?: string;
}

/** The options of one request, as `ctx.sessionOptions` shows them: a copy, which the request may change (`maxAge`, say). */
export interface KoaSessionRequestOptions {
  key: string;
  maxAge: number | 'session' | undefined;
  autoCommit: boolean;
  overwrite: boolean;
  httpOnly: boolean;
  signed: boolean;
  rolling: boolean;
  renew: boolean;
  secure: boolean | undefined;
  sameSite: 'strict' | 'lax' | 'none' | boolean | undefined;
  path: string | undefined;
  domain: string | undefined;
  partitioned: boolean | undefined;
  priority: 'low' | 'medium' | 'high' | undefined;
  prefix: string | undefined;
  genid: (ctx: object) => string;
  valid: ((ctx: object, session: Record<string, unknown>) => boolean) | undefined;
  beforeSave: ((ctx: object, session: KoaSession) => void) | undefined;
  externalKey: KoaExternalKey<object> | undefined;
  /** The id header's name, lower-cased; `undefined` for the cookie only. */
  header: string | undefined;
}

const BOOLEANS = ['autoCommit', 'overwrite', 'httpOnly', 'signed', 'rolling', 'renew', 'secure', 'partitioned'] as const;
const STRINGS = ['path', 'domain', 'prefix'] as const;
const FUNCTIONS = ['genid', 'valid', 'beforeSave'] as const;
const KNOWN = new Set<string>(['key', 'maxAge', 'sameSite', 'priority', 'externalKey', 'header', ...BOOLEANS, ...STRINGS, ...FUNCTIONS]);
/** koa-session's options that have no use with a store, and why. */
const NOT_TAKEN: Readonly<Record<string, string>> = {
  encode: 'is for sessions kept in the cookie itself; here the cookie holds the session id',
  decode: 'is for sessions kept in the cookie itself; here the cookie holds the session id',
  ContextStore: 'brings a store of its own; here sessions are kept in smart-session-store (option "store")',
  maxage: 'is spelled "maxAge"',
};

/**
 * koa-session's options with its defaults, checked.
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the offending option.
 */
export function resolveKoaSessionOptions(options: KoaSessionOptions<never>): Readonly<KoaSessionRequestOptions> {
  for (const name of Object.keys(options)) {
    if (Object.hasOwn(NOT_TAKEN, name)) throw invalidOption(name, `is not taken: it ${NOT_TAKEN[name]}`);
    if (!KNOWN.has(name)) throw invalidOption(name, 'is not an option of smartSession (the store\'s options go in "store")');
  }
  const given = options as Record<string, unknown>;
  for (const name of BOOLEANS) if (given[name] !== undefined && typeof given[name] !== 'boolean') throw invalidOption(name, 'must be true or false');
  for (const name of STRINGS) if (given[name] !== undefined && typeof given[name] !== 'string') throw invalidOption(name, 'must be a string');
  for (const name of FUNCTIONS) if (given[name] !== undefined && typeof given[name] !== 'function') throw invalidOption(name, 'must be a function');
  const { key = 'koa.sess', maxAge, sameSite, priority, externalKey, prefix, genid } = options;
  if (typeof key !== 'string' || key === '' || /[\s;=,\u0000-\u001f\u007f]/.test(key))
    throw invalidOption('key', `must be a cookie name, got ${JSON.stringify(key)}`);
  if (maxAge !== undefined && maxAge !== 'session' && (typeof maxAge !== 'number' || !Number.isFinite(maxAge) || maxAge <= 0))
    throw invalidOption('maxAge', `must be a positive number of milliseconds or "session", got ${JSON.stringify(maxAge)}`);
  if (sameSite !== undefined && typeof sameSite !== 'boolean' && !['strict', 'lax', 'none'].includes(String(sameSite).toLowerCase()))
    throw invalidOption('sameSite', `must be "strict", "lax", "none", true or false, got ${JSON.stringify(sameSite)}`);
  if (priority !== undefined && !['low', 'medium', 'high'].includes(String(priority).toLowerCase()))
    throw invalidOption('priority', `must be "low", "medium" or "high", got ${JSON.stringify(priority)}`);
  if (externalKey !== undefined && (typeof externalKey?.get !== 'function' || typeof externalKey.set !== 'function'))
    throw invalidOption('externalKey', 'must be an object with the functions get(ctx) and set(ctx, key)');
  const header = resolveIdHeader(options.header);
  if (header !== undefined && externalKey !== undefined)
    throw invalidOption('header', 'cannot be given with "externalKey": the session id comes from one place');
  return Object.freeze({
    key,
    maxAge,
    autoCommit: options.autoCommit ?? true,
    overwrite: options.overwrite ?? true,
    httpOnly: options.httpOnly ?? true,
    signed: options.signed ?? true,
    rolling: options.rolling ?? false,
    renew: options.renew ?? false,
    secure: options.secure,
    sameSite: typeof sameSite === 'string' ? (sameSite.toLowerCase() as 'strict' | 'lax' | 'none') : sameSite,
    path: options.path,
    domain: options.domain,
    partitioned: options.partitioned,
    priority: priority === undefined ? undefined : (priority.toLowerCase() as 'low' | 'medium' | 'high'),
    prefix,
    genid: (genid as ((ctx: object) => string) | undefined) ?? (prefix === undefined || prefix === '' ? () => randomUUID() : () => `${prefix}${randomUUID()}`),
    valid: options.valid as KoaSessionRequestOptions['valid'],
    beforeSave: options.beforeSave as KoaSessionRequestOptions['beforeSave'],
    externalKey: externalKey as KoaExternalKey<object> | undefined,
    header,
  });
}

/** The cookie attributes of a request's options, leaving out what is not set (the `cookies` package would take `undefined` as a value). */
function cookieOptions(opts: KoaSessionRequestOptions, overrides: KoaCookieOptions): KoaCookieOptions {
  const attributes: KoaCookieOptions = { overwrite: opts.overwrite, httpOnly: opts.httpOnly, signed: opts.signed };
  if (opts.secure !== undefined) attributes.secure = opts.secure;
  if (opts.sameSite !== undefined) attributes.sameSite = opts.sameSite;
  if (opts.path !== undefined) attributes.path = opts.path;
  if (opts.domain !== undefined) attributes.domain = opts.domain;
  if (opts.partitioned !== undefined) attributes.partitioned = opts.partitioned;
  if (opts.priority !== undefined) attributes.priority = opts.priority;
  return Object.assign(attributes, overrides);
}

/** What a commit is asked to do besides writing the change: `save` forces a save, `regenerate` a new id (the data written whole), `rotate` a new id (the stored session moved). */
export interface KoaCommitOptions {
  save?: boolean;
  regenerate?: boolean;
  rotate?: boolean;
}

/** A callback of `save()` and `regenerate()`, as koa-session takes it. */
export type KoaSessionCallback = (error?: unknown) => void;

let makeSession: (context: ContextSession, data: object | undefined, loaded: boolean) => KoaSession;
let requiresSave: (session: KoaSession) => boolean;

/**
 * `ctx.session`: the session's data as its own properties (read and change
 * them in place; values must be what JSON holds), and koa-session's methods.
 * Keys starting with `_`, `isNew` and functions are never stored.
 */
export class KoaSession {
  /** Data, by key. */
  [key: string]: unknown;
  /** True for a session that came with no stored one (a first visit, an unknown or forged cookie). */
  isNew = false;
  readonly #context: ContextSession;
  /** `maxAge` was set: save, changed or not. */
  #requireSave = false;

  /** Sessions are made by the layer (`ctx.session`, `ctx.session = { ... }`). */
  private constructor(context: ContextSession, data: object | undefined, loaded: boolean) {
    this.#context = context;
    if (data === undefined) {
      this.isNew = true;
      return;
    }
    for (const key in data) {
      // A loaded session's bookkeeping was read when it was loaded (its lifetime into the request's options).
      if (loaded && (key === '_maxAge' || key === '_session' || key === '_expire')) continue;
      // A loaded key not read yet stays so (it is copied when the application first reads it), unless the session
      // has a property of that name (`maxAge`, `length`): then it goes through it, as any other value.
      if (loaded && !(key in this)) {
        carryKey(this, data, key);
        continue;
      }
      const value = (data as Record<string, unknown>)[key];
      // Given by `ctx.session = { ... }`: as koa-session takes it, `_maxAge` and `_session` set the lifetime; `maxAge` calls the setter.
      if (key === '_maxAge') context.opts.maxAge = value as number;
      else if (key === '_session') context.opts.maxAge = 'session';
      else Reflect.set(this, key, value);
    }
  }

  static {
    makeSession = (context, data, loaded) => new KoaSession(context, data, loaded);
    requiresSave = (session) => session.#requireSave;
  }

  /** The session's data, as stored: own keys but `isNew`, those starting with `_`, and functions. */
  toJSON(): Record<string, unknown> {
    const data: Record<string, unknown> = {};
    for (const key of Object.keys(this)) {
      if (key === 'isNew' || key.startsWith('_')) continue;
      // A key not read yet is no function, and stays unread: a save then knows it unchanged without looking at it.
      if (isUntouched(this, key)) {
        carryKey(data, this, key);
        continue;
      }
      const value = this[key];
      if (typeof value !== 'function') data[key] = value;
    }
    return data;
  }

  [inspect.custom](): Record<string, unknown> {
    // Keys not read yet are shown as stored, without copying them (a save then still knows them untouched).
    return plainView(this.toJSON());
  }

  /** How many keys the session holds. */
  get length(): number {
    return Object.keys(this.toJSON()).length;
  }

  /** True when the session holds anything. */
  get populated(): boolean {
    return this.length > 0;
  }

  /** The session's lifetime in milliseconds, `'session'`, or `undefined` (koa-session's default: one day, the cookie without `Expires`). */
  get maxAge(): number | 'session' | undefined {
    return this.#context.opts.maxAge;
  }

  /** Changes this session's lifetime (and its cookie's); the session is saved, changed or not. */
  set maxAge(value: number | 'session' | undefined) {
    this.#context.opts.maxAge = value;
    this.#requireSave = true;
  }

  /** The session id (the cookie's value). After `regenerate()`, the new one. */
  get externalKey(): string {
    return this.#context.id();
  }

  /** Saves the session now, changed or not (and sets its cookie). */
  save(): Promise<void>;
  save(callback: KoaSessionCallback): undefined;
  save(callback?: KoaSessionCallback): Promise<void> | undefined {
    return this.commit({ save: true }, callback as KoaSessionCallback);
  }

  /**
   * Deletes the stored session and saves this one, its data kept, under a new
   * id (assign `ctx.session = {}` first to start empty). Call it at login.
   */
  regenerate(): Promise<void>;
  regenerate(callback: KoaSessionCallback): undefined;
  regenerate(callback?: KoaSessionCallback): Promise<void> | undefined {
    return this.commit({ regenerate: true }, callback as KoaSessionCallback);
  }

  /**
   * Gives the session a new id and keeps its data, with every change other
   * requests committed to it (`regenerate` writes this request's copy whole
   * under the new id): this request's changes are saved, then the stored
   * session moves to the new id, whose cookie is set. The old id is dead at
   * once: requests still carrying it find no session and save nothing. Call
   * it at login.
   */
  rotate(): Promise<void>;
  rotate(callback: KoaSessionCallback): undefined;
  rotate(callback?: KoaSessionCallback): Promise<void> | undefined {
    return this.commit({ rotate: true }, callback as KoaSessionCallback);
  }

  /** Commits the session now: with `autoCommit: false`, the application's way to do it. */
  manuallyCommit(): Promise<void> {
    return this.#context.commit({});
  }

  /** Commits the session: `save` forces a save, `regenerate` a new id. */
  commit(options?: KoaCommitOptions): Promise<void>;
  commit(options: KoaCommitOptions | KoaSessionCallback | undefined, callback: KoaSessionCallback): undefined;
  commit(options?: KoaCommitOptions | KoaSessionCallback, callback?: KoaSessionCallback): Promise<void> | undefined {
    const [given, done] = typeof options === 'function' ? [{}, options] : [options ?? {}, callback];
    const committing = this.#context.commit(given);
    if (done === undefined) return committing;
    committing.then(() => done(), done);
    return undefined;
  }
}

/** Swallows a rejection that is handled elsewhere. */
const noop = (): void => undefined;

/**
 * One request's session state (koa-session's `ContextSession`): the session
 * its cookie named, `ctx.session` once read, and its commits.
 * @internal
 */
export class ContextSession {
  readonly ctx: KoaContext;
  readonly layer: KoaSessionLayer;
  /** `ctx.sessionOptions`: this request's copy. */
  readonly opts: KoaSessionRequestOptions;
  /** `ctx.session`: not read yet, the session, or `false` after `ctx.session = null`. */
  session: KoaSession | false | undefined;
  /** The handle the session is committed through: loaded, or made at the first save. */
  #handle: SessionHandle | undefined;
  /** The session id: the cookie's, or one made when first needed. */
  #id: string | undefined;
  /**
   * The loaded session's stored `_expire` (epoch ms), for `renew`: the expiry
   * of its last save, and so of the cookie that save sent (touches move the
   * storage's expiry, not this one).
   */
  #savedExpiry: number | undefined;
  /** Commits run one after the other. */
  #pending: Promise<void> = Promise.resolve();
  /** The request named its session in the id header (the `header` option): it is answered there, never with a cookie. */
  #viaHeader = false;
  /** The session id the request came with (verified), to tell a new id from it. */
  #requestId: string | undefined;

  constructor(ctx: KoaContext, layer: KoaSessionLayer) {
    this.ctx = ctx;
    this.layer = layer;
    this.opts = { ...layer.options };
  }

  /** The session id, made (and checked) when first needed. @throws {SessionStoreError} `ERR_INVALID_SESSION_ID` from a `genid` of the application. */
  id(): string {
    if (this.#id === undefined) {
      const id = this.opts.genid(this.ctx);
      assertSessionId(id);
      this.#id = id;
    }
    return this.#id;
  }

  #emit(event: 'missed' | 'invalid', key: string, value: unknown): void {
    const { ctx } = this;
    setImmediate(() => ctx.app.emit(`session:${event}`, { key, value, ctx }));
  }

  /** Opens the session the request's cookie (or external key) names; any other request starts with none. */
  async load(): Promise<void> {
    this.session = undefined;
    this.#handle = undefined;
    this.#id = undefined;
    this.#savedExpiry = undefined;
    const { ctx, opts } = this;
    const given = opts.header === undefined ? undefined : ctx.headers?.[opts.header];
    // The id header, when the request sends it, names the session alone: a cookie beside it is not looked at.
    this.#viaHeader = typeof given === 'string';
    const key =
      typeof given === 'string'
        ? this.#unsignHeader(given)
        : opts.externalKey !== undefined
          ? opts.externalKey.get(ctx)
          : ctx.cookies.get(opts.key, { signed: opts.signed });
    this.#requestId = typeof key === 'string' && key !== '' ? key : undefined;
    if (key === undefined || key === null || key === '') return;
    // A cookie no id could be (garbled, forged) names no session, as one naming an unknown id.
    const handle = isSessionId(key) ? await this.layer.store.open(key) : null;
    if (handle === null) {
      this.#emit('missed', String(key), undefined);
      return;
    }
    const { data } = handle;
    this.#savedExpiry = typeof data['_expire'] === 'number' ? data['_expire'] : undefined;
    // The document keeps the expiry of its last write, the storage that of its last touch: koa-session's `_expire` is the latter.
    if (typeof data['_expire'] === 'number' && handle.expiresAt !== undefined) data['_expire'] = handle.expiresAt;
    if (opts.valid !== undefined && !opts.valid(ctx, data)) {
      this.#emit('invalid', key, data);
      return;
    }
    this.#handle = handle;
    this.#id = key;
    if (typeof data['_maxAge'] === 'number') opts.maxAge = data['_maxAge'];
    else if (data['_session'] === true) opts.maxAge = 'session';
  }

  /** `ctx.session`: built on first read from what was loaded, else new and empty; `null` after `ctx.session = null`. */
  get(): KoaSession | null {
    if (this.session === false) return null;
    this.session ??= makeSession(this, this.#handle?.data, this.#handle !== undefined);
    return this.session;
  }

  /** `ctx.session = value`: `null` destroys at the commit, an object replaces the session (under the same id). */
  set(value: unknown): void {
    if (value === null) {
      this.session = false;
      return;
    }
    if (typeof value !== 'object') throw new Error('this.session can only be set as null or an object.');
    this.session = makeSession(this, value, false);
  }

  /**
   * Commits the session, after any commit of the request still running. The
   * returned promise rejects on a store error; a caller that drops it (an
   * unawaited `save()`) does not crash the process: the end of the request
   * commits again and throws into Koa's error handling.
   */
  commit(options: KoaCommitOptions): Promise<void> {
    const committing = this.#pending.then(() => this.#commit(options));
    this.#pending = committing.then(noop, noop);
    return committing;
  }

  /** The lifetime a save gives: `maxAge`, else a day; `'session'` for a browser-session cookie. */
  #lifetime(): number | 'session' {
    const { maxAge } = this.opts;
    return maxAge === 'session' ? maxAge : typeof maxAge === 'number' && maxAge > 0 ? maxAge : ONE_DAY;
  }

  /** `renew` is on and less than half the lifetime is left. */
  #renewDue(): boolean {
    const expiry = this.#savedExpiry;
    const { maxAge, renew } = this.opts;
    return renew && expiry !== undefined && typeof maxAge === 'number' && maxAge > 0 && expiry - Date.now() < maxAge / 2;
  }

  async #commit({ save = false, regenerate = false, rotate = false }: KoaCommitOptions, session = this.session): Promise<void> {
    if (session === undefined) {
      // Not read: nothing changed. Only `rolling` keeps a stored session alive (its expiry touched), as koa-session
      // saves it then; a due `renew` commits it below, so that its stored `_expire` follows.
      const handle = this.#handle;
      if (handle === undefined || handle.isDestroyed) return;
      if (this.#renewDue() || rotate) return this.#commit({ save, regenerate, rotate }, this.get() as KoaSession);
      if (!this.opts.rolling) return;
      const lifetime = this.#lifetime();
      await handle.touch(handle.data, { expiresAt: lifetime === 'session' ? undefined : Date.now() + lifetime });
      this.#sendKey();
      return;
    }
    if (session === false) {
      await this.#remove();
      return;
    }
    if (regenerate) {
      await this.#remove();
      this.#id = undefined;
      this.id();
    }
    const force = save || regenerate || rotate || requiresSave(session);
    let data = session.toJSON();
    // A new session that holds nothing is not stored, and gets no cookie.
    if (!force && this.#handle === undefined && Object.keys(data).length === 0) return;
    if (this.opts.beforeSave !== undefined) {
      this.opts.beforeSave(this.ctx, session);
      data = session.toJSON();
    }
    const lifetime = this.#lifetime();
    const renewDue = this.#renewDue();
    if (lifetime === 'session') data['_session'] = true;
    else Object.assign(data, { _expire: Date.now() + lifetime, _maxAge: lifetime });
    if (this.#handle === undefined) {
      const created = (this.#handle = this.layer.store.create(this.id()));
      const ctx = this.ctx as { headers?: unknown; ip?: unknown };
      created.client = requestClient(this.layer.store, ctx.headers, () => ctx.ip);
    }
    const outcome = await commitKoaSession(this.#handle, data);
    if (rotate) {
      // Saved under the old id just now: the stored session (other requests' changes with it) moves to a new one.
      this.#id = undefined;
      this.#handle = await this.#handle.rotate(this.id(), data);
    }
    if (force || outcome !== 'unchanged' || this.opts.rolling || renewDue) this.#sendKey();
  }

  /** Deletes what is stored of the session (nothing for a session never stored) and clears its cookie, as koa-session does. */
  async #remove(): Promise<void> {
    const handle = this.#handle;
    this.#handle = undefined;
    this.#savedExpiry = undefined;
    if (handle !== undefined && !handle.isNew && !handle.isDestroyed) await handle.destroy();
    if (this.#viaHeader) this.#setHeader('');
    else this.ctx.cookies.set(this.opts.key, '', cookieOptions(this.opts, { expires: COOKIE_EPOCH, maxAge: false }));
  }

  /** The keys that sign the id header: `app.keys`. @throws {SessionStoreError} `ERR_INVALID_OPTION` when there are none. */
  #headerKeys(): readonly string[] {
    const keys = this.ctx.app.keys;
    if (!Array.isArray(keys) || keys.length === 0 || !keys.every((key) => typeof key === 'string' && key !== ''))
      throw invalidOption('header', 'is signed with app.keys: set app.keys to an array of secrets (or signed: false)');
    return keys as string[];
  }

  /** The session id an id header's value names: its signature verified with `app.keys` (with `signed`). */
  #unsignHeader(value: string): string | undefined {
    if (value === '') return undefined;
    if (!this.opts.signed) return value;
    return unsignSessionId(value, this.#headerKeys())?.id;
  }

  /** Sets the id header (an empty value: the session ended). */
  #setHeader(id: string): void {
    const { ctx, opts } = this;
    if (opts.header === undefined || ctx.set === undefined) return;
    ctx.set(opts.header, id === '' || !opts.signed ? id : signSessionId(id, this.#headerKeys()[0] as string));
  }

  /** Sends the session id: the id header, the cookie (and a new id in the header too), or the application's external key. */
  #sendKey(): void {
    const { opts, ctx } = this;
    const id = this.id();
    if (this.#viaHeader) {
      this.#setHeader(id);
      return;
    }
    if (id !== this.#requestId) this.#setHeader(id);
    if (opts.externalKey !== undefined) {
      opts.externalKey.set(ctx, id);
      return;
    }
    const { maxAge } = opts;
    ctx.cookies.set(opts.key, id, cookieOptions(opts, typeof maxAge === 'number' ? { maxAge } : {}));
  }
}

/** Each request's session state, on its `ctx`. */
const contextSessions = new ObjectSlot<ContextSession>('smart-session-store/koa session');
/** The layer an application's `ctx.session` serves before any session middleware ran: the first one made for it. */
const FIRST_LAYER = Symbol('smart-session-store/koa first layer');

/** A Koa application, as far as the layer needs one. */
export interface KoaApplication {
  use(...middleware: never[]): unknown;
  /** The prototype of every `ctx`: the layer adds `session` and `sessionOptions` to it. */
  readonly context: object;
}

/** The session layer of one `smartSession(options, app)`: its store, its options, and the middleware. */
export class KoaSessionLayer {
  readonly store: SessionStore;
  readonly options: Readonly<KoaSessionRequestOptions>;

  constructor(store: SessionStore, options: Readonly<KoaSessionRequestOptions>, app: KoaApplication) {
    this.store = store;
    this.options = options;
    extendContext(app.context, this);
  }

  /** The request's session state, made for this layer when the request has none of it yet. */
  contextSession(ctx: KoaContext): ContextSession {
    let state = contextSessions.get(ctx);
    if (state === undefined || state.layer !== this) {
      state = new ContextSession(ctx, this);
      contextSessions.set(ctx, state);
    }
    return state;
  }

  /** koa-session's middleware: load, run the downstream middleware, commit (also when it threw, as koa-session does). */
  readonly middleware = async (ctx: object, next: () => Promise<unknown>): Promise<void> => {
    const state = this.contextSession(ctx as KoaContext);
    await state.load();
    try {
      await next();
    } finally {
      if (this.options.autoCommit) await state.commit({});
    }
  };
}

/** Gives every `ctx` of the application `session` and `sessionOptions`, once (the first layer answers before any middleware ran). */
function extendContext(context: object, layer: KoaSessionLayer): void {
  if (Object.hasOwn(context, FIRST_LAYER)) return;
  const stateOf = (ctx: object): ContextSession =>
    contextSessions.get(ctx) ?? ((context as Record<symbol, KoaSessionLayer>)[FIRST_LAYER] as KoaSessionLayer).contextSession(ctx as KoaContext);
  Object.defineProperties(context, {
    [FIRST_LAYER]: { value: layer },
    session: {
      get(this: object): KoaSession | null {
        return stateOf(this).get();
      },
      set(this: object, value: unknown) {
        stateOf(this).set(value);
      },
      configurable: true,
    },
    sessionOptions: {
      get(this: object): KoaSessionRequestOptions {
        return stateOf(this).opts;
      },
      configurable: true,
    },
  });
}
