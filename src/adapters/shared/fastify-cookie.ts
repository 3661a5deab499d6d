/**
 * The session cookie of `smart-session-store/fastify`'s own session layer,
 * as @fastify/session 11 writes it, so that users keep their sessions across
 * a move between the two: the value is `<prefix><id>.<HMAC, base64 without
 * "=">` (@fastify/cookie's signer, SHA-256 by default; the first secret
 * signs, every one verifies), the `cookie` object of a session is
 * @fastify/session's `Cookie` (what it stores, and how it rolls `expires`),
 * and the `Set-Cookie` is what @fastify/cookie's `setCookie` and
 * `clearCookie` send for it.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { invalidOption } from './signed-cookie.js';

/** `SameSite`: `true` is `Strict`. */
export type FastifyCookieSameSite = boolean | 'lax' | 'strict' | 'none';
/** `Priority` (a Chrome extension of `Set-Cookie`). */
export type FastifyCookiePriority = 'low' | 'medium' | 'high';

/** Options of the session cookie: @fastify/session's. */
export interface FastifySessionCookieOptions {
  /**
   * Lifetime in **milliseconds** from each time the cookie is set (rolled on
   * every request that loads the session). Left out (and no `expires`): a
   * browser-session cookie, and the stored session lives `ttl` seconds after
   * its last write.
   * @default undefined
   */
  maxAge?: number;
  /** A fixed expiry; `maxAge` wins over it. @default undefined */
  expires?: Date;
  /** Keep the cookie away from scripts. @default true */
  httpOnly?: boolean;
  /**
   * `Secure`. With `true` (the default, as @fastify/session) a request over
   * plain HTTP gets no cookie at all, and its session is not saved.
   * `'auto'`: secure over HTTPS only (`request.protocol`; behind a proxy,
   * with Fastify's `trustProxy`), else not secure and `SameSite=Lax`.
   * @default true
   */
  secure?: boolean | 'auto';
  /** `SameSite`; `true` is `Strict`. @default undefined (no attribute) */
  sameSite?: FastifyCookieSameSite;
  /** The cookie's path; requests outside it get no session (`request.session` is `{}`). @default '/' */
  path?: string;
  /** The cookie's `Domain`. @default undefined (the exact host) */
  domain?: string;
  /** `Partitioned` (CHIPS). @default undefined */
  partitioned?: boolean;
  /** `Priority`. @default undefined */
  priority?: FastifyCookiePriority;
}

/** The signer of the cookie: @fastify/cookie's `Signer` interface, which `secret` may also be. */
export interface SessionSigner {
  /** `value.signature` */
  sign(value: string): string;
  /** The value a signed string holds; `renew` when an older secret signed it. */
  unsign(signed: string): { valid: boolean; renew: boolean; value: string | null };
}

/**
 * @fastify/cookie's signer: `<value>.<HMAC of value, base64, "=" removed>`;
 * the first secret signs, every one verifies (`renew`: not the first).
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` for an unknown algorithm.
 */
export function hmacSigner(secrets: () => readonly string[], algorithm: string): SessionSigner {
  try {
    createHmac(algorithm, 'probe');
  } catch {
    throw invalidOption('algorithm', `must be an HMAC algorithm Node knows, got ${JSON.stringify(algorithm)}`);
  }
  const signature = (value: string, secret: string): string => createHmac(algorithm, secret).update(value).digest('base64').replace(/=/g, '');
  return {
    sign: (value) => `${value}.${signature(value, secrets()[0] as string)}`,
    unsign(signed) {
      const dot = signed.lastIndexOf('.');
      if (dot <= 0 || dot === signed.length - 1) return { valid: false, renew: false, value: null };
      const value = signed.slice(0, dot);
      const given = Buffer.from(signed.slice(dot + 1));
      for (const [index, secret] of secrets().entries()) {
        const expected = Buffer.from(signature(value, secret));
        if (expected.length === given.length && timingSafeEqual(expected, given)) return { valid: true, renew: index > 0, value };
      }
      return { valid: false, renew: false, value: null };
    },
  };
}

/**
 * The signer `secret` gives: a string of 32 characters or more, a non-empty
 * array of strings (the first signs), or a signer object.
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming `secret`.
 */
export function signerOf(secret: unknown, algorithm: unknown = 'sha256'): SessionSigner {
  if (typeof algorithm !== 'string') throw invalidOption('algorithm', 'must be a string');
  if (typeof secret === 'string') {
    if (secret.length < 32) throw invalidOption('secret', 'must have length 32 or greater');
    const secrets = [secret];
    return hmacSigner(() => secrets, algorithm);
  }
  if (Array.isArray(secret)) {
    if (secret.length === 0) throw invalidOption('secret', 'must hold at least one secret');
    for (const [index, value] of (secret as unknown[]).entries()) {
      if (typeof value !== 'string' || value === '') throw invalidOption(`secret[${index}]`, 'must be a non-empty string');
    }
    // Read on each call, as @fastify/cookie does: an application may rotate the array in place.
    const secrets = secret as string[];
    return hmacSigner(() => secrets, algorithm);
  }
  const signer = secret as Partial<SessionSigner> | null | undefined;
  if (typeof signer === 'object' && signer !== null && typeof signer.sign === 'function' && typeof signer.unsign === 'function') return signer as SessionSigner;
  throw invalidOption('secret', 'is required: a string of 32 characters or more, an array of strings, or a signer with sign() and unsign()');
}

/**
 * Checks the cookie options as far as they can be known before a request.
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the offending `cookie.*` option.
 */
export function assertFastifyCookieOptions(cookie: unknown): asserts cookie is FastifySessionCookieOptions | undefined {
  if (cookie === undefined) return;
  if (typeof cookie !== 'object' || cookie === null) throw invalidOption('cookie', 'must be an object');
  const { maxAge, expires, httpOnly, secure, sameSite, path, domain, partitioned, priority } = cookie as Record<string, unknown>;
  if (maxAge !== undefined && (typeof maxAge !== 'number' || !Number.isFinite(maxAge) || maxAge <= 0))
    throw invalidOption('cookie.maxAge', `must be a positive number of milliseconds, got ${JSON.stringify(maxAge)}`);
  if (expires !== undefined && !(expires instanceof Date && Number.isFinite(expires.getTime()))) throw invalidOption('cookie.expires', 'must be a valid Date');
  if (httpOnly !== undefined && typeof httpOnly !== 'boolean') throw invalidOption('cookie.httpOnly', 'must be true or false');
  if (secure !== undefined && secure !== 'auto' && typeof secure !== 'boolean') throw invalidOption('cookie.secure', 'must be true, false or "auto"');
  if (sameSite !== undefined && typeof sameSite !== 'boolean' && !['lax', 'strict', 'none'].includes(String(sameSite).toLowerCase()))
    throw invalidOption('cookie.sameSite', `must be true, false, "lax", "strict" or "none", got ${JSON.stringify(sameSite)}`);
  if (path !== undefined && (typeof path !== 'string' || !path.startsWith('/') || /[;\u0000-\u001f\u007f]/.test(path)))
    throw invalidOption('cookie.path', `must be a path starting with "/", got ${JSON.stringify(path)}`);
  if (domain !== undefined && (typeof domain !== 'string' || !/^\.?[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(domain)))
    throw invalidOption('cookie.domain', `must be a host name, got ${JSON.stringify(domain)}`);
  if (partitioned !== undefined && typeof partitioned !== 'boolean') throw invalidOption('cookie.partitioned', 'must be true or false');
  if (priority !== undefined && !['low', 'medium', 'high'].includes(String(priority).toLowerCase()))
    throw invalidOption('cookie.priority', `must be "low", "medium" or "high", got ${JSON.stringify(priority)}`);
}

/** What a session's cookie is made from: the options, merged with what was stored (`originalMaxAge`, `expires` as text). */
export interface CookieSource extends Omit<FastifySessionCookieOptions, 'expires' | 'maxAge'> {
  maxAge?: number | null | undefined;
  expires?: Date | string | number | null | undefined;
  originalMaxAge?: number | null | undefined;
  originalExpires?: Date | string | null | undefined;
}

/**
 * A session's cookie: @fastify/session's `Cookie`, field for field (what it
 * stores is what @fastify/session stores). `maxAge` (milliseconds) sets
 * `expires` from now; `toJSON()` is the stored form, and the attributes of
 * its `Set-Cookie`.
 */
export class FastifySessionCookie {
  path: string;
  secure: boolean | 'auto' | null;
  sameSite: FastifyCookieSameSite | null;
  domain: string | null;
  httpOnly: boolean;
  partitioned: boolean | undefined;
  priority: FastifyCookiePriority | undefined;
  /** The expiry the cookie had when it was made from a stored session (or the options' fixed `expires`). */
  originalExpires: Date | undefined;
  /** The `maxAge` every request rolls the expiry by, milliseconds; `null` for none. */
  originalMaxAge: number | null = null;
  _expires: Date | null = null;

  /** @param https The request came over HTTPS (for `secure: 'auto'`). */
  constructor(cookie: CookieSource, https: boolean) {
    const originalMaxAge = cookie.originalMaxAge || cookie.maxAge || null;
    this.path = cookie.path || '/';
    this.secure = cookie.secure ?? null;
    this.sameSite = cookie.sameSite || null;
    this.domain = cookie.domain || null;
    this.httpOnly = cookie.httpOnly !== undefined ? cookie.httpOnly : true;
    this.partitioned = cookie.partitioned;
    this.priority = cookie.priority;
    if (cookie.expires) this.originalExpires = new Date(cookie.expires);
    if (originalMaxAge) {
      this.maxAge = originalMaxAge;
    } else if (cookie.expires) {
      this.expires = new Date(cookie.expires);
      this.originalMaxAge = null;
    }
    if (this.secure === 'auto') {
      if (https) {
        this.secure = true;
      } else {
        this.sameSite = 'lax';
        this.secure = false;
      }
    }
  }

  get expires(): Date | null {
    return this._expires;
  }

  set expires(date: Date | null) {
    this._expires = date;
  }

  /** Milliseconds left; `null` for a browser-session cookie. Setting it sets `expires` from now, and `originalMaxAge`. */
  get maxAge(): number | null {
    return this._expires instanceof Date ? this._expires.valueOf() - Date.now() : null;
  }

  set maxAge(ms: number) {
    this._expires = new Date(Date.now() + ms);
    this.originalMaxAge = ms;
  }

  /** The stored form (@fastify/session's, plus `priority` when set). */
  toJSON(): Record<string, unknown> {
    const json: Record<string, unknown> = {
      expires: this._expires,
      originalMaxAge: this.originalMaxAge,
      originalExpires: this.originalExpires,
      sameSite: this.sameSite,
      secure: this.secure,
      path: this.path,
      httpOnly: this.httpOnly,
      domain: this.domain,
      partitioned: this.partitioned,
    };
    if (this.priority !== undefined) json['priority'] = this.priority;
    return json;
  }
}

/** The attributes of a `Set-Cookie`, as @fastify/cookie's `setCookie` takes them. */
interface SetCookieAttributes {
  expires?: Date | null | undefined;
  maxAge?: number | undefined;
  domain?: string | null | undefined;
  path?: string | null | undefined;
  httpOnly?: boolean | undefined;
  secure?: boolean | 'auto' | null | undefined;
  partitioned?: boolean | undefined;
  priority?: string | undefined;
  sameSite?: FastifyCookieSameSite | null | undefined;
}

/** `Set-Cookie` as @fastify/cookie serializes it (with the `cookie` package): attributes in its order, `SameSite` defaulting to `Lax` when absent. */
function serialize(name: string, value: string, given: SetCookieAttributes, https: boolean): string {
  const options: SetCookieAttributes = { sameSite: 'lax', ...given };
  let text = `${name}=${encodeURIComponent(value)}`;
  if (options.maxAge !== undefined) text += `; Max-Age=${Math.floor(options.maxAge)}`;
  if (options.domain) text += `; Domain=${options.domain}`;
  if (options.path) text += `; Path=${options.path}`;
  if (options.expires instanceof Date && Number.isFinite(options.expires.getTime())) text += `; Expires=${options.expires.toUTCString()}`;
  if (options.httpOnly) text += '; HttpOnly';
  const secure = options.secure === 'auto' ? https : options.secure;
  if (secure) text += '; Secure';
  if (options.partitioned) text += '; Partitioned';
  if (options.priority) {
    const priority = options.priority.toLowerCase();
    text += `; Priority=${priority[0]?.toUpperCase()}${priority.slice(1)}`;
  }
  if (options.sameSite) {
    const sameSite = options.sameSite === true ? 'strict' : String(options.sameSite).toLowerCase();
    text += `; SameSite=${sameSite[0]?.toUpperCase()}${sameSite.slice(1)}`;
  }
  return text;
}

/** The `Set-Cookie` of a session: its signed id under its cookie's attributes. */
export function sessionSetCookie(name: string, value: string, cookie: FastifySessionCookie, https: boolean): string {
  return serialize(name, value, cookie.toJSON() as SetCookieAttributes, https);
}

/** The `Set-Cookie` that clears the cookie (@fastify/cookie's `clearCookie` with the cookie's domain and path). */
export function clearingSetCookie(name: string, options: { domain?: string | undefined; path?: string | undefined }, https: boolean): string {
  return serialize(name, '', { path: options.path || '/', domain: options.domain, expires: new Date(0), maxAge: 0 }, https);
}

/**
 * True when the request's path is within the cookie's: the cookie is sent
 * for it (@fastify/session's `verifyPath`, RFC 6265's path-match).
 */
export function pathMatches(path: string, cookiePath: string): boolean {
  if (path === cookiePath) return true;
  if (path.length <= cookiePath.length || !path.startsWith(cookiePath)) return false;
  return path[cookiePath.length] === '/' || cookiePath.endsWith('/');
}
