/**
 * What the registry knows of a backend before loading it: its names, the URL
 * schemes it answers to, how to recognise a connection the application hands
 * over, the options only it reads, and how to open it (which loads the
 * backend's code and driver only then, so a user installs just the driver
 * they use).
 */
import type { SessionBackend } from '../core/backend.js';
import type { OptionTable } from '../core/option-table.js';
import type { ConnectionParameters, ConnectionSettings, ConnectionTarget } from './connection-settings.js';

/** The options of a backend that reads only the shared ones. */
export type NoBackendOptions = Record<never, never>;

/**
 * The options only one backend reads, declared in its own folder through the
 * same tables as the shared ones (`src/core/option-table.ts`). The
 * composition root gathers every backend's: each is accepted (and typed) in
 * the store's options, documented in the README's table, and refused by name
 * when given for another backend.
 *
 * @typeParam Options - the options as given, with their documentation (`{ syncWait?: boolean }`).
 * @typeParam Settings - the same options after validation (`{ syncWait: boolean }`).
 */
export interface BackendOptionSet<Options extends object, Settings extends object> {
  /** One rule per option: names, seed aliases, check, default, documentation. */
  readonly table: OptionTable<Options>;
  /** Whom the options are for, in the message refusing one given for another backend: `SQLite`. */
  readonly owner: string;
  /**
   * Checks that need the target as well, once this backend is the one
   * chosen (a setting that a connection handed over makes meaningless).
   *
   * @param nameAsGiven - an option's name as the user spelled it, for the message.
   * @throws {SessionStoreError} `ERR_INVALID_OPTION` naming the option.
   */
  check?(settings: Settings, target: ConnectionTarget, nameAsGiven: (name: string) => string): void;
}

/**
 * One backend, as the registry lists it.
 *
 * @typeParam Options - the options only this backend reads, as given (none by default).
 * @typeParam Settings - those options after validation, which `open` receives beside the shared ones.
 */
export interface BackendDescriptor<Options extends object = NoBackendOptions, Settings extends object = NoBackendOptions> {
  /** The name `dialect` resolves to: `postgres`. */
  readonly name: string;
  /** What holds the sessions, for messages: `sessions table`. */
  readonly storage: string;
  /**
   * The backend removes expired sessions by itself (Redis key TTLs): it has
   * no table to create and nothing to purge.
   */
  readonly expiresItself?: boolean;
  /** The backend reaches a cluster through a list of nodes (the `hosts` option). */
  readonly acceptsHosts?: boolean;
  /** Where the sessions of `table` live, for messages: `table sessions` (the default) or `keys under "sessions:"`. */
  place?(table: string): string;
  /** Other names accepted for `dialect` (the seeds' driver names), lower case: `pg`, `postgresql`. */
  readonly aliases: readonly string[];
  /** URL schemes, without the colon: `postgres`, `postgresql`. */
  readonly schemes: readonly string[];
  /** The options only this backend reads; left out when it reads only the shared ones. */
  readonly options?: BackendOptionSet<Options, Settings>;
  /** The target a URL of one of its schemes names. @throws {SessionStoreError} `ERR_INVALID_OPTION` */
  fromUrl(url: string, scheme: string): ConnectionTarget;
  /** The target that connection settings given one by one name. */
  fromParameters(parameters: ConnectionParameters): ConnectionTarget;
  /** True for a pool, client or database object of its driver. */
  recognises(connection: object): boolean;
  /** Opens the backend (its own connections, or the application's). */
  open(settings: ConnectionSettings & Settings): Promise<SessionBackend>;
}

/** Any backend, whatever options it reads: they are known by name only. */
export type AnyBackendDescriptor = BackendDescriptor<Readonly<Record<string, unknown>>, object>;

/**
 * The registered backends as the shared connection code sees them: handed
 * to it by the composition root, which alone imports the registry, so no
 * backend's import can lead back to the list of backends.
 */
export interface BackendRegistry {
  /** Every backend, in the order the documentation lists them (and in which handed-over connections are recognised). */
  readonly backends: readonly AnyBackendDescriptor[];
  /** The backend a `dialect` name means (`postgres`, `Pg`, `Prancer::...::Driver::Pg`, `:mysql2`, `SQLite`); `undefined` for none. */
  named(value: string): AnyBackendDescriptor | undefined;
  /** The backend of a URL scheme (without the colon). */
  forScheme(scheme: string): AnyBackendDescriptor | undefined;
  /** The backend whose driver made a handed-over connection. */
  recognising(connection: object): AnyBackendDescriptor | undefined;
}
