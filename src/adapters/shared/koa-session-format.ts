/**
 * koa-session's stored session, which both Koa paths share (koa-session with
 * the external store, and the Koa session layer of our own): the
 * application's keys plus koa-session's bookkeeping. A session stored by one
 * path is read by the other, so switching between them keeps users logged in.
 */
import { jsonEqual } from '../../core/json.js';
import type { SessionHandle } from '../../core/session-handle.js';
import type { SessionFormat } from '../../core/session-format.js';

/**
 * Set while the core, diffing a save, finds the data unchanged: it asks
 * {@link KOA_SESSION_FORMAT}'s `bookkeepingChanged` only then (the port's
 * contract), within the synchronous start of `save`.
 */
let dataUnchanged = false;

/**
 * koa-session's sessions as it hands them to its store: the application's
 * keys plus its bookkeeping, `_expire` (when the session expires, epoch ms)
 * and `_maxAge` (the lifetime it was given), or `_session: true` for a
 * browser-session cookie. The bookkeeping is never diffed as data; `_expire`
 * is the session's expiry, and its moving alone is no change (the expiry is
 * then only touched, at most once per `touchAfter`) until it moves by more
 * than half of `_maxAge` (koa-session's `renew` point); a changed `_maxAge`
 * or `_session` is written. A browser-session session lives `ttl` seconds from
 * its last write or touch.
 */
export const KOA_SESSION_FORMAT: SessionFormat = {
  bookkeeping: new Set(['_expire', '_maxAge', '_session']),
  bookkeepingChanged(loaded, current) {
    dataUnchanged = true;
    const { _maxAge: maxAge, _session: browserSession, _expire: expire } = current;
    const liveMaxAge = typeof maxAge === 'number' ? maxAge : undefined;
    if (!jsonEqual(loaded['_maxAge'], liveMaxAge) || (loaded['_session'] === true) !== (browserSession === true)) return true;
    // koa-session's `renew` point: once the expiry moves by more than half the lifetime, the stored `_expire` follows
    // (written with the bookkeeping), so that it keeps telling when the cookie was last sent.
    const stored = loaded['_expire'];
    return typeof stored === 'number' && typeof expire === 'number' && liveMaxAge !== undefined && expire - stored > liveMaxAge / 2;
  },
  expiresAt(live) {
    const expire: unknown = (live as { _expire?: unknown })._expire;
    return typeof expire === 'number' && Number.isFinite(expire) ? expire : undefined;
  },
};

/** What a commit of a koa-session-shaped session wrote. */
export type KoaCommitOutcome =
  /** A new session, stored whole. */
  | 'created'
  /** The data changed: the delta was written (or the session was gone meanwhile, and nothing was). */
  | 'changed'
  /** The data did not change: at most the expiry, or a changed `_maxAge`, was written. */
  | 'unchanged';

/**
 * Commits `live` through `handle` and says whether the data changed, as the
 * core's own diff found it: koa-session decides its cookie by whether the
 * session changed, and this layer has no hash of its own to tell. The core
 * diffs before its first await, so the answer is known when `commit` returns
 * its promise; were that ever to change, the answer is `'changed'`, and the
 * cost is a `Set-Cookie` too many, never a lost write.
 */
export async function commitKoaSession(handle: SessionHandle, live: object): Promise<KoaCommitOutcome> {
  const wasNew = handle.isNew;
  dataUnchanged = false;
  const committing = handle.commit(live);
  const unchanged = dataUnchanged;
  dataUnchanged = false;
  await committing;
  return wasNew ? 'created' : unchanged ? 'unchanged' : 'changed';
}
