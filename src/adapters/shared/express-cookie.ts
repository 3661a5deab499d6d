/**
 * express-session's session cookie, for the express middleware of this
 * package: the `Cookie` object a session carries (`req.session.cookie`,
 * stored as the session's `cookie` key in the very shape express-session
 * stores it), its `Set-Cookie` as express-session writes it (the `cookie`
 * module's attributes, `Expires` rather than `Max-Age`), and whether a
 * request came over HTTPS.
 */
import type { IncomingMessage } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { SessionStoreError } from '../../errors.js';

/** `SameSite` of the session cookie: `true` is `Strict`; `'auto'`, `None` over HTTPS and `Lax` otherwise. */
export type CookieSameSite = boolean | 'lax' | 'strict' | 'none' | 'auto';

/** `Priority` of the session cookie (Chrome's). */
export type CookiePriority = 'low' | 'medium' | 'high';

/** The session cookie's options, as express-session takes them (`maxAge` in milliseconds). */
export interface SessionCookieOptions {
  /**
   * Lifetime in **milliseconds**, as express-session counts it: the cookie's
   * `Expires` and the stored session's expiry are this long after the
   * request's end. `null`: a browser-session cookie, and the stored session
   * lives `ttl` seconds after its last write.
   * @default null
   */
  maxAge?: number | null | undefined;
  /** A fixed expiry; `maxAge` is the usual way (whichever comes later in the object wins, as in express-session). @default null */
  expires?: Date | null | undefined;
  /** Keep the cookie away from scripts. @default true */
  httpOnly?: boolean | undefined;
  /**
   * `Secure`: sent by browsers over HTTPS only; the cookie is not set on a
   * response to plain HTTP. `'auto'`: as the request that created the
   * session came (see `proxy`).
   * @default false
   */
  secure?: boolean | 'auto' | undefined;
  /** `SameSite`: `true` or `'strict'`, `'lax'`, `'none'`, `'auto'` (None over HTTPS, else Lax); `false` leaves it out. @default undefined (left out) */
  sameSite?: CookieSameSite | undefined;
  /** The cookie's `Path`; a request outside it gets no session. @default '/' */
  path?: string | undefined;
  /** The cookie's `Domain`; left out, the cookie goes to the exact host only. @default undefined */
  domain?: string | undefined;
  /** `Partitioned` (CHIPS); needs `secure`. @default false */
  partitioned?: boolean | undefined;
  /** `Priority`. @default undefined (left out) */
  priority?: CookiePriority | undefined;
}

/** The cookie as stored with the session (express-session's `Cookie#toJSON()`). */
export interface StoredCookie {
  originalMaxAge: number | null;
  partitioned?: boolean | undefined;
  priority?: CookiePriority | undefined;
  expires: Date | null;
  secure?: boolean | 'auto' | undefined;
  httpOnly?: boolean | undefined;
  domain?: string | undefined;
  path?: string | undefined;
  sameSite?: CookieSameSite | undefined;
}

/** RFC 6265 cookie name (a token), as the `cookie` module checks it. */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A domain as the `cookie` module 0.7 accepts it. */
const COOKIE_DOMAIN = /^([.]?[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)([.][a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/i;
/** A path as the `cookie` module 0.7 accepts it: printable ASCII but `;`. */
const COOKIE_PATH = /^[\u0020-\u003A\u003D-\u007E]*$/;
const PRIORITIES: Readonly<Record<string, string>> = { low: 'Low', medium: 'Medium', high: 'High' };
const SAME_SITES: Readonly<Record<string, string>> = { lax: 'Lax', strict: 'Strict', none: 'None' };

function invalid(name: string, why: string): SessionStoreError {
  return new SessionStoreError('ERR_INVALID_OPTION', `option "${name}" ${why}`);
}

/** @throws {SessionStoreError} `ERR_INVALID_OPTION` for a cookie name the `Cookie` header cannot carry. */
export function assertCookieName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !COOKIE_NAME.test(name))
    throw invalid('name', `must be a cookie name (letters, digits, !#$%&'*+-.^_\`|~), got ${JSON.stringify(name)}`);
}

/**
 * Checks the cookie options before any request (those given as an object;
 * a function's result is checked when the cookie is written).
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the offending `cookie.<option>`.
 */
export function assertCookieOptions(options: SessionCookieOptions): void {
  if (typeof options !== 'object' || options === null) throw invalid('cookie', 'must be an object or a function of the request returning one');
  const { maxAge, expires, httpOnly, secure, sameSite, path, domain, partitioned, priority } = options;
  if (maxAge !== undefined && maxAge !== null && (typeof maxAge !== 'number' || !Number.isFinite(maxAge)))
    throw invalid('cookie.maxAge', `must be a number of milliseconds or null, got ${JSON.stringify(maxAge)}`);
  if (expires !== undefined && expires !== null && (!(expires instanceof Date) || !Number.isFinite(expires.getTime())))
    throw invalid('cookie.expires', 'must be a valid Date or null');
  if (httpOnly !== undefined && typeof httpOnly !== 'boolean') throw invalid('cookie.httpOnly', 'must be true or false');
  if (secure !== undefined && secure !== 'auto' && typeof secure !== 'boolean') throw invalid('cookie.secure', 'must be true, false or "auto"');
  if (
    sameSite !== undefined &&
    typeof sameSite !== 'boolean' &&
    !(typeof sameSite === 'string' && ['lax', 'strict', 'none', 'auto'].includes(sameSite.toLowerCase()))
  )
    throw invalid('cookie.sameSite', `must be true, false, "lax", "strict", "none" or "auto", got ${JSON.stringify(sameSite)}`);
  if (path !== undefined && (typeof path !== 'string' || !COOKIE_PATH.test(path)))
    throw invalid('cookie.path', `must be a cookie path, got ${JSON.stringify(path)}`);
  if (domain !== undefined && (typeof domain !== 'string' || !COOKIE_DOMAIN.test(domain)))
    throw invalid('cookie.domain', `must be a host name, got ${JSON.stringify(domain)}`);
  if (partitioned !== undefined && typeof partitioned !== 'boolean') throw invalid('cookie.partitioned', 'must be true or false');
  if (priority !== undefined && !(typeof priority === 'string' && Object.hasOwn(PRIORITIES, priority.toLowerCase())))
    throw invalid('cookie.priority', `must be "low", "medium" or "high", got ${JSON.stringify(priority)}`);
}

/**
 * A session's cookie, as express-session's `Cookie`: `maxAge` counts down to
 * `expires`, `originalMaxAge` is what it was set to, and its JSON form
 * (`toJSON()`, the stored `cookie`) is express-session's.
 */
export class SessionCookie {
  path?: string | undefined = '/';
  _expires: Date | null = null;
  originalMaxAge: number | null = null;
  httpOnly?: boolean | undefined = true;
  declare secure?: boolean | 'auto' | undefined;
  declare domain?: string | undefined;
  declare sameSite?: CookieSameSite | undefined;
  declare partitioned?: boolean | undefined;
  declare priority?: CookiePriority | undefined;

  /** @param options The cookie options, applied in their order as express-session's `Cookie` does (`maxAge` and `expires` are setters). */
  constructor(options?: Readonly<SessionCookieOptions>) {
    if (options !== undefined) {
      for (const key of Object.keys(options)) {
        if (key === 'data' || key === '__proto__' || key === 'constructor') continue;
        (this as Record<string, unknown>)[key] = (options as Record<string, unknown>)[key];
      }
    }
    if (this.originalMaxAge === undefined || this.originalMaxAge === null) this.originalMaxAge = this.maxAge;
  }

  /** The cookie of a stored session, as express-session's `Store#createSession` makes it: `expires` a Date again, `originalMaxAge` as stored. */
  static fromStored(stored: Readonly<Record<string, unknown>>): SessionCookie {
    const { expires } = stored;
    const cookie = new SessionCookie({ ...stored, expires: typeof expires === 'string' ? new Date(expires) : ((expires as Date | null | undefined) ?? null) });
    if (Object.hasOwn(stored, 'originalMaxAge')) cookie.originalMaxAge = stored['originalMaxAge'] as number | null;
    return cookie;
  }

  /** When the cookie expires; `null` for a browser-session cookie. */
  get expires(): Date | null {
    return this._expires;
  }

  set expires(date: Date | null) {
    this._expires = date;
    this.originalMaxAge = this.maxAge;
  }

  /** Milliseconds left until `expires` (`null` without one); setting it moves `expires`. */
  get maxAge(): number | null {
    return this._expires instanceof Date ? this._expires.valueOf() - Date.now() : this._expires;
  }

  set maxAge(ms: number | null) {
    if (ms !== null && ms !== undefined && typeof ms !== 'number') throw new TypeError('maxAge must be a number or null');
    this.expires = typeof ms === 'number' ? new Date(Date.now() + ms) : null;
    // What it was set to, exactly: read back through `maxAge`, a clock tick in between would take a millisecond off
    // (express-session's Cookie does, now and then).
    this.originalMaxAge = typeof ms === 'number' ? ms : this.originalMaxAge;
  }

  /** The cookie's attributes (what is stored, and what `Set-Cookie` says). */
  get data(): StoredCookie {
    return {
      originalMaxAge: this.originalMaxAge,
      partitioned: this.partitioned,
      priority: this.priority,
      expires: this._expires,
      secure: this.secure,
      httpOnly: this.httpOnly,
      domain: this.domain,
      path: this.path,
      sameSite: this.sameSite,
    };
  }

  /** The `Set-Cookie` value of `name=value` with these attributes. */
  serialize(name: string, value: string): string {
    return serializeSessionCookie(name, value, this.data);
  }

  /** What is stored: {@link data}. */
  toJSON(): StoredCookie {
    return this.data;
  }
}

/**
 * `name=value` (URL-encoded) with the attributes express-session writes, in
 * the `cookie` module's order.
 * @throws {TypeError} for an attribute the header cannot carry (as the `cookie` module does).
 */
export function serializeSessionCookie(name: string, value: string, cookie: StoredCookie): string {
  if (!COOKIE_NAME.test(name)) throw new TypeError('argument name is invalid');
  let header = `${name}=${encodeURIComponent(value)}`;
  if (cookie.domain) {
    if (!COOKIE_DOMAIN.test(cookie.domain)) throw new TypeError('option domain is invalid');
    header += `; Domain=${cookie.domain}`;
  }
  if (cookie.path) {
    if (!COOKIE_PATH.test(cookie.path)) throw new TypeError('option path is invalid');
    header += `; Path=${cookie.path}`;
  }
  if (cookie.expires) {
    if (!(cookie.expires instanceof Date) || !Number.isFinite(cookie.expires.valueOf())) throw new TypeError('option expires is invalid');
    header += `; Expires=${cookie.expires.toUTCString()}`;
  }
  if (cookie.httpOnly) header += '; HttpOnly';
  if (cookie.secure) header += '; Secure';
  if (cookie.partitioned) header += '; Partitioned';
  if (cookie.priority) {
    const priority = typeof cookie.priority === 'string' ? PRIORITIES[cookie.priority.toLowerCase()] : undefined;
    if (priority === undefined) throw new TypeError('option priority is invalid');
    header += `; Priority=${priority}`;
  }
  if (cookie.sameSite) {
    const sameSite = cookie.sameSite === true ? 'Strict' : typeof cookie.sameSite === 'string' ? SAME_SITES[cookie.sameSite.toLowerCase()] : undefined;
    if (sameSite === undefined) throw new TypeError('option sameSite is invalid');
    header += `; SameSite=${sameSite}`;
  }
  return header;
}

/** A request as the middleware reads it: Node's, with what express (and cookie-parser) add. */
export interface ExpressLikeRequest extends IncomingMessage {
  /** express: the URL before any mount point took its part. */
  originalUrl?: string;
  /** express: `req.protocol === 'https'`, as its `trust proxy` setting decides. */
  secure?: boolean;
}

/**
 * True when the request came over HTTPS, as express-session decides it: the
 * TLS socket; else, with `proxy` true, `X-Forwarded-Proto`'s first value;
 * with `proxy` false, never; left undefined, express's `req.secure`.
 */
export function isSecureRequest(req: ExpressLikeRequest, proxy: boolean | undefined): boolean {
  if ((req.socket as Partial<TLSSocket> | undefined)?.encrypted === true) return true;
  if (proxy === false) return false;
  if (proxy !== true) return req.secure === true;
  const header = req.headers['x-forwarded-proto'];
  const value = (Array.isArray(header) ? header[0] : header) ?? '';
  const comma = value.indexOf(',');
  return (comma === -1 ? value : value.slice(0, comma)).trim().toLowerCase() === 'https';
}
