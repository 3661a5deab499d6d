/**
 * The session cookie of the Fetch and Hono adapters: its options, the id
 * signed as express-session signs it (`s:<id>.<HMAC-SHA256, base64 without
 * padding>`, so sessions survive a move between express-session and these
 * adapters when the secret is the same) with secret rotation, and the
 * `Set-Cookie` that sets or clears it. Reading a `Cookie` header and adding a
 * `Set-Cookie` to a `Response` serve the React Router adapter too, whose
 * cookie is React Router's own.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { SessionStoreError } from '../../errors.js';
import { assertCookieMaxAge } from './cookie-lifetime.js';

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

/** Cookie attributes after validation. */
export interface ResolvedCookie {
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

/** A cookie name as RFC 6265 allows it (a token). */
const COOKIE_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
/** A cookie attribute value: no `;`, no control characters. */
// eslint-disable-next-line no-control-regex
const ATTRIBUTE_VALUE = /^[^;\u0000-\u001f\u007f]*$/;

/** The error for an option given a value it cannot take: `option "<name>" <why>`. */
export function invalidOption(name: string, why: string): SessionStoreError {
  return new SessionStoreError('ERR_INVALID_OPTION', `option "${name}" ${why}`);
}

/**
 * The cookie's attributes with their defaults, checked.
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the offending attribute.
 */
export function resolveCookie(cookie: SessionCookieOptions | undefined): ResolvedCookie {
  if (cookie !== undefined && (typeof cookie !== 'object' || cookie === null)) throw invalidOption('cookie', 'must be an object');
  const { name = 'sid', path = '/', domain, httpOnly = true, secure = 'auto', sameSite = 'lax', maxAge, expires, partitioned = false } = cookie ?? {};
  if (typeof name !== 'string' || !COOKIE_NAME.test(name))
    throw invalidOption('cookie.name', `must be a cookie name (letters, digits, !#$%&'*+-.^_\`|~), got ${JSON.stringify(name)}`);
  if (typeof path !== 'string' || !path.startsWith('/') || !ATTRIBUTE_VALUE.test(path))
    throw invalidOption('cookie.path', `must be a path starting with "/", got ${JSON.stringify(path)}`);
  if (domain !== undefined && (typeof domain !== 'string' || !/^\.?[A-Za-z0-9](?:[A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(domain))) {
    throw invalidOption('cookie.domain', `must be a host name, got ${JSON.stringify(domain)}`);
  }
  if (typeof httpOnly !== 'boolean') throw invalidOption('cookie.httpOnly', 'must be true or false');
  if (secure !== 'auto' && typeof secure !== 'boolean') throw invalidOption('cookie.secure', 'must be true, false or "auto"');
  const sameSiteValue = typeof sameSite === 'string' ? (sameSite.toLowerCase() as SameSite) : sameSite;
  if (sameSiteValue !== false && !['lax', 'strict', 'none'].includes(sameSiteValue)) {
    throw invalidOption('cookie.sameSite', `must be "lax", "strict", "none" or false, got ${JSON.stringify(sameSite)}`);
  }
  if (maxAge !== undefined && (typeof maxAge !== 'number' || !Number.isFinite(maxAge) || maxAge <= 0)) {
    throw invalidOption('cookie.maxAge', `must be a positive number of seconds, got ${JSON.stringify(maxAge)}`);
  }
  if (maxAge !== undefined) assertCookieMaxAge('cookie.maxAge', maxAge);
  if (expires !== undefined && (!(expires instanceof Date) || !Number.isFinite(expires.getTime())))
    throw invalidOption('cookie.expires', 'must be a valid Date');
  if (typeof partitioned !== 'boolean') throw invalidOption('cookie.partitioned', 'must be true or false');
  // Browsers refuse these prefixes without Secure (and __Host- with a Domain or a path other than /).
  const prefixed = name.startsWith('__Secure-') || name.startsWith('__Host-');
  if (name.startsWith('__Host-') && (domain !== undefined || path !== '/'))
    throw invalidOption('cookie.name', 'starting with "__Host-" needs path "/" and no domain');
  return { name, path, domain, httpOnly, secure: prefixed ? true : secure, sameSite: sameSiteValue, maxAge, expires, partitioned };
}

/**
 * The secrets, the signing one first, checked and frozen.
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming `secret` (or the offending `secret[i]`).
 */
export function resolveSecrets(secret: unknown): readonly string[] {
  const secrets = typeof secret === 'string' ? [secret] : Array.isArray(secret) ? (secret as unknown[]) : undefined;
  if (secrets === undefined || secrets.length === 0)
    throw invalidOption('secret', 'must be a non-empty string or a non-empty array of them (the first signs, all verify)');
  for (const [index, value] of secrets.entries()) {
    if (typeof value !== 'string' || value === '')
      throw invalidOption(typeof secret === 'string' ? 'secret' : `secret[${index}]`, 'must be a non-empty string');
  }
  return Object.freeze([...(secrets as string[])]);
}

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

/**
 * A `Set-Cookie` header value: `value` with the cookie's lifetime, or, when
 * `expired`, an empty cookie that has already expired, which the browser drops.
 */
export function serializeCookie(cookie: ResolvedCookie, value: string, { secure, expired }: { secure: boolean; expired: boolean }): string {
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
