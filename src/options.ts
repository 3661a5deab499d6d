/**
 * Every option of the store, gathered by the composition root from the
 * tables that declare them: where the sessions live and how to connect
 * (`backends/connection-options.ts`), each backend's own (in its folder,
 * brought by its descriptor in the registry), and the store's
 * (`core/options.ts`). All take the seeds' names too.
 *
 * This file and `store.ts` are the composition root: the only files besides
 * the command line that import the backend registry.
 */
import {
  addressOptionTable,
  CONNECTION_OPTION_TABLE,
  resolveConnection,
  targetOfUrl,
  type CheckedConnectionOptions,
  type SharedConnectionOptions,
} from './backends/connection-options.js';
import type { AnyBackendDescriptor } from './backends/backend-descriptor.js';
import type { ConnectionSettings, ConnectionTarget } from './backends/connection-settings.js';
import { REGISTRY, type BackendOptions, type BackendSettings } from './backends/registry.js';
import { canonicalise, invalidOption, namesOf, resolveTable, type OptionRule } from './core/option-table.js';
import { resolveStoreOptions, STORE_OPTION_TABLE, type ResolvedStoreOptions, type StoreOptions } from './core/options.js';
import { SessionStoreError } from './errors.js';
import { MIGRATE_OPTION_TABLE, type MigrateOptions, type MigrateSettings } from './migrate/migrate-options.js';

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

/**
 * Options saying where the sessions live and how the store connects: the
 * ones every backend shares, and each backend's own (such as `syncWait` for
 * a Galera cluster, `backgroundCheckpoints` for SQLite), which are refused
 * by name when given for another backend.
 */
export interface ConnectionOptions extends SharedConnectionOptions, BackendOptions {}

/** Options of the store, shared by every adapter. See the README's "Options". */
export interface SessionStoreOptions extends StoreOptions, ConnectionOptions, MigrateOptions, SeedOptionNames {}

/** Options after validation, with every default filled in. */
export type ResolvedOptions = ResolvedStoreOptions & ConnectionSettings & BackendSettings & MigrateSettings;

/** One table of options: each option's rule, by its name. */
type AnyOptionTable = Readonly<Record<string, OptionRule<unknown>>>;

/** A backend's own options, known by name only. */
type AnyBackendOptionSet = NonNullable<AnyBackendDescriptor['options']>;

/** Where the sessions live (`url` to `hosts`); `dialect` is checked against the registry. */
const ADDRESS_OPTION_TABLE = addressOptionTable(REGISTRY);

/** Each backend that reads options of its own, by its name, with them. */
const BACKEND_OPTION_SETS: readonly { readonly name: string; readonly set: AnyBackendOptionSet }[] = REGISTRY.backends.flatMap(({ name, options }) =>
  options === undefined ? [] : [{ name, set: options }],
);

/**
 * Every table, in the order docs/options.md lists them and given values are
 * checked: where the sessions live, each backend's own options (in the
 * registry's order) after the address they go with, how to connect, then
 * the store's own.
 */
export const OPTION_TABLES: readonly AnyOptionTable[] = [
  ADDRESS_OPTION_TABLE,
  ...BACKEND_OPTION_SETS.map(({ set }) => set.table),
  CONNECTION_OPTION_TABLE,
  STORE_OPTION_TABLE,
  MIGRATE_OPTION_TABLE,
];

/** Every name the tables accept, mapped to the option it means; a name two tables declare would be ambiguous. */
const NAMES = new Map<string, string>();
for (const [name, option] of OPTION_TABLES.flatMap((table) => [...namesOf(table)])) {
  if (NAMES.has(name)) throw new Error(`option "${name}" is declared twice: each backend's options need names of their own`);
  NAMES.set(name, option);
}

/** The target a connection URL names, among the backends the registry lists. @throws {SessionStoreError} `ERR_INVALID_OPTION` */
export function parseConnectionUrl(url: string): ConnectionTarget {
  return targetOfUrl(url, REGISTRY);
}

/** One backend's own options, each given value checked and each default filled in. */
interface CheckedBackendOptions {
  /** The backend's name, as a target's `dialect` holds it. */
  readonly name: string;
  readonly set: AnyBackendOptionSet;
  readonly settings: Readonly<Record<string, unknown>>;
}

/**
 * Weighs each backend's own options against the target: given for another
 * backend, one that would change something is refused by name (it would be
 * silently ignored; its default changes nothing, so a file that spells it
 * out anyway is accepted); for the target's backend, its own checks run.
 */
function resolveBackendOptions(checked: readonly CheckedBackendOptions[], target: ConnectionTarget, spelledAs: ReadonlyMap<string, string>): BackendSettings {
  const nameAsGiven = (name: string): string => spelledAs.get(name) ?? name;
  for (const { name: backend, set, settings } of checked) {
    if (backend === target.dialect) {
      set.check?.(settings, target, nameAsGiven);
      continue;
    }
    for (const [name, rule] of Object.entries<OptionRule<unknown>>(set.table)) {
      if (!Object.is(settings[rule.as ?? name], rule.fallback)) throw invalidOption(nameAsGiven(name), `is for ${set.owner}, not ${target.dialect}`);
    }
  }
  return Object.assign({}, ...checked.map(({ settings }) => settings)) as BackendSettings;
}

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
  // Each given value is checked in the order of OPTION_TABLES, every backend's whatever the target, so the first
  // wrong one is named first; then where to connect, each backend's options against it, and the store's own.
  const address = resolveTable(ADDRESS_OPTION_TABLE, options, spelledAs);
  const backends = BACKEND_OPTION_SETS.map(({ name, set }): CheckedBackendOptions => ({ name, set, settings: resolveTable(set.table, options, spelledAs) }));
  const shared: CheckedConnectionOptions = { ...address, ...resolveTable(CONNECTION_OPTION_TABLE, options, spelledAs) };
  const connection = resolveConnection(shared, REGISTRY);
  return {
    ...connection,
    ...resolveBackendOptions(backends, connection.target, spelledAs),
    ...resolveStoreOptions(options, spelledAs),
    ...resolveTable(MIGRATE_OPTION_TABLE, options, spelledAs),
  };
}
