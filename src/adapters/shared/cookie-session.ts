/**
 * What the adapters of frameworks whose sessions carry a `cookie` object
 * (express-session, @fastify/session) share: the session format, and the
 * bridge from the store's promises to their Node-style callbacks.
 */
import { isJsonObject, jsonEqual, type JsonValue } from '../../core/json.js';
import type { SessionFormat } from '../../core/session-format.js';

/** A Node-style callback with no result. */
export type Callback = (error?: unknown) => void;
/** A Node-style callback with a result. */
export type ValueCallback<T> = (error: unknown, value?: T) => void;

/** Calls a Node-style callback outside the promise chain, so a throwing callback is never swallowed. */
export function settle<T>(promise: Promise<T>, callback: ValueCallback<T> | undefined): void {
  promise.then(
    (value) => {
      if (typeof callback === 'function') process.nextTick(callback, null, value);
    },
    (error: unknown) => {
      if (typeof callback === 'function') process.nextTick(callback, error);
    },
  );
}

/** Epoch milliseconds of a cookie's `expires`: a Date on a live session, an ISO string once stored. */
function expiryOf(expires: unknown): number | undefined {
  const at =
    expires instanceof Date ? expires.getTime() : typeof expires === 'string' ? Date.parse(expires) : typeof expires === 'number' ? expires : Number.NaN;
  return Number.isFinite(at) ? at : undefined;
}

/**
 * Sessions whose top-level `cookie` is the framework's bookkeeping and whose
 * `cookie.expires` is the session's expiry. The cookie keys the framework
 * rolls forward on every request (`rolling`) are no change on their own:
 * the expiry is then only touched, at most once per `touchAfter`; any other
 * change of the cookie is written. A session without `expires` (a
 * browser-session cookie) lives `ttl` seconds from its last write or touch.
 */
export function cookieSessionFormat(rollingKeys: readonly string[]): SessionFormat {
  const rolling = new Set(rollingKeys);
  const settled = (cookie: Readonly<Record<string, JsonValue>>): Record<string, JsonValue> => {
    const rest: Record<string, JsonValue> = {};
    for (const key of Object.keys(cookie)) if (!rolling.has(key)) rest[key] = cookie[key] as JsonValue;
    return rest;
  };
  return {
    bookkeeping: new Set(['cookie']),
    bookkeepingChanged(loaded, current) {
      const [before, after] = [loaded['cookie'], current['cookie']];
      if (!isJsonObject(before) || !isJsonObject(after)) return !jsonEqual(before, after);
      return !jsonEqual(settled(before), settled(after));
    },
    expiresAt(live) {
      const cookie = (live as { cookie?: unknown }).cookie;
      return typeof cookie === 'object' && cookie !== null ? expiryOf((cookie as { expires?: unknown }).expires) : undefined;
    },
  };
}
