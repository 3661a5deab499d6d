/**
 * The options only SQLite reads, declared beside its driver through the same
 * tables as the shared ones. The composition root gathers them with every
 * other backend's; nothing outside this folder names them.
 */
import { parseBoolean, rule, type OptionTable, type ResolvedTable } from '../../core/option-table.js';
import type { BackendOptionSet } from '../backend-descriptor.js';

/** Options of SQLite alone. */
export interface SqliteOptions {
  /**
   * SQLite in WAL mode: copy the write-ahead log back into the database file
   * from a second connection in a worker thread, in small passes, instead of
   * letting a commit do it on the event loop every 1000 pages (4 MiB with
   * 4 KiB pages), where it holds every request up for milliseconds and a
   * purge's batches for up to hundreds. Once the log reaches 16 MiB the
   * store's connection finishes a checkpoint itself (a few pages, a few
   * milliseconds), so the log starts over; the WAL file therefore grows to
   * about 16-20 MiB (SQLite does not shrink it). While the worker runs, the
   * connection's `wal_autocheckpoint` is raised to 64 MiB of pages, a bound
   * should the worker fall behind, and put back when the store closes
   * (also on a `better-sqlite3` Database handed over). No worker for a
   * database in memory, a temporary or read-only one, one in another
   * journal mode, a connection with other databases attached, or a
   * better-sqlite3 whose module cannot be found (a bundle); should the
   * worker stop on an error, a process warning says so and SQLite
   * checkpoints as it would without.
   *
   * On by default when the store opens the file itself (a `sqlite:` URL, or
   * `dialect: 'sqlite'` with `database`); off for a Database handed over as
   * `connection`, whose settings the store leaves alone unless asked. The
   * cost: a thread with its own connection, and passes that sync the log and
   * the database file (under steady writes over a hundred syncs a second,
   * where SQLite alone syncs once per 1000 pages).
   *
   * Never open the same file through another copy of SQLite in the same
   * process (a second better-sqlite3, `node:sqlite`): each copy takes the
   * other's locks for its own, and with the worker reading the shared memory
   * all the time the process can crash (SIGBUS) or the file be damaged;
   * SQLite warns about this setup with or without the worker.
   * @default true on a file the store opens, false with `connection`
   */
  backgroundCheckpoints?: boolean;
}

/** Every option of {@link SqliteOptions}: names, checks, defaults. */
export const SQLITE_OPTION_TABLE = {
  // Left out, it is undefined: the driver decides by whether it opened the file itself.
  backgroundCheckpoints: rule<boolean | undefined>({
    parse: parseBoolean,
    fallback: undefined,
    defaultText: '`true` on a file the store opens; `false` with `connection`',
    summary: 'SQLite (WAL): a worker thread copies the log into the database file in small passes, so commits on the event loop need not (see "SQLite files")',
  }),
} as const satisfies OptionTable<SqliteOptions>;

/** SQLite's own options after validation, which its driver reads. */
export type SqliteSettings = ResolvedTable<typeof SQLITE_OPTION_TABLE>;

/** SQLite's options, as its descriptor brings them to the registry. */
export const SQLITE_OPTIONS: BackendOptionSet<SqliteOptions, SqliteSettings> = { table: SQLITE_OPTION_TABLE, owner: 'SQLite' };
