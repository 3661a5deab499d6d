/**
 * The bound on a cookie lifetime given in seconds (`cookie.maxAge` of the
 * Fetch, Hono and React Router adapters), shared so that each refuses the
 * same values with the same words.
 */
import { SessionStoreError } from '../../errors.js';

/** Seconds in a day. */
const DAY_SECONDS = 24 * 3600;

/**
 * The longest lifetime browsers keep a cookie for, in seconds: RFC 6265bis
 * caps `Max-Age` and `Expires` at 400 days, and Chrome, Firefox and Safari
 * apply the cap.
 */
export const MAX_COOKIE_AGE_SECONDS = 400 * DAY_SECONDS;

/** A number of seconds as days, for messages: `86400` is `1 day`, `129600` is `1.5 days`. */
function inDays(seconds: number): string {
  const days = Math.round((seconds / DAY_SECONDS) * 10) / 10;
  return `${days} day${days === 1 ? '' : 's'}`;
}

/**
 * Refuses a cookie lifetime in seconds longer than browsers keep a cookie.
 * Such a value is nearly always milliseconds written where seconds are
 * meant (`24 * 3600 * 1000`, as express counts): a cookie, and a stored
 * session, living 1000 times too long.
 *
 * @param option The option as the error names it: `cookie.maxAge`.
 * @param seconds The lifetime given, already known to be a positive finite number.
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the unit, and, for a value that fits once divided by 1000, that quotient.
 */
export function assertCookieMaxAge(option: string, seconds: number): void {
  if (seconds <= MAX_COOKIE_AGE_SECONDS) return;
  const asMilliseconds = seconds / 1000;
  const hint =
    asMilliseconds <= MAX_COOKIE_AGE_SECONDS
      ? `; if ${seconds} is milliseconds (as express counts), divide by 1000: ${option}: ${asMilliseconds} (${inDays(asMilliseconds)})`
      : '';
  throw new SessionStoreError(
    'ERR_INVALID_OPTION',
    `option "${option}" is in seconds, and ${seconds} s (${inDays(seconds)}) is more than the ${MAX_COOKIE_AGE_SECONDS} s (400 days) browsers keep a cookie${hint}`,
  );
}
