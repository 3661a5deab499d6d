/**
 * The session layer of `smart-session-store/express`: express-session's
 * middleware and `req.session`, over the store's per-request handle instead
 * of a Store's `get`/`set`.
 *
 * A request's cookie is read and verified as express-session does it (`s:`,
 * the id, an HMAC-SHA256 of it; every secret verifies, the first signs); the
 * session it names is opened once, and `req.session` is built from it in
 * express-session's shape (its data, and `cookie`, stored as
 * express-session stores it). When the response ends, before its headers go
 * out, the session is committed once through its handle: the core diffs it
 * against what the request loaded and writes that delta, or only the
 * expiry, or nothing. There is no whole-session hash: whether anything
 * changed is the delta's to say. The cookie is decided after the commit,
 * from what it wrote.
 */
import type { OutgoingHttpHeader, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { isJsonObject, type JsonObject } from '../../core/json.js';
import { carryKey, plainView } from '../../core/live-session.js';
import type { SessionHandle } from '../../core/session-handle.js';
import { requestClient } from './session-client.js';
import { SessionStoreError } from '../../errors.js';
import type { SessionStore } from '../../store.js';
import { type Callback, settle } from './cookie-session.js';
import {
  assertCookieOptions,
  type ExpressLikeRequest,
  isSecureRequest,
  type SessionCookieOptions,
  SessionCookie,
  serializeSessionCookie,
} from './express-cookie.js';
import { isSessionId } from './session-keeper.js';
import { cookieValues, signSessionId, unsignSessionId } from './signed-cookie.js';

/** The request as the layer reads and decorates it. */
export interface SessionRequest extends ExpressLikeRequest {
  session?: unknown;
  sessionID?: unknown;
  sessionStore?: unknown;
  /** cookie-parser's parsed cookies (a signed value still `s:`-prefixed). */
  cookies?: Record<string, unknown>;
  /** cookie-parser's verified signed cookies. */
  signedCookies?: Record<string, unknown>;
}

/** A session id whose signature verified, with the index of the secret that verified it. */
type SignedId = { readonly id: string; readonly secretIndex: number };

/** What the middleware was made with, checked and with its defaults. */
export interface SessionLayerSettings {
  readonly name: string;
  readonly secrets: readonly string[];
  readonly cookie: SessionCookieOptions | ((req: SessionRequest) => SessionCookieOptions);
  readonly genid: (req: SessionRequest) => string;
  readonly proxy: boolean | undefined;
  readonly rolling: boolean;
  readonly saveUninitialized: boolean;
  readonly unsetDestroy: boolean;
  /** The request header that may carry the session id instead of the cookie (lower-cased); `undefined` for the cookie only. */
  readonly header: string | undefined;
}

/** What a response carries for its session: a `Set-Cookie`, the id header, or both. */
export interface SessionAnswer {
  readonly setCookie?: string | undefined;
  readonly idHeader?: readonly [name: string, value: string] | undefined;
}

/** A connect-style middleware. */
export type SessionMiddlewareFunction = (req: SessionRequest, res: ServerResponse, next: (error?: unknown) => void) => void;

/** True when a session holds nothing but its cookie (an `undefined` value is not stored, so it does not count). */
function isUninitialized(session: object): boolean {
  for (const key of Object.keys(session)) {
    if (key !== 'cookie' && (session as Record<string, unknown>)[key] !== undefined) return false;
  }
  return true;
}

/** Adds a `Set-Cookie` to those the response already has, and sets the id header. */
function addAnswer(res: ServerResponse, { setCookie, idHeader }: SessionAnswer): void {
  if (setCookie !== undefined) {
    const previous = res.getHeader('Set-Cookie');
    res.setHeader('Set-Cookie', previous === undefined ? [setCookie] : Array.isArray(previous) ? [...previous, setCookie] : [String(previous), setCookie]);
  }
  if (idHeader !== undefined) res.setHeader(idHeader[0], idHeader[1]);
}

/** The path of the request's URL before any mount point took its part. */
function pathnameOf(req: SessionRequest): string {
  const url = req.originalUrl || req.url || '/';
  if (url.startsWith('/')) {
    const end = url.search(/[?#]/);
    return end === -1 ? url : url.slice(0, end);
  }
  try {
    return new URL(url).pathname;
  } catch {
    return '/';
  }
}

/**
 * One request's view of its sessions: the cookie it came with, the session
 * `req.session` holds now (replaced by `regenerate` and `reload`), and what
 * its commits wrote.
 * @internal
 */
export class RequestSessions {
  readonly req: SessionRequest;
  readonly layer: SessionLayer;
  /** The session id the request's cookie named (signature verified); `undefined` without one. */
  readonly cookieId: string | undefined;
  /** The cookie verified with an older secret: send it again, signed with the first. */
  readonly renew: boolean;
  /** The request named its session in the id header (the `header` option): it is answered there, never with a cookie. */
  readonly viaHeader: boolean;
  /** The request came over HTTPS (`secure: 'auto'`, `sameSite: 'auto'`, and secure cookies are only sent so). */
  readonly secure: boolean;
  readonly cookieOptions: SessionCookieOptions;
  /** The handle of the session `req.session` was last given (for `unset: 'destroy'`). */
  current: SessionHandle | undefined;
  /** A commit of this request wrote something (the data or the expiry). */
  written = false;
  /** `req.session.touch()` ran at the end (once, as express-session does). */
  touched = false;
  /** The response's `Set-Cookie` is settled (added, or known not to be). */
  cookieDecided = false;

  constructor(layer: SessionLayer, req: SessionRequest, cookieOptions: SessionCookieOptions, signed: SignedId | undefined, viaHeader: boolean) {
    this.layer = layer;
    this.req = req;
    this.cookieOptions = cookieOptions;
    this.cookieId = signed?.id;
    this.renew = signed !== undefined && signed.secretIndex > 0;
    this.viaHeader = viaHeader;
    this.secure = isSecureRequest(req, layer.settings.proxy);
  }

  /** A new, empty session under a fresh id, as `req.session`. Nothing is stored until it is committed. */
  generate(): ExpressSession {
    const handle = this.layer.store.create(this.layer.settings.genid(this.req));
    const cookie = new SessionCookie(this.cookieOptions);
    if (this.cookieOptions.secure === 'auto') cookie.secure = this.secure;
    if (this.cookieOptions.sameSite === 'auto') cookie.sameSite = this.secure ? 'none' : 'lax';
    return this.#install(new ExpressSession(this, handle, undefined, cookie));
  }

  /** The loaded session, as `req.session`. */
  inflate(handle: SessionHandle): ExpressSession {
    const stored = handle.data['cookie'];
    let cookie: SessionCookie;
    if (stored === undefined || stored === null) {
      // Stored by something else than express-session: the cookie of a new session.
      cookie = new SessionCookie(this.cookieOptions);
      if (this.cookieOptions.secure === 'auto') cookie.secure = this.secure;
      if (this.cookieOptions.sameSite === 'auto') cookie.sameSite = this.secure ? 'none' : 'lax';
    } else if (!isJsonObject(stored)) {
      throw new SessionStoreError('ERR_CORRUPT_ROW', 'stored session has a cookie that is not an object');
    } else {
      cookie = SessionCookie.fromStored(stored);
      // A touch moves only the stored expiry, not the JSON: the cookie gets the expiry the session really has.
      if (cookie.expires !== null && handle.expiresAt !== undefined) cookie._expires = new Date(handle.expiresAt);
    }
    return this.#install(new ExpressSession(this, handle, handle.data, cookie));
  }

  #install(session: ExpressSession): ExpressSession {
    const handle = ExpressSession.handleOf(session);
    const req = this.req;
    handle.client ??= requestClient(this.layer.store, req.headers, () => (req as { ip?: unknown }).ip ?? req.socket?.remoteAddress);
    this.current = handle;
    this.req.sessionID = session.id;
    this.req.session = session;
    return session;
  }

  /** The session `rotate` moved to `handle`, as `req.session`: the same data and cookie under the new id. */
  rotated(session: ExpressSession, handle: SessionHandle): ExpressSession {
    return this.#install(new ExpressSession(this, handle, session as unknown as JsonObject, session.cookie));
  }

  /** Commits a session of this request through its handle, noting whether anything was written. */
  async commit(session: ExpressSession, handle: SessionHandle): Promise<void> {
    const wasNew = handle.isNew;
    const expiresAt = handle.expiresAt;
    await handle.commit(session);
    if (wasNew ? !handle.isNew : handle.expiresAt !== expiresAt) this.written = true;
  }

  /** `req.session`, when it is a session of this request (not one the application put there, nor none). */
  #session(): ExpressSession | undefined {
    const { session } = this.req;
    if (!(session instanceof ExpressSession) || ExpressSession.requestOf(session) !== this) return undefined;
    // express-session saves nothing under an id that is not a string (`req.sessionID` replaced by the application).
    return typeof this.req.sessionID === 'string' ? session : undefined;
  }

  #touch(session: ExpressSession): void {
    if (this.touched) return;
    this.touched = true;
    session.touch();
  }

  /**
   * What tells the client its session id: the `Set-Cookie` (unless it is
   * secure and the request is not, or the request came with the id header),
   * and the id header when the `header` option is on (a cookie request gets
   * it only for a session under a new id: how an API client learns its first).
   */
  #answer(session: ExpressSession): SessionAnswer | undefined {
    const { name, secrets, header } = this.layer.settings;
    const signed = signSessionId(session.id, secrets[0] as string);
    const setCookie = this.viaHeader || (session.cookie.secure && !this.secure) ? undefined : serializeSessionCookie(name, signed, session.cookie.data);
    const idHeader = header !== undefined && (this.viaHeader || session.id !== this.cookieId) ? ([header, signed] as const) : undefined;
    return setCookie === undefined && idHeader === undefined ? undefined : { setCookie, idHeader };
  }

  /**
   * Commits `req.session` at the end of the response, and gives the
   * response's `Set-Cookie`, if any: a session stored under an id the
   * request's cookie did not name (new, regenerated), `rolling`, a cookie an
   * older secret signed, or a session with an expiry whose commit wrote
   * something (so the browser's expiry moves with the stored one).
   */
  async finish(): Promise<SessionAnswer | undefined> {
    const session = this.#session();
    if (session === undefined) {
      const handle = this.current;
      // `req.session = null`: with `unset: 'destroy'` the session goes, else it stays as stored.
      const unset = this.req.session === undefined || this.req.session === null;
      if (unset && this.layer.settings.unsetDestroy && handle !== undefined && !handle.isNew && !handle.isDestroyed) await handle.destroy();
      return undefined;
    }
    this.#touch(session);
    const handle = ExpressSession.handleOf(session);
    if (handle.isDestroyed) return undefined;
    if (handle.isNew && !this.layer.settings.saveUninitialized && isUninitialized(session)) return undefined;
    await this.commit(session, handle);
    if (handle.isNew || handle.isDestroyed) return undefined;
    const send =
      session.id !== this.cookieId ||
      this.layer.settings.rolling ||
      this.renew ||
      // The id header has no expiry of its own to move.
      (!this.viaHeader && session.cookie.expires !== null && session.cookie.expires !== undefined && this.written);
    return send ? this.#answer(session) : undefined;
  }

  /**
   * The `Set-Cookie` when the headers go out before the end of the response
   * (a streamed body): the commit has not run yet, so the cookie is sent
   * whenever it may be needed: the session will be stored under a new id,
   * `rolling`, an older secret's cookie, or any session with an expiry.
   */
  early(): SessionAnswer | undefined {
    const session = this.#session();
    if (session === undefined) return undefined;
    this.#touch(session);
    const handle = ExpressSession.handleOf(session);
    if (handle.isDestroyed) return undefined;
    if (handle.isNew && !this.layer.settings.saveUninitialized && isUninitialized(session)) return undefined;
    const send =
      session.id !== this.cookieId ||
      this.layer.settings.rolling ||
      this.renew ||
      (!this.viaHeader && session.cookie.expires !== null && session.cookie.expires !== undefined);
    return send ? this.#answer(session) : undefined;
  }
}

/**
 * `req.session`: the session's data as its own properties, its `cookie`,
 * and express-session's methods. `id` and `req` are not enumerable, the
 * methods are on the prototype: only the data and the cookie are the
 * session's JSON.
 */
export class ExpressSession {
  /** The session id. */
  declare readonly id: string;
  /** The request this session belongs to. */
  declare readonly req: SessionRequest;
  /** The session cookie: `maxAge`, `originalMaxAge`, `expires` and its attributes. */
  cookie: SessionCookie;
  /** The application's data. */
  [key: string]: unknown;
  readonly #request: RequestSessions;
  readonly #handle: SessionHandle;

  /** @internal Sessions are made by the middleware. */
  constructor(request: RequestSessions, handle: SessionHandle, data: JsonObject | undefined, cookie: SessionCookie) {
    Object.defineProperty(this, 'req', { value: request.req });
    Object.defineProperty(this, 'id', { value: handle.id });
    this.#request = request;
    this.#handle = handle;
    this.cookie = cookie;
    if (data !== undefined) {
      // Stored keys that are the session's own methods or properties (`save`, `id`) are left out, as express-session does.
      // A key not read yet stays so: it is copied when the application first reads it.
      for (const key of Object.keys(data)) if (!(key in this)) carryKey(this, data, key);
    }
  }

  /** What `console.log` and `util.inspect` show: the data and the cookie, keys not read yet as stored (nothing is copied). */
  [Symbol.for('nodejs.util.inspect.custom')](): Record<string, unknown> {
    return plainView(this);
  }

  /** @internal The handle a session commits through. */
  static handleOf(session: ExpressSession): SessionHandle {
    return session.#handle;
  }

  /** @internal The request a session belongs to. */
  static requestOf(session: ExpressSession): RequestSessions {
    return session.#request;
  }

  /** Resets the cookie's `maxAge` to its `originalMaxAge` (the end of every request does it). */
  touch(): this {
    return this.resetMaxAge();
  }

  /** Resets the cookie's `maxAge` to its `originalMaxAge`. */
  resetMaxAge(): this {
    this.cookie.maxAge = this.cookie.originalMaxAge;
    return this;
  }

  /**
   * Commits the session now (what this request changed, or a new session
   * whole); the end of the response then has nothing left to write.
   */
  save(callback?: Callback): this {
    settle(this.#request.commit(this, this.#handle), callback);
    return this;
  }

  /** Loads the session again from the store, as `req.session` (an error when it is gone). */
  reload(callback: Callback): this {
    const request = this.#request;
    settle(
      request.layer.store.open(this.id).then((handle) => {
        if (handle === null) throw new Error('failed to load session');
        request.inflate(handle);
      }),
      callback,
    );
    return this;
  }

  /** Deletes the session (concurrent requests cannot bring it back) and removes `req.session`. */
  destroy(callback?: Callback): this {
    delete this.req.session;
    settle(this.#handle.destroy(), callback);
    return this;
  }

  /**
   * Gives the session a new id and keeps its data (call it at login, so an id
   * known before is worth nothing after, while the rest stays): this
   * request's changes are saved, then the stored session, with every change
   * other requests committed to it, moves to the new id, whose cookie the
   * response sends. The old id is dead at once: requests still carrying it
   * find no session and save nothing. `req.session` is the moved session.
   */
  rotate(callback?: Callback): this {
    const request = this.#request;
    settle(
      this.#handle.rotate(request.layer.settings.genid(request.req), this).then((handle) => {
        request.rotated(this, handle);
      }),
      callback,
    );
    return this;
  }

  /** Deletes the session and gives the request a new, empty one under a fresh id (call it at login). */
  regenerate(callback: Callback): this {
    const request = this.#request;
    const handle = this.#handle;
    // Nothing is stored under an id that was never committed: no statement to delete it.
    const destroyed = handle.isNew && !handle.isDestroyed ? Promise.resolve() : handle.destroy();
    settle(
      destroyed.then(
        () => {
          request.generate();
        },
        (error: unknown) => {
          request.generate();
          throw error;
        },
      ),
      callback,
    );
    return this;
  }
}

/** `writeHead`'s headers argument folded into the response's headers, so that a `Set-Cookie` added beside them is kept. */
function foldWriteHeadHeaders(res: ServerResponse, args: unknown[]): unknown[] {
  const index = typeof args[1] === 'string' ? 2 : 1;
  const headers = args[index] as OutgoingHttpHeaders | OutgoingHttpHeader[] | undefined;
  if (headers === undefined || headers === null) return args;
  if (Array.isArray(headers)) {
    const pairs = headers.length > 0 && Array.isArray(headers[0]) ? (headers as unknown as [string, OutgoingHttpHeader][]) : [];
    if (pairs.length === 0) for (let i = 0; i + 1 < headers.length; i += 2) pairs.push([String(headers[i]), headers[i + 1] as OutgoingHttpHeader]);
    for (const [name, value] of pairs) res.setHeader(name, value);
  } else {
    for (const name of Object.keys(headers)) {
      const value = headers[name];
      if (value !== undefined) res.setHeader(name, value);
    }
  }
  return args.slice(0, index);
}

/** express-session's middleware over the store's handle: see the file's comment. */
export class SessionLayer {
  readonly store: SessionStore;
  /** What `req.sessionStore` is. */
  readonly sessionStore: object;
  readonly settings: SessionLayerSettings;

  constructor(store: SessionStore, sessionStore: object, settings: SessionLayerSettings) {
    this.store = store;
    this.sessionStore = sessionStore;
    this.settings = settings;
  }

  /**
   * The verified session id of the request's id header when the `header`
   * option is on and the request sends it (then alone: a cookie beside it is
   * not looked at), else of its cookie (the `Cookie` header, else cookie-parser's).
   */
  #signedId(req: SessionRequest): { signed: SignedId | undefined; viaHeader: boolean } {
    const { header: idHeader, secrets } = this.settings;
    const given = idHeader === undefined ? undefined : req.headers[idHeader];
    if (typeof given === 'string') {
      const signed = unsignSessionId(given, secrets);
      return { signed: signed !== undefined && isSessionId(signed.id) ? signed : undefined, viaHeader: true };
    }
    return { signed: this.#cookieId(req), viaHeader: false };
  }

  /** The verified session id of the request's cookie (the `Cookie` header, else cookie-parser's). */
  #cookieId(req: SessionRequest): SignedId | undefined {
    const { name, secrets } = this.settings;
    const header = req.headers.cookie;
    const candidates = header === undefined ? [] : cookieValues(header, name);
    const parsed = req.cookies?.[name];
    if (typeof parsed === 'string') candidates.push(parsed);
    for (const value of candidates) {
      const signed = unsignSessionId(value, secrets);
      if (signed !== undefined && isSessionId(signed.id)) return signed;
    }
    // Verified by cookie-parser with its own secret.
    const verified = req.signedCookies?.[name];
    return typeof verified === 'string' && isSessionId(verified) ? { id: verified, secretIndex: 0 } : undefined;
  }

  /** The middleware. */
  readonly middleware: SessionMiddlewareFunction = (req, res, next) => {
    if (req.session) {
      next();
      return;
    }
    let cookieOptions: SessionCookieOptions;
    try {
      const { cookie } = this.settings;
      cookieOptions = typeof cookie === 'function' ? cookie(req) : cookie;
      if (typeof cookie === 'function') assertCookieOptions(cookieOptions);
    } catch (error) {
      next(error);
      return;
    }
    if (!pathnameOf(req).startsWith(cookieOptions.path ?? '/')) {
      next();
      return;
    }
    req.sessionStore = this.sessionStore;
    const { signed, viaHeader } = this.#signedId(req);
    req.sessionID = signed?.id;
    const request = new RequestSessions(this, req, cookieOptions, signed, viaHeader);
    this.#hook(request, res, next);
    if (signed === undefined) {
      try {
        request.generate();
      } catch (error) {
        next(error);
        return;
      }
      next();
      return;
    }
    settle(this.store.open(signed.id), (error, handle) => {
      if (error) {
        next(error);
        return;
      }
      try {
        if (handle === null || handle === undefined) request.generate();
        else request.inflate(handle);
      } catch (failure) {
        next(failure);
        return;
      }
      next();
    });
  };

  /**
   * Commits the session when the response ends, before its headers go out
   * (its end waits for the commit); the cookie of a response whose headers
   * go out earlier (a streamed body) is decided when they do.
   */
  #hook(request: RequestSessions, res: ServerResponse, next: (error?: unknown) => void): void {
    const { writeHead, end } = res;
    res.writeHead = function writeHeadWithSession(this: ServerResponse, ...args: unknown[]): ServerResponse {
      if (request.cookieDecided) return (writeHead as (...given: unknown[]) => ServerResponse).apply(this, args);
      request.cookieDecided = true;
      let answer: SessionAnswer | undefined;
      try {
        answer = request.early();
      } catch (error) {
        process.nextTick(next, error);
      }
      if (answer === undefined) return (writeHead as (...given: unknown[]) => ServerResponse).apply(this, args);
      const rest = foldWriteHeadHeaders(this, args);
      addAnswer(this, answer);
      return (writeHead as (...given: unknown[]) => ServerResponse).apply(this, rest);
    } as ServerResponse['writeHead'];

    let ending = false;
    let passThrough = false;
    res.end = function endWithSession(this: ServerResponse, ...args: unknown[]): ServerResponse {
      if (passThrough) return (end as (...given: unknown[]) => ServerResponse).apply(this, args);
      if (ending) return this;
      ending = true;
      settle(request.finish(), (error, answer) => {
        if (error) {
          request.cookieDecided = true;
          if (!res.headersSent) {
            // Nothing was sent: the error handler answers instead, its end going straight through.
            passThrough = true;
            next(error);
            return;
          }
          next(error);
        } else if (!request.cookieDecided) {
          request.cookieDecided = true;
          if (answer !== undefined) addAnswer(res, answer);
        }
        try {
          (end as (...given: unknown[]) => ServerResponse).apply(res, args);
        } catch (failure) {
          // Thrown outside the handler that called end(), it would crash the process: the error handler gets it.
          passThrough = true;
          next(failure);
        }
      });
      return this;
    } as ServerResponse['end'];
  }
}
