/**
 * The backends the store can use. Adding one is a folder under
 * `src/backends/` whose `index.ts` exports a {@link BackendDescriptor}
 * (bringing the options only it reads), and a line here; the core never
 * names a backend, and no shared options file changes.
 *
 * Imported by the composition root alone (`src/options.ts`, `src/store.ts`,
 * and the command line): the shared connection code is handed
 * {@link REGISTRY} instead, so no backend's imports lead back here.
 */
import type { AnyBackendDescriptor, BackendDescriptor, BackendRegistry } from './backend-descriptor.js';
import { mysql } from './mysql/index.js';
import { postgres } from './postgres/index.js';
import { redis } from './redis/index.js';
import { sqlite } from './sqlite/index.js';

/** Every backend, in the order the documentation lists them (and in which handed-over connections are recognised). */
export const BACKENDS = [postgres, mysql, sqlite, redis] as const;

/** One of the registered backends, each with the type of its own options. */
export type RegisteredBackend = (typeof BACKENDS)[number];

/** The options each backend in `List` reads alone, as given, together. */
type OptionsOfEach<List extends readonly unknown[]> = List extends readonly [BackendDescriptor<infer Options, infer _Settings>, ...infer Rest]
  ? Options & OptionsOfEach<Rest>
  : unknown;

/** The options each backend in `List` reads alone, after validation, together. */
type SettingsOfEach<List extends readonly unknown[]> = List extends readonly [BackendDescriptor<infer _Options, infer Settings>, ...infer Rest]
  ? Settings & SettingsOfEach<Rest>
  : unknown;

/**
 * Every backend's own options (`syncWait`, `backgroundCheckpoints`, ...),
 * each declared and documented in its backend's folder: what the store's
 * options add to the shared connection options.
 */
export type BackendOptions = OptionsOfEach<typeof BACKENDS>;

/** {@link BackendOptions} after validation, with their defaults filled in. */
export type BackendSettings = SettingsOfEach<typeof BACKENDS>;

/** The backend a `dialect` name means (`postgres`, `Pg`, `Prancer::...::Driver::Pg`, `:mysql2`, `SQLite`); `undefined` for none. */
export function backendNamed(value: string): RegisteredBackend | undefined {
  const name = (value.split('::').pop() ?? '').replace(/^:/, '').toLowerCase();
  return BACKENDS.find((backend) => backend.name === name || backend.aliases.includes(name));
}

/** The backend of a URL scheme (without the colon). */
export function backendForScheme(scheme: string): RegisteredBackend | undefined {
  return BACKENDS.find((backend) => backend.schemes.includes(scheme.toLowerCase()));
}

/** The backend whose driver made a handed-over connection. */
export function backendRecognising(connection: object): RegisteredBackend | undefined {
  return BACKENDS.find((backend) => backend.recognises(connection));
}

/** The registry as the shared connection code is handed it. */
export const REGISTRY: BackendRegistry = {
  backends: BACKENDS satisfies readonly AnyBackendDescriptor[],
  named: backendNamed,
  forScheme: backendForScheme,
  recognising: backendRecognising,
};
