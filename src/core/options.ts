/**
 * The store's own options: how sessions are saved, when they expire, how
 * expired ones are removed. Where and how to connect is the backends'
 * business (`src/backends/connection-options.ts`, and each backend's folder
 * for the options only it reads).
 */
import { invalidOption, parseBoolean, parseNumber, resolveTable, rule, seconds, type OptionTable, type ResolvedTable } from './option-table.js';
import { isForbiddenKey } from './json.js';

/** How a changed session is written. See the README's "Locking modes". */
export type LockingMode = 'atomic' | 'optimistic' | 'pessimistic';

/** The locking modes, in the order the README lists them. */
export const LOCKING_MODES: readonly LockingMode[] = ['atomic', 'optimistic', 'pessimistic'];

/** Automatic removal of expired rows. */
export interface AutopurgeOptions {
  /**
   * Share of store calls that start a purge in the background (0 to 1).
   * @default 0.1
   */
  probability?: number;
  /**
   * Purge every this many seconds instead of by chance (the timer does not
   * keep the process alive). `0`: by chance only.
   * @default 0
   */
  interval?: number;
  /**
   * Rows deleted per statement, so a purge never holds locks for long.
   * @default 1000
   */
  batchSize?: number;
  /**
   * A process starts a purge at most this often, in seconds, however many
   * calls draw it.
   * @default 60
   */
  minInterval?: number;
}

/** Options of the store's behaviour, whatever the backend. */
export interface StoreOptions {
  /**
   * How a changed session is saved: `atomic` (one statement applies the delta
   * inside the database), `optimistic` (compare-and-swap on `lock_version`,
   * reload and merge on a miss) or `pessimistic` (lock the row, reload, merge,
   * write). Left out: `optimistic` when the table has a `lock_version` column
   * (and on Redis), else `atomic`.
   * @default 'atomic'
   */
  locking?: LockingMode;
  /**
   * Lifetime in seconds of a session whose framework sets no expiry (for
   * express-session: a cookie without `maxAge`).
   * @default 1800
   */
  ttl?: number;
  /**
   * Longest life of a session in seconds, counted from its creation however
   * active it is (OWASP's absolute timeout, beside the idle one that `ttl` and
   * the cookie's `maxAge` set): an older session is never returned, its
   * expiry is never moved past it, and a purge removes it. Needs a
   * `created_at` column (the store's own tables have one).
   * @default undefined (no absolute timeout)
   */
  absoluteTimeout?: number;
  /**
   * A request that changed nothing moves the stored expiry only when it would
   * move by more than this many seconds, so read-only traffic writes nothing.
   * `0` writes the expiry on every request.
   * @default 60
   */
  touchAfter?: number;
  /**
   * Largest session accepted, in bytes of JSON text. A bigger one is refused
   * with `ERR_SESSION_TOO_LARGE` and the stored session stays as it was.
   * @default 1048576
   */
  maxSize?: number;
  /**
   * Removal of expired rows (expired sessions are never returned either way):
   * `true` (about 10 % of store calls start a batched purge in the background,
   * single-flight across processes), a probability, an options object, or
   * `false`/`0` to leave it to `store.purge()` or the command line.
   * @default true
   */
  autopurge?: boolean | number | AutopurgeOptions;
  /**
   * The Prancer driver's name for `autopurge`'s probability; `autopurge: 0.25`
   * says the same.
   * @default 0.1
   */
  autopurgeProbability?: number;
  /**
   * Create the table (and its indexes) at start-up when it is missing.
   * @default false
   */
  createTable?: boolean;
  /**
   * Store the SHA-256 of each session id instead of the id itself, so a dump
   * of the table holds no usable cookie value. Turn off only for a table
   * shared with readers that look rows up by the raw id.
   * @default true
   */
  hashSessionIds?: boolean;
  /**
   * Session key holding the user id, as a dotted path (`'userId'`,
   * `'passport.user'`). When set, the table gets an indexed `user_id` column
   * filled from it on every save, and `destroyByUser` / `listByUser` log a
   * user out everywhere or list their sessions.
   * @default undefined (no user-id column)
   */
  userIdKey?: string;
  /**
   * Most sessions one user may have (`userIdKey` must be set). When a session
   * becomes a user's (its `userIdKey` is set, at a login) and the user then
   * has more, the least recently used are destroyed, with an `evicted` event:
   * a new login logs the oldest device out. Concurrent logins agree on which
   * go, so the user is left with exactly this many.
   * @default undefined (no limit)
   */
  maxSessionsPerUser?: number;
  /**
   * Keep the client an adapter reports when a session is created (its
   * `User-Agent` and IP address), listed by `listByUser` as `client`. Personal
   * data: say so in your privacy notice; it goes with its session (destroy,
   * expiry, purge). Needs a `client` column (`createTable` adds one when
   * this is on; else `ALTER TABLE sessions ADD COLUMN client TEXT`).
   * @default false
   */
  recordClient?: boolean;
}

/** Autopurge after validation. */
export interface ResolvedAutopurge {
  readonly probability: number;
  readonly intervalMs: number;
  readonly batchSize: number;
  readonly minIntervalMs: number;
}

const AUTOPURGE_DEFAULTS: ResolvedAutopurge = { probability: 0.1, intervalMs: 0, batchSize: 1000, minIntervalMs: 60_000 };
const AUTOPURGE_SETTINGS = ['probability', 'interval', 'batchSize', 'minInterval'];

/**
 * `autopurge`: `true`/`false`, the seed's `1`/`0`, a probability, or an
 * options object. A probability left open (`null`) is filled in from
 * `autopurgeProbability`.
 */
function parseAutopurge(value: unknown, name: string): (Omit<ResolvedAutopurge, 'probability'> & { readonly probability: number | null }) | undefined {
  if (value === true || value === 1) return { ...AUTOPURGE_DEFAULTS, probability: null };
  if (value === false || value === 0) return undefined;
  if (typeof value === 'number') return { ...AUTOPURGE_DEFAULTS, probability: parseNumber(value, name, { max: 1 }) };
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw invalidOption(
      name,
      `must be true, false, a probability between 0 and 1, or { probability, interval, batchSize, minInterval }, got ${JSON.stringify(value)}`,
    );
  }
  const given = value as Record<string, unknown>;
  for (const key of Object.keys(given)) {
    if (!AUTOPURGE_SETTINGS.includes(key)) throw invalidOption(`${name}.${key}`, `is not an autopurge setting (${AUTOPURGE_SETTINGS.join(', ')})`);
  }
  const setting = <T>(key: string, parse: (value: unknown, name: string) => T, fallback: T): T =>
    given[key] === undefined ? fallback : parse(given[key], `${name}.${key}`);
  return {
    // An interval alone means "by the clock": no purges by chance besides.
    probability: setting('probability', (v, n) => parseNumber(v, n, { zero: true, max: 1 }), given['interval'] === undefined ? null : 0),
    intervalMs: setting('interval', seconds({ zero: true }), 0),
    batchSize: setting('batchSize', (v, n) => parseNumber(v, n, { integer: true }), AUTOPURGE_DEFAULTS.batchSize),
    minIntervalMs: setting('minInterval', seconds({ zero: true }), AUTOPURGE_DEFAULTS.minIntervalMs),
  };
}

/** `userIdKey` as a path of segments, refusing what could reach a prototype. */
function parseUserIdKey(value: unknown, name: string): readonly string[] {
  const path = typeof value === 'string' ? value.split('.') : [];
  if (path.length === 0 || path.some((segment) => segment === '' || isForbiddenKey(segment))) {
    throw invalidOption(name, `must be a session key or dotted path such as "userId" or "passport.user", got ${JSON.stringify(value)}`);
  }
  return path;
}

function parseLocking(value: unknown, name: string): LockingMode {
  if (!LOCKING_MODES.includes(value as LockingMode)) throw invalidOption(name, `must be one of ${LOCKING_MODES.join(', ')}, got ${JSON.stringify(value)}`);
  return value as LockingMode;
}

/** Every option of {@link StoreOptions}: names, seed aliases, checks, defaults. */
export const STORE_OPTION_TABLE = {
  locking: rule<LockingMode | undefined>({
    aliases: [],
    parse: parseLocking,
    fallback: undefined,
    defaultText: "`'atomic'`, or `'optimistic'` when the table has a `lock_version` column (and on Redis)",
    summary: 'how a changed session is written, see "Locking modes"',
  }),
  ttl: rule({
    aliases: ['expiration_timeout', 'timeout'],
    as: 'ttlSeconds',
    parse: (v, n) => parseNumber(v, n),
    fallback: 1800,
    defaultText: '`1800`',
    summary: 'lifetime in seconds of a session whose framework sets no expiry (express-session: no `cookie.maxAge`)',
  }),
  absoluteTimeout: rule<number | undefined, 'absoluteTimeoutMs'>({
    as: 'absoluteTimeoutMs',
    parse: seconds(),
    fallback: undefined,
    defaultText: 'none',
    summary: 'longest life of a session in seconds from its creation, however active: older sessions are never returned',
  }),
  touchAfter: rule({
    aliases: ['touch_after'],
    as: 'touchAfterMs',
    parse: seconds({ zero: true }),
    fallback: 60_000,
    defaultText: '`60`',
    summary: 'a request that changed nothing moves the stored expiry only when it would move by more than this many seconds; `0` writes it every time',
  }),
  maxSize: rule({
    aliases: ['max_size'],
    parse: (v, n) => parseNumber(v, n, { integer: true }),
    fallback: 1024 * 1024,
    defaultText: '`1048576`',
    summary: 'largest session in bytes of JSON; larger is refused with `ERR_SESSION_TOO_LARGE`',
  }),
  autopurge: rule({
    aliases: [],
    as: 'autopurgeSetting',
    parse: parseAutopurge,
    fallback: { ...AUTOPURGE_DEFAULTS, probability: null },
    defaultText: '`true`',
    summary: 'removal of expired rows, see "Expiry and purge"',
  }),
  autopurgeProbability: rule<number | undefined>({
    aliases: ['autopurge_probability'],
    parse: (v, n) => parseNumber(v, n, { zero: true, max: 1 }),
    fallback: undefined,
    defaultText: '`0.1`',
    summary: "the Prancer driver's name for the share of calls that start a purge (`autopurge: 0.25` says the same)",
  }),
  createTable: rule({
    aliases: ['create_table'],
    parse: parseBoolean,
    fallback: false,
    defaultText: '`false`',
    summary: 'create the table at start-up if it is missing',
  }),
  hashSessionIds: rule({
    aliases: ['hash_session_ids'],
    parse: parseBoolean,
    fallback: true,
    defaultText: '`true`',
    summary: 'store the SHA-256 of each session id, never the id; see "Security"',
  }),
  userIdKey: rule<readonly string[] | undefined, 'userIdPath'>({
    aliases: ['user_id_key'],
    as: 'userIdPath',
    parse: parseUserIdKey,
    fallback: undefined,
    defaultText: 'none',
    summary: 'session key (or dotted path such as `\'passport.user\'`) holding the user id: adds an indexed `user_id` column for "log out everywhere"',
  }),
  maxSessionsPerUser: rule<number | undefined>({
    parse: (v, n) => parseNumber(v, n, { integer: true }),
    fallback: undefined,
    defaultText: 'none',
    summary: "most sessions one user may have (`userIdKey`): a login past it destroys the user's least recently used",
  }),
  recordClient: rule({
    parse: parseBoolean,
    fallback: false,
    defaultText: '`false`',
    summary: "keep the client's user agent and IP address given at a session's creation, for `listByUser` (personal data)",
  }),
} as const satisfies OptionTable<StoreOptions>;

/** The store's options after validation, with every default filled in. */
export interface ResolvedStoreOptions extends Omit<ResolvedTable<typeof STORE_OPTION_TABLE>, 'autopurgeSetting' | 'autopurgeProbability'> {
  /** `undefined` when autopurge is off. */
  readonly autopurge: ResolvedAutopurge | undefined;
}

/**
 * Checks the store's options (canonical names) and fills in defaults.
 *
 * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the option.
 */
export function resolveStoreOptions(options: Readonly<Record<string, unknown>>, spelledAs?: ReadonlyMap<string, string>): ResolvedStoreOptions {
  const { autopurgeSetting, autopurgeProbability, ...rest } = resolveTable(STORE_OPTION_TABLE, options, spelledAs);
  if (rest.maxSessionsPerUser !== undefined && rest.userIdPath === undefined) {
    throw invalidOption(spelledAs?.get('maxSessionsPerUser') ?? 'maxSessionsPerUser', 'needs userIdKey: the sessions of a user are found by it');
  }
  const autopurge =
    autopurgeSetting === undefined
      ? undefined
      : { ...autopurgeSetting, probability: autopurgeSetting.probability ?? autopurgeProbability ?? AUTOPURGE_DEFAULTS.probability };
  return { ...rest, autopurge };
}
