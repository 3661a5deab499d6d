/**
 * The session operations on a SQL table whose shape is known: the same
 * statements on every SQL database, with the dialect's pieces (quoting,
 * placeholders, the data column, the upsert clause) put in. Statements that
 * never change are compiled once, here; the others are built per call with
 * their values, by the same template.
 */
import type {
  DeltaWrite,
  DocumentWrite,
  ExpiryMove,
  KeyMove,
  LockedMerge,
  PurgeRun,
  ReadyBackend,
  SavedDelta,
  SessionCounts,
  StorageCapacity,
  StorageReport,
  StoredData,
  StoredSession,
  StoredUserSession,
  UserIdWrite,
  VersionedWrite,
} from '../../core/backend.js';
import { sessionOfStored } from '../../core/backend.js';
import { applyDelta } from '../../core/delta.js';
import { changeEntry, changesMarker, shouldFold, storedSession } from './pending-changes.js';
import type { LockingMode } from '../../core/options.js';
import type { TableName } from '../connection-settings.js';
import { DEFAULT_PURGE_PACING, deleteInBatches, expiredRowBatches, purgeLockName } from './purge.js';
import type { ChangesPadding, DataColumn, PurgeTarget, Row, SqlDialect, SqlDriver, SqlRunner } from './sql-dialect.js';
import { compile, EMPTY, join, named, raw, shared, Slot, slot, sql, type CompiledSql, type NamedSql, type Sql } from './statement.js';
import { expiryFromDatabase, expiryToDatabase, isTimestampUnit, type ExpiryColumn, type ExpiryUnit, type TableInfo } from './table-shape.js';

/** A sessions table and everything known about it. */
export interface SqlTableSetup {
  readonly dialect: SqlDialect;
  readonly driver: SqlDriver;
  readonly table: TableName;
  readonly info: TableInfo;
  readonly expiry: ExpiryColumn;
  readonly locking: LockingMode;
  /** Loads read `created_at` (`absoluteTimeout`; the table was checked to have it). */
  readonly readCreatedAt?: boolean | undefined;
}

/**
 * What a request knows of a session's pending changes (the backend's token
 * in the request's state): their text as it loaded or last appended them,
 * which the session it holds has applied, and how long the stored document
 * is that they apply to.
 */
interface PendingNote {
  readonly changes: string | undefined;
  readonly documentLength: number;
}

/** A delta saved where nothing is noted for the next save. */
const SAVED: SavedDelta = {};

/** A statement of the fixed set run with its named values, under its name (which the driver may use or not). */
function run(runner: SqlRunner, statement: NamedSql, values?: Readonly<Record<string, unknown>>): Promise<Row[]> {
  return runner.query(statement.text, statement.bind(values), statement.name);
}

function execute(runner: SqlRunner, statement: NamedSql, values?: Readonly<Record<string, unknown>>): Promise<number> {
  return runner.execute(statement.text, statement.bind(values), statement.name);
}

/** The session operations on one inspected table. */
export class SqlTable implements ReadyBackend {
  readonly locking: LockingMode;
  readonly capacity: StorageCapacity | undefined;
  readonly #dialect: SqlDialect;
  readonly #driver: SqlDriver;
  readonly #data: DataColumn;
  readonly #unit: ExpiryUnit;
  readonly #table: Sql;
  readonly #expires: Sql;
  /** An instant's parameter (epoch ms, as {@link #at} gives it) as the expiry column's type. */
  readonly #instant: (value: unknown) => Sql;
  /** The expiry column's name, unquoted. */
  readonly #expiryName: string;
  readonly #hasVersion: boolean;
  /** The table has a `changes` column: atomic saves append their deltas to it (`core/pending-changes.ts`). */
  readonly #hasChanges: boolean;
  /** `, changes = NULL` for a write of the whole document, where the table keeps pending changes. */
  readonly #clearChanges: Sql;
  /** `, updated_at = <now>` where the table has that column and it does not keep itself current. */
  readonly #touchUpdatedAt: Sql;
  readonly #lockName: string;
  readonly #tableName: TableName;
  readonly #hasUserId: boolean;
  /** The table has a `client` column (`recordClient`). */
  readonly #hasClient: boolean;
  /** The quoted column the table keeps its rows in order of, where a purge can walk it. */
  readonly #storageOrder: Sql | undefined;
  readonly #statements: {
    readonly load: NamedSql;
    readonly lockRow: NamedSql;
    readonly extendExpiry: NamedSql;
    readonly destroy: NamedSql;
    readonly destroyByUser: NamedSql;
    readonly destroyByUserExcept: NamedSql;
    readonly destroyOfUser: NamedSql;
    readonly rename: NamedSql;
    readonly listByUser: NamedSql;
    readonly all: NamedSql;
    readonly count: NamedSql;
    readonly clear: NamedSql;
    readonly stats: NamedSql;
    /** Appends a delta to the pending changes; with the user-id column set, or left as it is; padded where the dialect pads them. */
    readonly append: NamedSql;
    readonly appendWithUser: NamedSql;
    readonly appendPadded: NamedSql;
    readonly appendPaddedWithUser: NamedSql;
  };
  /**
   * Statements of the fixed set whose shape depends on the call (a user id
   * or a client written or not): the whole write of a session, the
   * compare-and-swap. At most six, each compiled and named the first time
   * it is needed.
   */
  readonly #variants = new Map<string, NamedSql>();
  /** How the dialect pads pending changes, if it does. */
  readonly #padding: ChangesPadding | undefined;
  /** The stored pending changes, without their padding. */
  readonly #storedChanges: Sql;

  constructor({ dialect, driver, table, info, expiry, locking, readCreatedAt = false }: SqlTableSetup) {
    this.locking = locking;
    this.capacity = info.dataCapacity;
    this.#dialect = dialect;
    this.#driver = driver;
    this.#data = dialect.dataColumn(info);
    this.#unit = expiry.unit;
    this.#expiryName = expiry.name;
    this.#hasVersion = info.hasLockVersion;
    this.#hasChanges = info.hasChanges === true;
    this.#clearChanges = this.#hasChanges ? raw(', changes = NULL') : EMPTY;
    this.#padding = dialect.changesPadding;
    const storedChanges = (this.#storedChanges = this.#padding?.unpadded ?? raw('changes'));
    this.#lockName = purgeLockName(table);
    this.#storageOrder = info.storageOrder === undefined ? undefined : raw(info.storageOrder);
    this.#tableName = table;
    this.#hasUserId = info.columns.has('user_id');
    this.#hasClient = info.columns.has('client');
    const t = (this.#table = raw(table.schema === undefined ? dialect.quote(table.name) : `${dialect.quote(table.schema)}.${dialect.quote(table.name)}`));
    const expires = (this.#expires = raw(dialect.quote(expiry.name)));
    // Instants cross the wire as epoch-ms numbers both ways; a timestamp column converts them in SQL.
    const stamp = isTimestampUnit(expiry.unit) ? dialect.timestampExpiry : undefined;
    if (isTimestampUnit(expiry.unit) && stamp === undefined) throw new Error(`this database has no timestamp expiry column (${expiry.name})`);
    const zoned = expiry.unit === 'timestamptz';
    const at = (this.#instant = stamp === undefined ? (value) => sql`${value}` : (value) => stamp.fromMs(sql`${value}`, zoned));
    const expiresRead = stamp === undefined ? expires : stamp.toMs(expires, zoned);
    this.#touchUpdatedAt = info.columns.has('updated_at') && dialect.updatedAtNow !== undefined ? raw(`, updated_at = ${dialect.updatedAtNow}`) : EMPTY;
    // No lock_version column: none is read (a column fewer for the driver to describe on every load).
    const dataColumns = sql`${this.#data.read} AS data${raw(this.#hasChanges ? ', changes' : '')}`;
    // created_at and updated_at as epoch ms, where the table has them in a type the dialect reads.
    const instant = (name: string): Sql | undefined => {
      const type = info.columnTypes?.get(name);
      return type === undefined ? undefined : dialect.instantMs(raw(dialect.quote(name)), type);
    };
    const createdRead = instant('created_at');
    const seenRead = instant('updated_at');
    const created = readCreatedAt && createdRead !== undefined ? sql`, ${createdRead} AS created_ms` : EMPTY;
    const sessionColumns = sql`${dataColumns}, ${expiresRead} AS expires_at${raw(info.hasLockVersion ? ', lock_version' : '')}`;
    const columns = sql`${sessionColumns}${created}`;
    // What a list of a user's sessions says of each besides its data: when it was created and last seen, its client.
    const lifeColumns = join(
      [sql`${createdRead ?? raw('NULL')} AS created_ms`, sql`${seenRead ?? raw('NULL')} AS seen_ms`, this.#hasClient ? raw('client') : raw('NULL AS client')],
      ', ',
    );
    const live = sql`${expires} > ${at(slot('now'))}`;
    // The fixed set: compiled, and named from its text, once per table.
    const compiled = (fragment: Sql): NamedSql => named(compile(fragment, dialect));
    // One fixed statement for every delta: the database appends a few bytes and never parses the session.
    const bump = raw(info.hasLockVersion ? ', lock_version = lock_version + 1' : '');
    const appended = dialect.concat(sql`COALESCE(${storedChanges}, ${slot('marker')})`, sql`${slot('entry')}`);
    const append = (setUser: Sql, padded: boolean): NamedSql =>
      compiled(
        sql`UPDATE ${t} SET changes = ${padded && this.#padding !== undefined ? this.#padding.pad(appended, sql`${slot('padUnit')}`) : appended}, ${expires} = ${at(slot('expiresAt'))}${this.#touchUpdatedAt}${setUser}${bump}
          WHERE id = ${slot('key')} AND ${live}`,
      );
    this.#statements = {
      load: compiled(sql`SELECT ${columns} FROM ${t} WHERE id = ${slot('key')} AND ${live}`),
      lockRow: compiled(sql`SELECT ${columns} FROM ${t} WHERE id = ${slot('key')} AND ${live}${raw(dialect.lockRowClause)}`),
      extendExpiry: compiled(
        sql`UPDATE ${t} SET ${expires} = ${at(slot('expiresAt'))}${this.#touchUpdatedAt} WHERE id = ${slot('key')} AND ${live} AND ${expires} < ${at(slot('movedBefore'))}`,
      ),
      destroy: compiled(sql`DELETE FROM ${t} WHERE id = ${slot('key')}`),
      destroyByUser: compiled(sql`DELETE FROM ${t} WHERE user_id = ${slot('userId')}`),
      destroyByUserExcept: compiled(sql`DELETE FROM ${t} WHERE user_id = ${slot('userId')} AND id <> ${slot('key')}`),
      destroyOfUser: compiled(sql`DELETE FROM ${t} WHERE id = ${slot('key')} AND user_id = ${slot('userId')}`),
      // One statement: a save of the old id waiting for the row finds it under another id once this commits.
      rename: compiled(sql`UPDATE ${t} SET id = ${slot('toKey')} WHERE id = ${slot('fromKey')} AND ${live}`),
      listByUser: compiled(sql`SELECT id, ${sessionColumns}, ${lifeColumns} FROM ${t} WHERE user_id = ${slot('userId')} AND ${live}`),
      all: compiled(sql`SELECT ${dataColumns} FROM ${t} WHERE ${live}`),
      count: compiled(sql`SELECT COUNT(*) AS n FROM ${t} WHERE ${live}`),
      clear: compiled(sql`DELETE FROM ${t}`),
      stats: compiled(sql`SELECT COUNT(*) AS total, COALESCE(SUM(CASE WHEN ${live} THEN 1 ELSE 0 END), 0) AS live FROM ${t}`),
      append: append(EMPTY, false),
      appendWithUser: append(sql`, user_id = ${slot('userId')}`, false),
      appendPadded: append(EMPTY, true),
      appendPaddedWithUser: append(sql`, user_id = ${slot('userId')}`, true),
    };
  }

  /** An epoch-ms instant as the expiry column's parameter. */
  #at(ms: number): number {
    return expiryToDatabase(ms, this.#unit);
  }

  #row(row: Row): StoredSession {
    const version = row['lock_version'];
    const data = this.#stored(row);
    const expiresAt = expiryFromDatabase(row['expires_at'], this.#unit);
    const created = row['created_ms'];
    return {
      ...data,
      expiresAt,
      version: version === null || version === undefined ? null : Number(version),
      ...(created === undefined || created === null ? {} : { createdAt: Math.round(Number(created)) }),
    };
  }

  /**
   * A row's data: its text, and where the table keeps pending changes, how
   * to apply them and what a request must know of them for its next append.
   */
  #stored(row: Row): StoredData & { readonly token?: PendingNote } {
    const text = this.#data.text(row['data']);
    if (!this.#hasChanges) return { text };
    const changes = this.#changesOf(row);
    const documentLength = text?.length ?? 0;
    if (changes === null) return { text, token: { changes: undefined, documentLength } };
    return {
      text,
      // Applying a change never makes the document longer than the change's own text.
      decodedLength: documentLength + changes.length,
      decode: (parse) => storedSession(text, changes, parse),
      token: { changes, documentLength },
    };
  }

  #compile(fragment: Sql): CompiledSql {
    return compile(fragment, this.#dialect);
  }

  /** The variant `key` of a statement of the fixed set, built, compiled and named the first time. */
  #variant(key: string, build: () => Sql): NamedSql {
    let statement = this.#variants.get(key);
    if (statement === undefined) this.#variants.set(key, (statement = named(this.#compile(build()))));
    return statement;
  }

  /**
   * `data = ..., <expiry> = ..., updated_at, user_id, lock_version` for an
   * UPDATE; the expiry (epoch ms) and the user id are values, or slots of a
   * statement compiled once.
   */
  #assignments(data: Sql, expiresAt: number | Slot, userId: UserIdWrite | Slot, bumpVersion: boolean): Sql {
    const setUser = userId === undefined ? EMPTY : sql`, user_id = ${userId}`;
    const bump = bumpVersion ? raw(', lock_version = lock_version + 1') : EMPTY;
    const expiry = this.#instant(expiresAt instanceof Slot ? expiresAt : this.#at(expiresAt));
    return sql`data = ${data}, ${this.#expires} = ${expiry}${this.#touchUpdatedAt}${setUser}${bump}${this.#clearChanges}`;
  }

  /** The pending changes of a row, without padding; `null` when there are none. */
  #changesOf(row: Row): string | null {
    const changes = row['changes'];
    if (changes === null || changes === undefined) return null;
    const text = Buffer.isBuffer(changes) ? changes.toString('utf8') : String(changes);
    // A request's text of the changes is compared with the stored one's start by a fold: never with the padding.
    // (Their JSON ends in `}` or the marker, never in whitespace: trimming takes the padding only.)
    return this.#padding === undefined ? text : text.trimEnd();
  }

  async load(key: string, now: number): Promise<StoredSession | null> {
    const row = (await run(this.#driver, this.#statements.load, { key, now: this.#at(now) }))[0];
    return row === undefined ? null : this.#row(row);
  }

  async upsert({ key, expiresAt, text, userId, client }: DocumentWrite): Promise<void> {
    const withUser = userId !== undefined;
    const withClient = client !== undefined && this.#hasClient;
    const statement = this.#variant(`upsert${withUser ? ' user' : ''}${withClient ? ' client' : ''}`, () => {
      const dialect = this.#dialect;
      const inserted: [string, Sql][] = [
        ['id', sql`${slot('key')}`],
        ['data', this.#data.write(slot('text'))],
        [this.#expiryName, this.#instant(slot('expiresAt'))],
      ];
      if (withUser) inserted.push(['user_id', sql`${slot('userId')}`]);
      if (withClient) inserted.push(['client', sql`${slot('client')}`]);
      const names = raw(inserted.map(([name]) => dialect.quote(name)).join(', '));
      const updated = inserted.slice(1).map(([name]) => name);
      const bump = this.#hasVersion ? raw(`, lock_version = ${dialect.existing('lock_version')} + 1`) : EMPTY;
      return sql`INSERT INTO ${this.#table}${raw(dialect.insertAlias)} (${names}) VALUES (${join(inserted.map(([, value]) => value))})
      ${raw(dialect.upsertClause(updated))}${this.#touchUpdatedAt}${bump}${this.#clearChanges}`;
    });
    await execute(this.#driver, statement, { key, text, expiresAt: this.#at(expiresAt), userId, client });
  }

  async insertIfAbsent({ key, now, expiresAt, text, userId }: DocumentWrite): Promise<boolean> {
    // An expired row counts as absent: deleted first if it is still expired, then the insert writes only where
    // no row has the id (another copy, or a request's save, that came in between is kept).
    const cleared = this.#compile(sql`DELETE FROM ${this.#table} WHERE id = ${key} AND ${this.#expires} <= ${this.#instant(this.#at(now))}`);
    await this.#driver.execute(cleared.text, cleared.bind());
    const inserted: [string, Sql][] = [
      ['id', sql`${key}`],
      ['data', this.#data.write(text)],
      [this.#expiryName, this.#instant(this.#at(expiresAt))],
    ];
    if (userId !== undefined) inserted.push(['user_id', sql`${userId}`]);
    const names = raw(inserted.map(([name]) => this.#dialect.quote(name)).join(', '));
    const { verb, clause } = this.#dialect.insertUnlessTaken;
    const statement = this.#compile(sql`${raw(verb)} ${this.#table} (${names}) VALUES (${join(inserted.map(([, value]) => value))}) ${raw(clause)}`);
    return (await this.#driver.execute(statement.text, statement.bind())) > 0;
  }

  async applyDelta(write: DeltaWrite): Promise<SavedDelta | null> {
    if (this.#hasChanges) return this.#appendDelta(write);
    const { key, now, expiresAt, delta, userId } = write;
    const merged = this.#data.merge(delta);
    if (merged === null) {
      // This delta cannot be written as one expression here: the same result, reached under the row lock.
      const written = await this.updateLocked({
        key,
        now,
        expiresAt,
        merge: (row) => ({ text: JSON.stringify(applyDelta(sessionOfStored(row), delta)), userId }),
      });
      return written ? SAVED : null;
    }
    const statement = this.#compile(
      sql`UPDATE ${this.#table} SET ${this.#assignments(merged, expiresAt, userId, this.#hasVersion)} WHERE id = ${key} AND ${this.#expires} > ${this.#instant(this.#at(now))}`,
    );
    return (await this.#driver.execute(statement.text, statement.bind())) > 0 ? SAVED : null;
  }

  /**
   * Appends the delta to the pending changes, in one statement whose text
   * never changes. A save that finds many pending changes also writes the
   * document they make (the session the request saved on), so that loads
   * stay cheap: in the same statement, keeping only the changes appended
   * since, and only if the stored changes still start with those the
   * request has (see `./pending-changes.ts`: no whole write came in between).
   */
  async #appendDelta({ key, now, expiresAt, userId, encoded, token, base, baseLength }: DeltaWrite): Promise<SavedDelta | null> {
    const note = token as PendingNote | undefined;
    const changes = note?.changes;
    const documentLength = note?.documentLength ?? baseLength;
    const entry = changeEntry(encoded);
    const marker = changesMarker();
    const padding = this.#padding;
    if (changes === undefined || base === undefined || !shouldFold(changes.length, documentLength)) {
      const padUnit = padding?.unitFor(documentLength) ?? 0;
      const statements = this.#statements;
      const statement =
        padUnit > 0
          ? userId === undefined
            ? statements.appendPadded
            : statements.appendPaddedWithUser
          : userId === undefined
            ? statements.append
            : statements.appendWithUser;
      const written = await execute(this.#driver, statement, { key, now: this.#at(now), expiresAt: this.#at(expiresAt), marker, entry, userId, padUnit });
      // What the stored changes now are, unless another request appended too (then a later fold is refused).
      return written > 0 ? { token: { changes: (changes ?? marker) + entry, documentLength } satisfies PendingNote } : null;
    }
    const foldedText = JSON.stringify(base);
    const dialect = this.#dialect;
    const stored = this.#storedChanges;
    const loaded = shared(changes);
    const newMarker = shared(marker);
    const unchanged = sql`substr(changes, 1, ${dialect.charLength(sql`${loaded}`)}) = ${loaded}`;
    const since = sql`substr(${stored}, ${dialect.charLength(sql`${loaded}`)} + 1)`;
    const setUser = userId === undefined ? EMPTY : sql`, user_id = ${userId}`;
    const bump = raw(this.#hasVersion ? ', lock_version = lock_version + 1' : '');
    const appended = dialect.concat(
      sql`CASE WHEN ${unchanged} THEN ${dialect.concat(sql`${newMarker}`, since)} ELSE COALESCE(${stored}, ${newMarker}) END`,
      sql`${entry}`,
    );
    const padUnit = padding?.unitFor(foldedText.length) ?? 0;
    // Assigned in this order: MySQL's later assignments see the earlier ones' new values, and `changes` is read by both.
    const statement = this.#compile(
      sql`UPDATE ${this.#table} SET data = CASE WHEN ${unchanged} THEN ${this.#data.write(foldedText)} ELSE data END,
        changes = ${padding !== undefined && padUnit > 0 ? padding.pad(appended, sql`${padUnit}`) : appended},
        ${this.#expires} = ${this.#instant(this.#at(expiresAt))}${this.#touchUpdatedAt}${setUser}${bump}
        WHERE id = ${key} AND ${this.#expires} > ${this.#instant(this.#at(now))}`,
    );
    const written = await this.#driver.execute(statement.text, statement.bind());
    // (The database folds only if the stored changes still start with those the request had: else it only appends.)
    return written > 0 ? { token: { changes: marker + entry, documentLength: foldedText.length } satisfies PendingNote, folded: true } : null;
  }

  async compareAndSwap({ key, now, expiresAt, text, version, userId }: VersionedWrite): Promise<boolean> {
    const statement = this.#variant(
      userId === undefined ? 'swap' : 'swap user',
      () =>
        sql`UPDATE ${this.#table} SET ${this.#assignments(this.#data.write(slot('text')), slot('expiresAt'), userId === undefined ? undefined : slot('userId'), true)}
        WHERE id = ${slot('key')} AND lock_version = ${slot('version')} AND ${this.#expires} > ${this.#instant(slot('now'))}`,
    );
    return (await execute(this.#driver, statement, { key, now: this.#at(now), expiresAt: this.#at(expiresAt), text, version, userId })) > 0;
  }

  async updateLocked({ key, now, expiresAt, merge }: LockedMerge): Promise<boolean> {
    return this.#driver.transaction(async (transaction) => {
      const row = (await run(transaction, this.#statements.lockRow, { key, now: this.#at(now) }))[0];
      if (row === undefined) return false;
      const write = merge(this.#row(row));
      const statement = this.#compile(
        sql`UPDATE ${this.#table} SET ${this.#assignments(this.#data.write(write.text), expiresAt, write.userId, this.#hasVersion)} WHERE id = ${key}`,
      );
      await transaction.execute(statement.text, statement.bind());
      return true;
    });
  }

  async extendExpiry({ key, now, expiresAt, movedBefore }: ExpiryMove): Promise<void> {
    await execute(this.#driver, this.#statements.extendExpiry, { key, now: this.#at(now), expiresAt: this.#at(expiresAt), movedBefore: this.#at(movedBefore) });
  }

  async destroy(key: string): Promise<void> {
    await execute(this.#driver, this.#statements.destroy, { key });
  }

  destroyByUser(userId: string, exceptKey?: string): Promise<number> {
    return exceptKey === undefined
      ? execute(this.#driver, this.#statements.destroyByUser, { userId })
      : execute(this.#driver, this.#statements.destroyByUserExcept, { userId, key: exceptKey });
  }

  async rename({ fromKey, toKey, now }: KeyMove): Promise<boolean> {
    return (await execute(this.#driver, this.#statements.rename, { fromKey, toKey, now: this.#at(now) })) > 0;
  }

  async destroyOfUser(key: string, userId: string): Promise<boolean> {
    return (await execute(this.#driver, this.#statements.destroyOfUser, { key, userId })) > 0;
  }

  async listByUser(userId: string, now: number): Promise<StoredUserSession[]> {
    return (await run(this.#driver, this.#statements.listByUser, { userId, now: this.#at(now) })).map((row) => {
      const seen = row['seen_ms'];
      const client = row['client'];
      return {
        ...this.#row(row),
        key: String(row['id']),
        lastSeenAt: seen === null || seen === undefined ? undefined : Math.round(Number(seen)),
        client: client === null || client === undefined ? undefined : Buffer.isBuffer(client) ? client.toString('utf8') : String(client),
      };
    });
  }

  async all(now: number): Promise<StoredData[]> {
    return (await run(this.#driver, this.#statements.all, { now: this.#at(now) })).map((row) => this.#stored(row));
  }

  async count(now: number): Promise<number> {
    return Number((await run(this.#driver, this.#statements.count, { now: this.#at(now) }))[0]?.['n'] ?? 0);
  }

  async clear(): Promise<void> {
    await execute(this.#driver, this.#statements.clear);
  }

  async stats(now: number): Promise<SessionCounts> {
    const row = (await run(this.#driver, this.#statements.stats, { now: this.#at(now) }))[0];
    const total = Number(row?.['total'] ?? 0);
    const live = Number(row?.['live'] ?? 0);
    return { live, expired: total - live };
  }

  async report(now: number, topUsers: number): Promise<StorageReport> {
    const size = await this.#dialect.tableSize?.(this.#driver, this.#tableName);
    let pendingChanges: StorageReport['pendingChanges'];
    if (this.#hasChanges) {
      const statement = this.#compile(
        sql`SELECT COUNT(*) AS sessions, COALESCE(SUM(${this.#dialect.charLength(this.#storedChanges)}), 0) AS length FROM ${this.#table} WHERE changes IS NOT NULL`,
      );
      const row = (await this.#driver.query(statement.text, statement.bind()))[0];
      pendingChanges = { sessions: Number(row?.['sessions'] ?? 0), length: Number(row?.['length'] ?? 0) };
    }
    let users: StorageReport['topUsers'];
    if (this.#hasUserId && topUsers > 0) {
      const statement = this.#compile(
        sql`SELECT user_id, COUNT(*) AS sessions FROM ${this.#table} WHERE user_id IS NOT NULL AND ${this.#expires} > ${this.#instant(this.#at(now))}
          GROUP BY user_id ORDER BY sessions DESC, user_id LIMIT ${raw(String(Math.trunc(topUsers)))}`,
      );
      users = (await this.#driver.query(statement.text, statement.bind())).map((row) => ({
        userId: String(row['user_id']),
        sessions: Number(row['sessions']),
      }));
    }
    return { dataBytes: size?.dataBytes, indexBytes: size?.indexBytes, pendingChanges, topUsers: users };
  }

  async purge({ now, batchSize, onProgress }: PurgeRun): Promise<number | null> {
    const dialect = this.#dialect;
    const driver = this.#driver;
    const target: PurgeTarget = {
      tableName: this.#tableName,
      table: this.#table,
      expires: this.#expires,
      cutoff: this.#instant(shared(this.#at(now))),
      lockName: this.#lockName,
      storageOrder: this.#storageOrder,
    };
    return dialect.purgeLock.run(driver, target, (batch) =>
      deleteInBatches(driver, batch, expiredRowBatches(dialect, target), { batchSize, onProgress, pacing: dialect.purgePacing ?? DEFAULT_PURGE_PACING }),
    );
  }
}
