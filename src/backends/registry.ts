/**
 * The backends the store can use. Adding one is a folder under
 * `src/backends/` whose `index.ts` exports a {@link BackendDescriptor}, and a
 * line here; the core never names a backend.
 */
import type { BackendDescriptor } from './backend-descriptor.js';
import { mysql } from './mysql/index.js';
import { postgres } from './postgres/index.js';
import { redis } from './redis/index.js';
import { sqlite } from './sqlite/index.js';

/** Every backend, in the order the documentation lists them (and in which handed-over connections are recognised). */
export const BACKENDS: readonly BackendDescriptor[] = [postgres, mysql, sqlite, redis];

/** The backend a `dialect` name means (`postgres`, `Pg`, `Prancer::...::Driver::Pg`, `:mysql2`, `SQLite`); `undefined` for none. */
export function backendNamed(value: string): BackendDescriptor | undefined {
  const name = (value.split('::').pop() ?? '').replace(/^:/, '').toLowerCase();
  return BACKENDS.find((backend) => backend.name === name || backend.aliases.includes(name));
}

/** The backend of a URL scheme (without the colon). */
export function backendForScheme(scheme: string): BackendDescriptor | undefined {
  return BACKENDS.find((backend) => backend.schemes.includes(scheme.toLowerCase()));
}

/** The backend whose driver made a handed-over connection. */
export function backendRecognising(connection: object): BackendDescriptor | undefined {
  return BACKENDS.find((backend) => backend.recognises(connection));
}
