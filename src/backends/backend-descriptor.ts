/**
 * What the registry knows of a backend before loading it: its names, the URL
 * schemes it answers to, how to recognise a connection the application hands
 * over, and how to open it (which loads the backend's code and driver only
 * then, so a user installs just the driver they use).
 */
import type { SessionBackend } from '../core/backend.js';
import type { ConnectionParameters, ConnectionSettings, ConnectionTarget } from './connection-options.js';

/** One backend, as the registry lists it. */
export interface BackendDescriptor {
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
  /** The target a URL of one of its schemes names. @throws {SessionStoreError} `ERR_INVALID_OPTION` */
  fromUrl(url: string, scheme: string): ConnectionTarget;
  /** The target that connection settings given one by one name. */
  fromParameters(parameters: ConnectionParameters): ConnectionTarget;
  /** True for a pool, client or database object of its driver. */
  recognises(connection: object): boolean;
  /** Opens the backend (its own connections, or the application's). */
  open(settings: ConnectionSettings): Promise<SessionBackend>;
}
