/**
 * The options only PostgreSQL reads, declared beside its driver through the
 * same tables as the shared ones. The composition root gathers them with
 * every other backend's; nothing outside this folder names them.
 */
import { parseBoolean, rule, type OptionTable, type ResolvedTable } from '../../core/option-table.js';
import type { BackendOptionSet } from '../backend-descriptor.js';

/** Options of PostgreSQL alone. */
export interface PostgresOptions {
  /**
   * PostgreSQL: send the store's fixed statements (the load, the save of a
   * change, the touch, the destroy, ...) as named statements, which the
   * server parses and plans once per connection instead of on every call
   * (a load and save cycle took 23 % less time in our measurement). Each
   * name is `sss_` and a hash of the statement's text, the same in every
   * process. Statements inside a transaction (pessimistic locking, purge
   * batches) always go unnamed.
   *
   * Behind a pooler that does not keep named statements per client
   * (PgBouncer in transaction mode before 1.21, or without
   * `max_prepared_statements`), the first named statement that fails with
   * `prepared statement ... does not exist` or `already exists` (SQLSTATE
   * 26000, 42P05; nothing has run) switches the store to unnamed statements
   * for good, and runs again unnamed: no error reaches the application.
   * Set it to `false` to send every statement unnamed from the start, or
   * when a connection handed over (`connection`) cannot take `pg`'s query
   * objects (`{ name, text, values }`).
   * @default true
   */
  preparedStatements?: boolean;
}

/** Every option of {@link PostgresOptions}: names, checks, defaults. */
export const POSTGRES_OPTION_TABLE = {
  preparedStatements: rule({
    parse: parseBoolean,
    fallback: true,
    defaultText: '`true`',
    summary:
      'PostgreSQL: send the fixed statements named (prepared once per connection); behind a pooler without them (PgBouncer 1.18 in transaction mode) the store switches to unnamed by itself (see "Behind PgBouncer")',
  }),
} as const satisfies OptionTable<PostgresOptions>;

/** PostgreSQL's own options after validation, which its driver reads. */
export type PostgresSettings = ResolvedTable<typeof POSTGRES_OPTION_TABLE>;

/** PostgreSQL's options, as its descriptor brings them to the registry. */
export const POSTGRES_OPTIONS: BackendOptionSet<PostgresOptions, PostgresSettings> = { table: POSTGRES_OPTION_TABLE, owner: 'PostgreSQL' };
