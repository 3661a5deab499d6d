/**
 * The store itself, free of any SQL dialect and of any web framework:
 * snapshot, delta, merge, expiry and the three locking modes. Adapters (such
 * as `smart-session-store/express`) remember what each request loaded and hand
 * it back on save.
 */
import { EventEmitter } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import { SessionStoreError, toStoreError } from '../errors.js';
import { openSessionTable } from '../dialects/open.js';
import type { CreateTableOptions, LockedWrite, SessionTable, StoredSessionRow, UserIdWrite } from '../dialects/dialect.js';
import { applyDelta, deltaToJson, diffLive, isEmptyDelta, type SessionDelta } from './delta.js';
import { expiryOf } from './expiry.js';
import { isJsonObject, jsonEqual, JsonWalk, parseStoredSession, toJsonValue, type JsonObject, type JsonValue } from './json.js';
import { resolveOptions, type LockingMode, type ResolvedOptions, type SessionStoreOptions } from './options.js';
import { assertSessionId, hashSessionId } from './session-id.js';
import { userIdAfterDelta, userIdOf } from './user-id.js';

/**
 * What a request loaded (or last saved): the base its next save is diffed
 * against. Opaque to users; adapters keep it per request and pass it back.
 */
export interface LoadedState {
  /** The session as this request saw it or last saved it, as JSON text: the delta is taken against it. */
  readonly viewText: string;
  /** The stored document at `version` (differs from `viewText` after a merged save): the optimistic merge base. */
  readonly baseText: string;
  /** `lock_version` of `baseText`, `null` when unknown. */
  readonly version: number | null;
  /** Stored expiry, epoch milliseconds. */
  readonly expiresAt: number;
}

/** A session read from the store, with the state to hand back when saving it. */
export interface LoadedSession {
  /** The session data (including express-session's `cookie`). */
  readonly session: JsonObject;
  /** Hand this back to {@link SessionStore.save} so only this request's change is written. */
  readonly state: LoadedState;
}

/** A session of one user, from {@link SessionStore.listByUser}. */
export interface UserSession {
  /** The session data. */
  readonly session: JsonObject;
  /** When it expires. */
  readonly expiresAt: Date;
}

/** Events of {@link SessionStore} (never `error`, so an unlistened store cannot crash the process). */
export interface SessionStoreEvents {
  /** The database answers again after a `disconnect`. */
  connect: [];
  /** The database could not be reached; calls fail fast with `ERR_UNAVAILABLE` until `connect`. */
  disconnect: [error: SessionStoreError];
  /** A background purge finished, having removed this many expired sessions. */
  purge: [removed: number];
  /** A background purge failed; the next one will try again. */
  purgeError: [error: SessionStoreError];
}

/** Options of {@link SessionStore.purge}. */
export interface PurgeOptions {
  /** Rows deleted per statement. @default the autopurge batchSize, 1000 */
  batchSize?: number;
  /** Called after each batch with the number removed so far. */
  onProgress?: (removed: number) => void;
}

/** Live and expired sessions in the table, from {@link SessionStore.stats}. */
export interface SessionStats {
  readonly live: number;
  readonly expired: number;
}

/** Runs of an operation the database rolled back for a lock conflict (deadlock, lock timeout), before giving up. */
const CONFLICT_ATTEMPTS = 5;
/** How often, in ms, an unreachable database is probed. */
const PROBE_INTERVAL_MS = 1000;

/** express-session's cookie: compared apart from the data, see {@link SessionStore.save}. */
const COOKIE: ReadonlySet<string> = new Set(['cookie']);

/** Attempts of compare-and-swap before an optimistic save takes the row lock instead. */
const OPTIMISTIC_ATTEMPTS = 8;
/** Columns every sessions table must have (besides an expiry column). */
const REQUIRED_COLUMNS = ['id', 'data'] as const;

/** The size limit in force and, when the table sets it below `maxSize`, why. */
interface SizeLimit {
  readonly sizeLimit: number;
  readonly limitedBy: string | undefined;
}

interface PreparedTable extends SizeLimit {
  readonly table: SessionTable;
  readonly locking: LockingMode;
}

/** Compares two cookies, ignoring `expires`, which express-session rolls forward on every request. */
function sameCookie(loaded: JsonValue | undefined, current: JsonValue | undefined): boolean {
  if (!isJsonObject(loaded) || !isJsonObject(current)) return jsonEqual(loaded, current);
  const { expires: _loadedExpires, ...loadedRest } = loaded;
  const { expires: _currentExpires, ...currentRest } = current;
  return jsonEqual(loadedRest, currentRest);
}

/**
 * A session store over PostgreSQL, MySQL/MariaDB or SQLite that saves each
 * request's delta into the latest stored session, so overlapping requests
 * never erase each other's changes.
 *
 * Promise-based and framework-neutral; `smart-session-store/express` wraps it
 * as an express-session store.
 *
 * @example
 * ```ts
 * const store = new SessionStore({ url: 'sqlite:./sessions.db', createTable: true });
 * const loaded = await store.load(sid);
 * const session = loaded?.session ?? {};
 * session.visits = Number(session.visits ?? 0) + 1;
 * await store.save(sid, session, loaded?.state);
 * ```
 */
export class SessionStore extends EventEmitter<SessionStoreEvents> {
  /** The options as validated, with defaults filled in. */
  readonly options: ResolvedOptions;
  #table: Promise<SessionTable> | undefined;
  #prepared: Promise<PreparedTable> | undefined;
  /** The same once it has resolved: the hot path skips a promise. */
  #preparedTable: PreparedTable | undefined;
  #closed = false;
  /** Set while the database cannot be reached: calls fail fast and a probe looks for its return. */
  #unavailable: { readonly since: Date; readonly error: unknown; readonly probe: NodeJS.Timeout } | undefined;
  /** The purge running in this process, if any: purges are single-flight. */
  #purging: Promise<number> | undefined;
  #lastAutopurge = 0;
  #autopurgeTimer: NodeJS.Timeout | undefined;

  /** @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the offending option. */
  constructor(options: SessionStoreOptions) {
    super();
    this.options = resolveOptions(options);
    const autopurge = this.options.autopurge;
    if (autopurge !== undefined && autopurge.intervalMs > 0) {
      // The timer must not keep a process alive that has nothing else to do.
      this.#autopurgeTimer = setInterval(() => this.#purgeInBackground(), autopurge.intervalMs).unref();
    }
  }

  /** The dialect in use, from the URL. */
  get dialect(): SessionTable['dialect'] {
    return this.options.target.dialect;
  }

  /** The locking mode in force, once the table has been inspected (see {@link SessionStore.ready}). */
  async lockingMode(): Promise<LockingMode> {
    return (await this.#ready()).locking;
  }

  /** Connects and inspects the table; calls do this on their own, this only surfaces problems early. */
  async ready(): Promise<void> {
    await this.#ready();
  }

  #open(): Promise<SessionTable> {
    if (this.#closed) return Promise.reject(new SessionStoreError('ERR_STORE_CLOSED', 'the session store is closed'));
    this.#table ??= openSessionTable(this.options).catch((error: unknown) => {
      this.#table = undefined;
      throw error;
    });
    return this.#table;
  }

  #ready(): Promise<PreparedTable> {
    if (this.#closed) return Promise.reject(new SessionStoreError('ERR_STORE_CLOSED', 'the session store is closed'));
    this.#prepared ??= this.#prepare().then((prepared) => (this.#preparedTable = prepared)).catch(async (error: unknown) => {
      // Retry on the next call: the database may only have been down for a moment.
      this.#prepared = undefined;
      const table = await this.#table?.catch(() => undefined);
      if (table?.isConnectionError(error)) throw this.#markUnavailable(table, error);
      throw toStoreError(error, 'preparing the sessions table');
    });
    return this.#prepared;
  }

  /**
   * Runs one store operation. An operation that lost its connection is run
   * again on another, and one the database rolled back to break a deadlock
   * is run again after a pause (every operation is idempotent: a delta
   * applied twice gives the same session). A database that cannot be reached
   * is reported as `ERR_UNAVAILABLE`, and later calls fail fast until it
   * answers again.
   */
  async #call<T>(doing: string, operation: (prepared: PreparedTable) => Promise<T>): Promise<T> {
    try {
      if (this.#unavailable !== undefined) throw this.#unavailableError(this.#unavailable.error, this.#unavailable.since);
      const prepared = this.#preparedTable ?? (await this.#ready());
      const { table } = prepared;
      let lostConnections = 0;
      let conflicts = 0;
      for (;;) {
        try {
          const result = await operation(prepared);
          this.#maybeAutopurge();
          return result;
        } catch (error) {
          if (table.isTransientConflict(error) && ++conflicts < CONFLICT_ATTEMPTS) {
            // The database rolled the work back to break a deadlock: run it again after a short random pause.
            await sleep(Math.random() * 10 * conflicts);
            continue;
          }
          if (!table.isConnectionError(error)) throw error;
          // A connection the server dropped is discarded; the next attempt takes another, up to a whole pool's worth.
          // One that cannot even be opened means the database is unreachable: no point in trying again now.
          if (table.isConnectFailure(error) || ++lostConnections > this.options.poolSize) throw this.#markUnavailable(table, error);
        }
      }
    } catch (error) {
      throw toStoreError(error, doing);
    }
  }

  #unavailableError(cause: unknown, since?: Date): SessionStoreError {
    const detail = cause instanceof Error ? cause.message : String(cause);
    const when = since === undefined ? '' : ` since ${since.toISOString()}`;
    return new SessionStoreError('ERR_UNAVAILABLE', `the database cannot be reached${when} (${detail}); the store reconnects by itself`, { cause });
  }

  /** Enters the unavailable state (once), emits `disconnect` and probes until the database answers. */
  #markUnavailable(table: SessionTable, cause: unknown): SessionStoreError {
    const error = this.#unavailableError(cause);
    if (this.#unavailable !== undefined || this.#closed) return error;
    const probe = setInterval(() => {
      table.ping().then(
        () => {
          if (this.#unavailable?.probe !== probe) return;
          clearInterval(probe);
          this.#unavailable = undefined;
          this.emit('connect');
        },
        () => undefined,
      );
    }, PROBE_INTERVAL_MS).unref();
    this.#unavailable = { since: new Date(), error: cause, probe };
    this.emit('disconnect', error);
    return error;
  }

  /** About one call in `1 / probability` starts a purge, off the response path, at most once per `minInterval`. */
  #maybeAutopurge(): void {
    const autopurge = this.options.autopurge;
    if (autopurge === undefined || autopurge.probability === 0 || this.#purging !== undefined) return;
    if (Math.random() >= autopurge.probability || Date.now() - this.#lastAutopurge < autopurge.minIntervalMs) return;
    this.#lastAutopurge = Date.now();
    setImmediate(() => this.#purgeInBackground());
  }

  #purgeInBackground(): void {
    if (this.#closed || this.#unavailable !== undefined) return;
    this.purge().then(
      (removed) => this.emit('purge', removed),
      (error: unknown) => this.emit('purgeError', toStoreError(error, 'purging expired sessions')),
    );
  }

  async #prepare(): Promise<PreparedTable> {
    const table = await this.#open();
    let info = await table.inspect();
    if (info === null && this.options.createTable) {
      await table.create(this.#createTableOptions());
      info = await table.inspect();
    }
    const tableName = this.#tableName();
    if (info === null) {
      throw new SessionStoreError(
        'ERR_TABLE_MISSING',
        `table ${tableName} does not exist: create it with store.createTable(), ` +
          `"npx smart-session-store create-table --url <url>${this.options.table.name === 'sessions' && this.options.table.schema === undefined ? '' : ` --table ${tableName}`}", or the option createTable: true`,
      );
    }
    const missing = REQUIRED_COLUMNS.filter((column) => !info.columns.has(column));
    if (missing.length > 0) {
      throw new SessionStoreError('ERR_SCHEMA', `table ${tableName} lacks the column(s) ${missing.join(', ')}`);
    }
    if (info.expiry === undefined) {
      throw new SessionStoreError(
        'ERR_SCHEMA',
        `table ${tableName} has no expiry column the store understands: expires_at (a timestamp, or epoch milliseconds) or timeout (epoch seconds)`,
      );
    }
    if (this.options.userIdPath !== undefined && !info.columns.has('user_id')) {
      throw new SessionStoreError(
        'ERR_SCHEMA',
        `userIdKey needs a user_id column: ALTER TABLE ${tableName} ADD COLUMN user_id VARCHAR(255), then index it`,
      );
    }
    const locking = this.options.locking ?? (info.hasLockVersion ? 'optimistic' : 'atomic');
    if (locking === 'optimistic' && !info.hasLockVersion) {
      throw new SessionStoreError(
        'ERR_SCHEMA',
        `locking "optimistic" needs an integer lock_version column: ALTER TABLE ${tableName} ADD COLUMN lock_version INTEGER NOT NULL DEFAULT 0`,
      );
    }
    table.use(info);
    const capacity = info.dataCapacity;
    const capped = capacity !== undefined && capacity.bytes < this.options.maxSize;
    return { table, locking, sizeLimit: capped ? capacity.bytes : this.options.maxSize, limitedBy: capped ? capacity.limitedBy : undefined };
  }

  #createTableOptions(): CreateTableOptions {
    return { lockVersion: this.options.locking === 'optimistic', userId: this.options.userIdPath !== undefined };
  }

  /** The user id to write for a whole session; `undefined` when there is no user-id column. */
  #userIdOf(data: JsonObject): UserIdWrite {
    return this.options.userIdPath === undefined ? undefined : userIdOf(data, this.options.userIdPath);
  }

  #tableName(): string {
    const { schema, name } = this.options.table;
    return schema === undefined ? name : `${schema}.${name}`;
  }

  #key(sid: unknown): string {
    assertSessionId(sid);
    return this.options.hashSessionIds ? hashSessionId(sid) : sid;
  }

  /** Serialises a session, refusing what cannot be stored or is too large. */
  #serialise(session: unknown): { data: JsonObject; text: string } {
    const data = toJsonValue(session);
    if (!isJsonObject(data)) {
      throw new SessionStoreError('ERR_VALUE_NOT_STORABLE', `a session must be an object, got ${Array.isArray(data) ? 'an array' : typeof data}`);
    }
    const text = JSON.stringify(data);
    this.#checkSize(text, this.options.maxSize);
    return { data, text };
  }

  /** Refuses text over `limit` bytes: the session stays as stored, never cut short by a column. */
  #checkSize(text: string, limit: number, limitedBy?: string): void {
    // Only a text that could be over the limit is measured: a UTF-16 unit is at most 3 bytes of UTF-8.
    if (text.length * 3 <= limit) return;
    const size = Buffer.byteLength(text, 'utf8');
    if (size > limit) {
      const why = limitedBy === undefined ? `over maxSize (${limit})` : `over the ${limit} bytes that ${limitedBy} allows`;
      throw new SessionStoreError('ERR_SESSION_TOO_LARGE', `the session is ${size} bytes as JSON, ${why}`);
    }
  }

  /**
   * Creates the table and its expiry index if they do not exist (with a
   * `lock_version` column when `locking` is `optimistic`).
   */
  async createTable(): Promise<void> {
    try {
      const table = await this.#open();
      await table.create(this.#createTableOptions());
      this.#prepared = undefined;
      this.#preparedTable = undefined;
      await this.#ready();
    } catch (error) {
      const table = await this.#table?.catch(() => undefined);
      if (table?.isConnectionError(error)) throw this.#markUnavailable(table, error);
      throw toStoreError(error, 'creating the sessions table');
    }
  }

  /**
   * Reads a live session; `null` when there is none or it has expired.
   *
   * @throws {SessionStoreError} `ERR_INVALID_SESSION_ID`, `ERR_CORRUPT_ROW`, `ERR_DATABASE`
   */
  async load(sid: string): Promise<LoadedSession | null> {
    const key = this.#key(sid);
    return this.#call('loading the session', async ({ table }) => {
      const row = await table.load(key, Date.now());
      if (row === null) return null;
      const session = parseStoredSession(row.text);
      const text = row.text as string;
      return { session, state: { viewText: text, baseText: text, version: row.version, expiresAt: row.expiresAt } };
    });
  }

  /**
   * Saves a session.
   *
   * With the `state` its request loaded, only that request's delta is written,
   * merged into the latest stored session; if the session was destroyed in
   * the meantime nothing is written (a logout sticks). A session whose data
   * did not change writes at most its expiry. Without `state` the session is
   * stored as given.
   *
   * Resolves to the state for a further save of the same request.
   *
   * @throws {SessionStoreError} `ERR_INVALID_SESSION_ID`, `ERR_VALUE_NOT_STORABLE`, `ERR_FORBIDDEN_KEY`,
   *   `ERR_SESSION_TOO_LARGE` (nothing written in each case), `ERR_DATABASE`
   */
  async save(sid: string, session: object, state?: LoadedState): Promise<LoadedState> {
    const key = this.#key(sid);
    if (!JsonWalk.isKeyed(session)) {
      throw new SessionStoreError('ERR_VALUE_NOT_STORABLE', `a session must be an object, got ${Array.isArray(session) ? 'an array' : session === null ? 'null' : typeof session}`);
    }
    const now = Date.now();
    const expiresAt = expiryOf(session, this.options.ttlSeconds, now);
    if (state === undefined) {
      const current = this.#serialise(session);
      return this.#call('saving the session', async ({ table, sizeLimit, limitedBy }) => {
        this.#checkSize(current.text, sizeLimit, limitedBy);
        await table.upsert(key, current.text, expiresAt, this.#userIdOf(current.data));
        return { viewText: current.text, baseText: current.text, version: null, expiresAt };
      });
    }
    // Only what changed is converted and validated, before any statement: the rest was stored JSON already.
    const loaded = parseStoredSession(state.viewText);
    const delta = this.#deltaOf(loaded, session);
    return this.#call('saving the session', async ({ table, locking, sizeLimit, limitedBy }) => {
      if (delta === null) return (await this.#touch(table, key, expiresAt, now, state)) ?? state;
      const view = this.#view(loaded, delta, state.viewText, sizeLimit, limitedBy);
      const saved = await this.#saveDelta(table, locking, { sizeLimit, limitedBy }, key, delta, expiresAt, now, state);
      if (saved === null) return state;
      return { get viewText() { return view(); }, baseText: saved.baseText, version: saved.version, expiresAt };
    });
  }

  /**
   * The session as this request now sees it, as JSON text, made only when
   * needed (a second save in the same request), after refusing a result over
   * the size limit. The size is bounded from the loaded text and the delta
   * first: the whole text is built to measure it only when the bound is over.
   */
  #view(loaded: JsonObject, delta: SessionDelta, loadedText: string, sizeLimit: number, limitedBy: string | undefined): () => string {
    let text: string | undefined;
    const build = (): string => (text ??= JSON.stringify(applyDelta(loaded, delta)));
    const bound = (loadedText.length + JSON.stringify(deltaToJson(delta)).length) * 3;
    if (bound > sizeLimit) this.#checkSize(build(), sizeLimit, limitedBy);
    return build;
  }

  /**
   * The change from `loaded` to the live `session`, or `null` when the data
   * did not change. The cookie's `expires` alone is no change (express-session
   * rolls it on every request); any real change carries the whole current cookie.
   */
  #deltaOf(loaded: JsonObject, session: object): SessionDelta | null {
    const delta = diffLive(loaded, session, COOKIE);
    const liveCookie = (session as { cookie?: unknown }).cookie;
    const currentCookie = liveCookie === undefined ? undefined : toJsonValue(liveCookie);
    const loadedCookie = loaded['cookie'];
    if (isEmptyDelta(delta) && sameCookie(loadedCookie, currentCookie)) return null;
    if (currentCookie !== undefined) delta.set.set('cookie', { kind: 'value', value: currentCookie });
    else if (loadedCookie !== undefined) delta.unset.push('cookie');
    return delta;
  }

  /** Merges the delta into the stored text, refusing a result over the size limit. */
  #merged(storedText: string | null, delta: SessionDelta, { sizeLimit, limitedBy }: SizeLimit): LockedWrite {
    const merged = applyDelta(parseStoredSession(storedText), delta);
    const text = JSON.stringify(merged);
    this.#checkSize(text, sizeLimit, limitedBy);
    return { text, userId: this.#userIdOf(merged) };
  }

  /** Writes a delta in the configured mode; `null` when the row is gone (destroyed or expired). */
  async #saveDelta(
    table: SessionTable,
    locking: LockingMode,
    limit: SizeLimit,
    key: string,
    delta: SessionDelta,
    expiresAt: number,
    now: number,
    state: LoadedState,
  ): Promise<{ baseText: string; version: number | null } | null> {
    if (locking === 'atomic') {
      // One round trip: the delta is applied inside the database, so no lock is held between statements.
      const path = this.options.userIdPath;
      const userId = path === undefined ? undefined : userIdAfterDelta(delta, path)?.userId;
      return (await table.applyDelta(key, delta, expiresAt, now, userId)) ? { baseText: '', version: null } : null;
    }
    if (locking === 'optimistic') {
      let baseText: string | null = state.baseText;
      let version = state.version;
      for (let attempt = 0; attempt < OPTIMISTIC_ATTEMPTS; attempt++) {
        if (version === null) {
          const row: StoredSessionRow | null = await table.load(key, Date.now());
          if (row === null) return null;
          baseText = row.text;
          version = row.version;
          if (version === null) break;
        }
        const merged = this.#merged(baseText, delta, limit);
        if (await table.compareAndSwap(key, merged.text, expiresAt, version, Date.now(), merged.userId)) {
          return { baseText: merged.text, version: version + 1 };
        }
        // Someone saved in between: reload and merge again, after a short random pause once it repeats.
        version = null;
        if (attempt > 0) await sleep(Math.random() * Math.min(50, 2 ** attempt));
      }
      // Heavy contention: stop retrying and take the row lock, which always makes progress.
    }
    let mergedText = '';
    const written = await table.updateLocked(
      key,
      now,
      (row) => {
        const merged = this.#merged(row.text, delta, limit);
        mergedText = merged.text;
        return merged;
      },
      expiresAt,
    );
    return written ? { baseText: mergedText, version: null } : null;
  }

  async #touch(table: SessionTable, key: string, expiresAt: number, now: number, state?: LoadedState): Promise<LoadedState | undefined> {
    const { touchAfterMs } = this.options;
    // What the request loaded tells the stored expiry: no statement at all when it would barely move.
    if (state !== undefined && expiresAt - state.expiresAt <= touchAfterMs) return state;
    await table.extendExpiry(key, expiresAt, expiresAt - touchAfterMs, now);
    return state === undefined ? undefined : { ...state, expiresAt };
  }

  /**
   * Keeps a session alive: moves its stored expiry, but only when it would
   * move by more than `touchAfter`. Never creates a session.
   */
  async touch(sid: string, session: object, state?: LoadedState): Promise<LoadedState | undefined> {
    const key = this.#key(sid);
    const now = Date.now();
    const expiresAt = expiryOf(session, this.options.ttlSeconds, now);
    return this.#call('touching the session', ({ table }) => this.#touch(table, key, expiresAt, now, state));
  }

  /** Deletes a session. Concurrent saves of it will not bring it back. */
  async destroy(sid: string): Promise<void> {
    const key = this.#key(sid);
    return this.#call('destroying the session', ({ table }) => table.destroy(key));
  }

  #assertUserIdColumn(): void {
    if (this.options.userIdPath === undefined) {
      throw new SessionStoreError('ERR_INVALID_OPTION', 'option "userIdKey" must be set to find sessions by user');
    }
  }

  /**
   * Logs a user out everywhere: deletes every session whose `userIdKey` holds
   * `userId`. Concurrent saves of those sessions will not bring them back.
   * Resolves to the number of sessions deleted.
   */
  async destroyByUser(userId: string | number): Promise<number> {
    this.#assertUserIdColumn();
    return this.#call("destroying the user's sessions", ({ table }) => table.destroyByUser(String(userId)));
  }

  /** The live sessions of a user (rows that cannot be read as a session are skipped). */
  async listByUser(userId: string | number): Promise<UserSession[]> {
    this.#assertUserIdColumn();
    return this.#call("listing the user's sessions", async ({ table }) => {
      const sessions: UserSession[] = [];
      for (const row of await table.listByUser(String(userId), Date.now())) {
        try {
          sessions.push({ session: parseStoredSession(row.text), expiresAt: new Date(row.expiresAt) });
        } catch {
          // A corrupt row must not hide the user's other sessions.
        }
      }
      return sessions;
    });
  }

  /** Every live session. Rows that cannot be read as a session are skipped. */
  async all(): Promise<JsonObject[]> {
    return this.#call('listing sessions', async ({ table }) => {
      const sessions: JsonObject[] = [];
      for (const text of await table.all(Date.now())) {
        try {
          sessions.push(parseStoredSession(text));
        } catch {
          // A corrupt row must not hide every other session.
        }
      }
      return sessions;
    });
  }

  /** Number of live sessions. */
  async length(): Promise<number> {
    return this.#call('counting sessions', ({ table }) => table.count(Date.now()));
  }

  /** Deletes every session. */
  async clear(): Promise<void> {
    return this.#call('clearing sessions', ({ table }) => table.clear());
  }

  /**
   * Removes expired sessions in batches of `batchSize` rows, yielding to other
   * work between batches. Single-flight: within a process concurrent calls
   * share one run, and across processes a database lock lets one purge at a
   * time (the others resolve to 0). Resolves to the number removed.
   */
  purge(options: PurgeOptions = {}): Promise<number> {
    if (this.#purging !== undefined) return this.#purging;
    const batchSize = options.batchSize ?? this.options.autopurge?.batchSize ?? 1000;
    if (!Number.isInteger(batchSize) || batchSize <= 0) {
      return Promise.reject(new SessionStoreError('ERR_INVALID_OPTION', `option "batchSize" must be a positive integer, got ${JSON.stringify(batchSize)}`));
    }
    const running = this.#call('purging expired sessions', async ({ table }) => (await table.purge(Date.now(), batchSize, options.onProgress)) ?? 0);
    this.#purging = running.finally(() => {
      this.#purging = undefined;
    });
    return this.#purging;
  }

  /** How many live and expired sessions the table holds. */
  async stats(): Promise<SessionStats> {
    return this.#call('counting sessions', ({ table }) => table.stats(Date.now()));
  }

  /** Closes the connections the store opened. Calls after this fail with `ERR_STORE_CLOSED`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#autopurgeTimer);
    if (this.#unavailable !== undefined) clearInterval(this.#unavailable.probe);
    this.#unavailable = undefined;
    await this.#purging?.catch(() => undefined);
    const opened = this.#table;
    this.#table = undefined;
    this.#prepared = undefined;
    this.#preparedTable = undefined;
    if (opened === undefined) return;
    try {
      await (await opened).close();
    } catch (error) {
      throw toStoreError(error, 'closing the store');
    }
  }
}
