/**
 * Every option of the store, from the two tables that declare them: the
 * store's own (`core/options.ts`) and the connection's
 * (`backends/connection-options.ts`). Both take the seeds' names too.
 */
import { CONNECTION_OPTION_TABLE, resolveConnection, type ConnectionOptions, type ConnectionSettings } from './backends/connection-options.js';
import { canonicalise, invalidOption, namesOf, type OptionRule } from './core/option-table.js';
import { resolveStoreOptions, STORE_OPTION_TABLE, type ResolvedStoreOptions, type StoreOptions } from './core/options.js';
import { SessionStoreError } from './errors.js';

/**
 * The seeds' names of options (SmartSessionStore, Prancer) and the
 * snake_case spelling of ours, accepted as written. Each means the option
 * its description names; giving both names with different values is refused.
 */
export interface SeedOptionNames {
  /** Prancer's name for `dialect`: `Prancer::Session::Store::Database::Driver::Pg` and the like. */
  driver?: string;
  /** SmartSessionStore's name for `dialect`: `:mysql2`, `:postgresql`, `:sqlite`. */
  session_class?: string;
  /** Prancer's name for `user`. */
  username?: string;
  /** Prancer's name for `host`. */
  hostname?: string;
  /** Prancer's name for `ttl`, in seconds. */
  expiration_timeout?: number;
  /** Prancer's other name for `ttl`, in seconds. */
  timeout?: number;
  /** Prancer's name for `connectionCheckThreshold`, in seconds. */
  connection_check_threshold?: number;
  /** Prancer's name for the share of calls that start a purge. */
  autopurge_probability?: number;
  /** `connectTimeout`, in seconds. */
  connect_timeout?: number;
  /** `touchAfter`, in seconds. */
  touch_after?: number;
  /** `maxSize`, in bytes. */
  max_size?: number;
  /** `poolSize`. */
  pool_size?: number;
  /** `createTable`. */
  create_table?: boolean;
  /** `hashSessionIds`. */
  hash_session_ids?: boolean;
  /** `userIdKey`. */
  user_id_key?: string;
}

/** Options of the store, shared by every adapter. See the README's "Options". */
export interface SessionStoreOptions extends StoreOptions, ConnectionOptions, SeedOptionNames {}

/** Options after validation, with every default filled in. */
export type ResolvedOptions = ResolvedStoreOptions & ConnectionSettings;

/** Both tables, in the order the README lists them. */
export const OPTION_TABLES: readonly Readonly<Record<string, OptionRule<unknown>>>[] = [CONNECTION_OPTION_TABLE, STORE_OPTION_TABLE];

const NAMES = new Map(OPTION_TABLES.flatMap((table) => [...namesOf(table)]));

/**
 * Validates options and fills in defaults. Every problem is refused here, at
 * construction, with an error that names the option as it was given. The
 * seeds' snake_case names (`expiration_timeout`, `connection_check_threshold`,
 * `hostname`, ...) are accepted beside ours.
 *
 * @throws {SessionStoreError} `ERR_INVALID_OPTION`
 */
export function resolveOptions(input: SessionStoreOptions): ResolvedOptions {
  if (typeof input !== 'object' || input === null) throw new SessionStoreError('ERR_INVALID_OPTION', 'options must be an object with at least "url"');
  const { options, spelledAs, unknown } = canonicalise(input as Readonly<Record<string, unknown>>, NAMES);
  const [stranger] = unknown;
  if (stranger !== undefined) {
    const known = OPTION_TABLES.flatMap((table) => Object.keys(table)).join(', ');
    throw invalidOption(stranger, `is not an option of smart-session-store (known: ${known}, or the seeds' snake_case names)`);
  }
  return { ...resolveConnection(options, spelledAs), ...resolveStoreOptions(options, spelledAs) };
}
