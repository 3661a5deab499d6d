/**
 * What a framework keeps in its sessions besides the application's data,
 * told to the core by the framework's adapter: the core itself knows no
 * framework's format.
 */
import type { JsonObject } from './json.js';

/** How one framework's sessions look. */
export interface SessionFormat {
  /**
   * Top-level keys that are the framework's bookkeeping (express-session's
   * `cookie`, koa-session's `_expire` and `_maxAge`): never diffed as data.
   * They are stored whole, as they are on the live session, with any write.
   */
  readonly bookkeeping: ReadonlySet<string>;
  /**
   * True when the bookkeeping changed in a way worth writing although the
   * data did not (express-session: the cookie changed beyond its rolling
   * `expires`). `loaded` is the session as stored; `current` holds the live
   * session's bookkeeping keys, as JSON (a key the live session lacks is
   * absent).
   */
  bookkeepingChanged(loaded: JsonObject, current: JsonObject): boolean;
  /** When the live session expires, epoch milliseconds; `undefined`: `ttl` seconds from `now`. */
  expiresAt(session: object, now: number): number | undefined;
}

/** No bookkeeping; every session lives `ttl` seconds from its last write, unless a call says otherwise. */
export const PLAIN_FORMAT: SessionFormat = {
  bookkeeping: new Set(),
  bookkeepingChanged: () => false,
  expiresAt: () => undefined,
};
