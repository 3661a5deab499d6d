import { isJsonObject } from './json.js';

/**
 * When a session expires, in epoch milliseconds: the cookie's own expiry when
 * it has one (express-session sets it from `cookie.maxAge`), else `ttl`
 * seconds from now. Accepts the live session (cookie `expires` a `Date`) as
 * well as its JSON form (an ISO string).
 */
export function expiryOf(session: object, ttlSeconds: number, now: number): number {
  const cookie = (session as { cookie?: unknown }).cookie;
  if (typeof cookie === 'object' && cookie !== null) {
    const expires: unknown = isJsonObject(cookie) ? cookie['expires'] : undefined;
    const at =
      expires instanceof Date ? expires.getTime() : typeof expires === 'string' ? Date.parse(expires) : typeof expires === 'number' ? expires : Number.NaN;
    if (Number.isFinite(at)) return at;
  }
  return now + ttlSeconds * 1000;
}
