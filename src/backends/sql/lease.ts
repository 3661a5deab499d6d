/**
 * A purge lock kept as a lease row in a small table beside the sessions
 * (`smart_session_store_locks`): where a database has no lock that every
 * node or process sees (SQLite has no named locks; MySQL's GET_LOCK belongs
 * to one connection on one server, so each node of a Galera cluster grants it
 * on its own), a row does: two processes inserting the same name collide on
 * the primary key, on a cluster at certification, and one of them loses.
 *
 * The lease lapses by itself after {@link LEASE_MS} unless renewed, so a
 * process that crashed while purging holds nothing for long.
 */
import { retryingConflicts } from './purge.js';
import type { LockedBatch, PurgeLock, PurgeTarget, SqlDriver } from './sql-dialect.js';
import { compile, raw, sql, type Placeholders, type Sql } from './statement.js';

/** The lock table's name, in the sessions table's schema. */
export const LOCK_TABLE = 'smart_session_store_locks';
/** How long a lease lasts unless renewed: a lease left by a crashed process lapses by itself. */
export const LEASE_MS = 60_000;

/** What differs between databases in the lease's statements. */
export interface LeaseDialect extends Placeholders {
  /** Quotes an identifier that was validated already. */
  quote(identifier: string): string;
  /** `CREATE TABLE IF NOT EXISTS <qualified> (name ... PRIMARY KEY, holder ..., until <integer>)`, columns quoted by {@link quote}. */
  createLockTable(qualified: string): string;
  /** The start of an INSERT that skips a row whose key is taken: `INSERT OR IGNORE INTO`, `INSERT IGNORE INTO`. */
  readonly insertIgnore: string;
  /** True when `error` says a table does not exist. */
  isMissingTable(error: unknown): boolean;
}

/** Lock tables known to exist, per driver (a schema may hold one): CREATE TABLE runs once per process, not per purge. */
const created = new WeakMap<SqlDriver, Set<string>>();

/** Who holds a lease: this process, and this purge within it. */
function newHolder(): string {
  return `${process.pid}:${Math.random().toString(36).slice(2, 12)}`;
}

/** A purge lock kept as a lease row. */
export function leaseLock(dialect: LeaseDialect): PurgeLock {
  const q = dialect.quote;
  const name = raw(q('name'));
  const holder = raw(q('holder'));
  const until = raw(q('until'));
  const run = async (driver: SqlDriver, statement: Sql): Promise<number> => {
    const compiled = compile(statement, dialect);
    return driver.execute(compiled.text, compiled.bind());
  };

  /** Creates the lock table once per driver; on a cluster, DDL stalls every node while it runs. */
  async function ensureTable(driver: SqlDriver, qualified: string, again: boolean): Promise<void> {
    let known = created.get(driver);
    if (known === undefined) created.set(driver, (known = new Set()));
    if (known.has(qualified) && !again) return;
    await driver.execute(dialect.createLockTable(qualified), []);
    known.add(qualified);
  }

  /** Takes the lease when it is free or lapsed; `false` when another holder has it. */
  function acquire(driver: SqlDriver, locks: Sql, lockName: string, me: string): Promise<boolean> {
    return retryingConflicts(driver, () =>
      driver.transaction(async (transaction) => {
        const now = Date.now();
        const lapsed = compile(sql`DELETE FROM ${locks} WHERE ${name} = ${lockName} AND ${until} < ${now}`, dialect);
        await transaction.execute(lapsed.text, lapsed.bind());
        const insert = compile(
          sql`${raw(dialect.insertIgnore)} ${locks} (${name}, ${holder}, ${until}) VALUES (${lockName}, ${me}, ${now + LEASE_MS})`,
          dialect,
        );
        return (await transaction.execute(insert.text, insert.bind())) === 1;
      }),
    );
  }

  return {
    async run(driver: SqlDriver, target: PurgeTarget, purge: (batch: LockedBatch) => Promise<number>): Promise<number | null> {
      const schema = target.tableName.schema;
      const qualified = `${schema === undefined ? '' : `${q(schema)}.`}${q(LOCK_TABLE)}`;
      const locks = raw(qualified);
      const me = newHolder();
      await ensureTable(driver, qualified, false);
      let acquired: boolean;
      try {
        acquired = await acquire(driver, locks, target.lockName, me);
      } catch (error) {
        if (!dialect.isMissingTable(error)) throw error;
        // The lock table was dropped after this process created it: create it again.
        await ensureTable(driver, qualified, true);
        acquired = await acquire(driver, locks, target.lockName, me);
      }
      if (!acquired) return null;
      let renewed = Date.now();
      try {
        return await purge(async (work) => {
          // A write of its own (on SQLite a sync to disk, on a cluster a replication): only once half the lease has gone by.
          if (Date.now() - renewed >= LEASE_MS / 2) {
            const now = Date.now();
            const kept = await run(driver, sql`UPDATE ${locks} SET ${until} = ${now + LEASE_MS} WHERE ${name} = ${target.lockName} AND ${holder} = ${me}`);
            // The lease lapsed (this process stalled for longer than it lasts) and another process took it: it purges now.
            if (kept === 0) return null;
            renewed = now;
          }
          return work(driver);
        });
      } finally {
        // A lease that cannot be given back (the database went away) lapses by itself: the purge's result stands.
        await retryingConflicts(driver, () => run(driver, sql`DELETE FROM ${locks} WHERE ${name} = ${target.lockName} AND ${holder} = ${me}`)).catch(
          () => undefined,
        );
      }
    },
  };
}
