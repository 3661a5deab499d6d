/**
 * A session's life over the store for the adapters that keep their own
 * cookie (Fetch, Hono, React Router), whatever that cookie looks like: load
 * the session a cookie names (or start a new one under a fresh id), commit
 * it, replace it, and decide after the commit whether the response sets the
 * cookie, clears it, or leaves it alone.
 */
import { randomBytes } from 'node:crypto';
import type { SessionHandle } from '../../core/session-handle.js';
import type { SessionFormat } from '../../core/session-format.js';
import { assertSessionId } from '../../core/session-id.js';
import { SessionStoreError } from '../../errors.js';
import type { SessionStore } from '../../store.js';

/**
 * Sessions of these adapters: the application's data only, no bookkeeping. A
 * session expires `cookie.maxAge` seconds after its last write when the
 * cookie has a `maxAge` (each commit says so), else `ttl` seconds after it.
 */
export const FETCH_SESSION_FORMAT: SessionFormat = {
  bookkeeping: new Set(),
  bookkeepingChanged: () => false,
  expiresAt: () => undefined,
};

/** What a commit did, for the adapter deciding about the cookie. */
export type CommitOutcome =
  /** A new session was stored: the response must carry its cookie. */
  | 'created'
  /** A stored session was saved (its change, its expiry, or nothing needed writing). */
  | 'saved'
  /** Nothing is stored for this session: new and empty, or destroyed. */
  | 'unstored';

/** The options of a session's life, as the adapters take them. */
export interface KeeperOptions {
  /** Makes a new session id. @default 24 bytes of node:crypto randomness, base64url */
  genid?: (() => string) | undefined;
  /** Store a new session even when it holds nothing. @default false */
  saveUninitialized?: boolean | undefined;
  /** Send the cookie again on every response of a stored session. @default false */
  rolling?: boolean | undefined;
}

/**
 * Checks the options every adapter over the keeper takes alike, before
 * anything is opened.
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the offending option.
 */
export function assertKeeperOptions({ rolling, saveUninitialized, genid }: KeeperOptions): void {
  const invalid = (name: string, why: string) => new SessionStoreError('ERR_INVALID_OPTION', `option "${name}" ${why}`);
  if (rolling !== undefined && typeof rolling !== 'boolean') throw invalid('rolling', 'must be true or false');
  if (saveUninitialized !== undefined && typeof saveUninitialized !== 'boolean') throw invalid('saveUninitialized', 'must be true or false');
  if (genid !== undefined && typeof genid !== 'function') throw invalid('genid', 'must be a function returning a session id');
}

/** Random session ids: 192 bits. */
function randomId(): string {
  return randomBytes(24).toString('base64url');
}

/** True for a string the store accepts as a session id. */
export function isSessionId(id: unknown): id is string {
  try {
    assertSessionId(id);
    return true;
  } catch {
    return false;
  }
}

/** True when the session holds no value (an `undefined` value is not stored, so it does not count). */
function isEmptySession(data: object): boolean {
  return Object.values(data).every((value) => value === undefined);
}

/**
 * When a session committed now expires (epoch ms): `maxAge` seconds from now,
 * else the fixed `expires`, else `undefined` (the store's `ttl`).
 */
export function cookieExpiry(maxAge: number | null | undefined, expires: Date | undefined): number | undefined {
  if (maxAge !== undefined && maxAge !== null) return Date.now() + maxAge * 1000;
  return expires?.getTime();
}

/** What a request's session knows that decides its cookie after the commit. */
export interface CookieState {
  /** The request carried a cookie of the session's name (valid or not). */
  readonly hadCookie: boolean;
  /** The cookie verified with an older secret, or the session was rotated to a new id: send it (again), signed with the first secret. */
  renew: boolean;
  /** A clearing cookie was already sent for this session. */
  cleared: boolean;
}

/**
 * What the response does with the session cookie once the session is
 * committed: `'set'` it (a new session stored, `rolling`, a cookie an older
 * secret signed), `'clear'` it (the session the request came with was
 * destroyed or replaced and nothing took its place; once per session), or
 * nothing.
 *
 * @param replaced The session the request's cookie named is gone (destroyed, regenerated).
 */
export function cookieAfterCommit(
  outcome: CommitOutcome,
  state: CookieState,
  { rolling, replaced }: { rolling: boolean; replaced: boolean },
): 'set' | 'clear' | undefined {
  if (outcome === 'created' || (outcome === 'saved' && (rolling || state.renew))) return 'set';
  if (outcome === 'unstored' && replaced && state.hadCookie && !state.cleared) {
    state.cleared = true;
    return 'clear';
  }
  // Nothing else sends a cookie: a stale one is left alone, since clearing it
  // could erase a new session's cookie that an overlapping response just set.
  return undefined;
}

/**
 * A session's life over the store, whatever the cookie looks like: load the
 * session a cookie names (or start a new one under a fresh id), commit it,
 * replace it. The Fetch, Hono and React Router adapters are built on it.
 */
export class SessionKeeper {
  /** The store underneath. */
  readonly store: SessionStore;
  readonly #genid: () => string;
  readonly #saveUninitialized: boolean;

  constructor(store: SessionStore, options: Pick<KeeperOptions, 'genid' | 'saveUninitialized'> = {}) {
    this.store = store;
    this.#genid = options.genid ?? randomId;
    this.#saveUninitialized = options.saveUninitialized ?? false;
  }

  /** A fresh session id. @throws {SessionStoreError} `ERR_INVALID_SESSION_ID` when `genid` made an unusable one. */
  newId(): string {
    const id = this.#genid();
    assertSessionId(id);
    return id;
  }

  /**
   * The live session `id` names, or a new, empty one under a fresh id when
   * there is none: a cookie naming a missing, expired or destroyed session
   * never brings that id back.
   */
  async load(id: string | undefined): Promise<SessionHandle> {
    if (id !== undefined && isSessionId(id)) {
      const handle = await this.store.open(id);
      if (handle !== null) return handle;
    }
    return this.store.create(this.newId());
  }

  /** Destroys the session (when anything of it is stored) and gives a new, empty one under a fresh id. */
  async replace(handle: SessionHandle): Promise<SessionHandle> {
    const id = this.newId();
    if (handle.isNew && !handle.isDestroyed) return this.store.create(id);
    return handle.regenerate(id);
  }

  /**
   * Moves the session to a fresh id keeping its data (`live`, this request's change, is committed first): see
   * `SessionHandle.rotate`. The old id is dead once this resolves.
   */
  rotate(handle: SessionHandle, live: object): Promise<SessionHandle> {
    return handle.rotate(this.newId(), live);
  }

  /**
   * Commits the live session: a new one is stored only when it holds
   * something (or `saveUninitialized`), a stored one writes its change, its
   * expiry or nothing. `expiresAt` (epoch ms) left out: `ttl` from now.
   */
  async commit(handle: SessionHandle, live: object, expiresAt: number | undefined): Promise<CommitOutcome> {
    if (handle.isDestroyed) return 'unstored';
    if (handle.isNew) {
      if (!this.#saveUninitialized && isEmptySession(live)) return 'unstored';
      await handle.commit(live, { expiresAt });
      return 'created';
    }
    await handle.commit(live, { expiresAt });
    return 'saved';
  }
}
