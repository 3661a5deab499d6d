/**
 * Which databases the suite runs against, narrowed by `DATABASE`
 * (postgres|mysql|sqlite, comma-separated), as the SmartSessionStore seed's
 * `rake test DATABASE=postgresql`.
 *
 * A server that cannot be reached is a skip on a developer machine and a
 * failure when `CI=true`. `REQUIRED_BACKENDS` (comma-separated names) says
 * which must be reached, the others being skipped when they cannot: CI runs
 * the suite once with `REQUIRED_BACKENDS=postgres,mysql,sqlite,redis` and the
 * cluster engines down, as a newcomer's machine has it.
 */
import { readdirSync } from 'node:fs';
import { basename } from 'node:path';
import { after, test } from 'node:test';
import { SessionStore, SessionStoreError, type JsonObject, type LockingMode, type SessionStoreOptions } from '../../src/index.js';
import { EXPRESS_SESSION_FORMAT } from '../../src/adapters/express.js';

/** A backend as `DATABASE=` names it: `postgres`, `mysql`, `sqlite`, and those the connectors add. */
export type BackendName = string;
/** How the store talks to it, for what tests write by hand (SQL placeholders, say). */
export type BackendDialect = 'postgres' | 'mysql' | 'sqlite' | 'redis';
export const LOCKING_MODES: readonly LockingMode[] = ['atomic', 'optimistic', 'pessimistic'];

/** A stored session, read past the store. */
export interface StoredRow {
  /** The stored JSON text (`null` for NULL data). */
  readonly text: string | null;
  /** The same, parsed, when it is JSON. */
  readonly data: JsonObject | undefined;
}

/** The sessions of one table (or key prefix), read and written past the store, as another program would. */
export interface SessionRows {
  read(key: string): Promise<StoredRow | undefined>;
  /** Rewrites a session's data, bumping `lock_version` where the table has one (as every writer must). */
  rewrite(key: string, text: string): Promise<void>;
}

/** A connection of the backend's driver whose statements (or commands) are written down as they go by. */
export interface CountedConnection {
  readonly connection: object;
  readonly statements: string[];
  close(): Promise<void>;
}

export interface Backend {
  readonly name: BackendName;
  readonly dialect: BackendDialect;
  readonly url: string;
  /** True for the SQL databases: `query` works, tables can be created by hand. */
  readonly sql: boolean;
  /** Runs raw SQL against the backend, bypassing the store (to inspect or tamper with rows). */
  query(sql: string, params?: unknown[]): Promise<Record<string, unknown>[]>;
  /** The stored sessions of `table`, past the store. */
  rows(table: string): SessionRows;
  /** A handed-over connection that counts what the store sends. */
  counted(): Promise<CountedConnection>;
  /** Removes a table (or the keys under a prefix) and nothing else. */
  drop(table: string): Promise<void>;
  close(): Promise<void>;
}

/**
 * How the suite reaches one backend. Each file in `test/support/connectors/`
 * exports `connectors`; adding a backend to the suite adds a file there.
 */
export interface BackendConnector {
  readonly name: BackendName;
  /** Other names `DATABASE=` accepts for it. */
  readonly aliases: readonly string[];
  /** Where it comes in the default order (the machine's own servers first). */
  readonly order: number;
  /** Connects, or throws when the backend is not reachable. */
  connect(): Promise<Backend>;
  /**
   * The test files it runs in (file names), when not every one: a setup that
   * adds nothing to most files but their time (a failover pair runs the
   * shared store and framework suites and its own). Naming it in `DATABASE=`
   * runs it in every file.
   * @default every file
   */
  readonly onlyIn?: readonly string[];
}

const connectorsDirectory = new URL('./connectors/', import.meta.url);
const CONNECTORS: readonly BackendConnector[] = (
  await Promise.all(
    readdirSync(connectorsDirectory)
      .filter((file) => file.endsWith('.ts'))
      .map(async (file) => ((await import(new URL(file, connectorsDirectory).href)) as { connectors: readonly BackendConnector[] }).connectors),
  )
)
  .flat()
  .sort((left, right) => left.order - right.order);

/** The test file this process runs (`node --test` gives each file a process of its own). */
const THIS_FILE = basename(process.argv[1] ?? '');

function selectedConnectors(): BackendConnector[] {
  const wanted = process.env['DATABASE'];
  if (wanted === undefined || wanted.trim() === '') return CONNECTORS.filter(({ onlyIn }) => onlyIn === undefined || onlyIn.includes(THIS_FILE));
  return wanted.split(',').map((given) => {
    const name = given.trim().toLowerCase();
    const connector = CONNECTORS.find((known) => known.name === name || known.aliases.includes(name));
    if (connector === undefined) throw new Error(`DATABASE=${wanted}: unknown backend "${given}" (${CONNECTORS.map((known) => known.name).join(', ')})`);
    return connector;
  });
}

/** Whether an unreachable `name` fails the run: those `REQUIRED_BACKENDS` names, or under `CI=true` every one. */
function mustReach(name: BackendName): boolean {
  const required = process.env['REQUIRED_BACKENDS'];
  if (required !== undefined && required.trim() !== '') return required.split(',').some((given) => given.trim().toLowerCase() === name);
  return process.env['CI'] === 'true';
}

/**
 * The backends to test, connected. Each unreachable one registers a test that
 * is skipped, or fails under `CI=true`.
 */
export async function availableBackends(among?: readonly BackendName[]): Promise<Backend[]> {
  const backends: Backend[] = [];
  for (const { name, connect } of selectedConnectors().filter((connector) => among === undefined || among.includes(connector.name))) {
    try {
      backends.push(await connect());
    } catch (error) {
      const reason = `${name} is not reachable: ${error instanceof Error ? error.message : String(error)}`;
      if (mustReach(name)) {
        test(`${name} backend`, () => {
          throw new Error(
            `${reason} (${process.env['REQUIRED_BACKENDS'] ? `REQUIRED_BACKENDS=${process.env['REQUIRED_BACKENDS']}` : 'CI requires every backend'})`,
          );
        });
      } else {
        test(`${name} backend`, { skip: reason }, () => undefined);
      }
    }
  }
  return backends;
}

/** Drops a test table (and nothing else). */
export async function dropTable(backend: Backend, table: string): Promise<void> {
  await backend.drop(table);
}

/** A pause of `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The machine's own database servers, for tests of what is particular to one engine (its tables, its connections). */
export const LOCAL_SQL: readonly BackendName[] = ['postgres', 'mysql', 'sqlite'];

/**
 * The backends of a test file (all of them, or those `among`), closed when the file's tests are done.
 *
 * Await it after every other top-level await of the file. A backend that is not reachable registers
 * its placeholder test at once, which starts the file's run; node:test runs the file-level `after`
 * that closes the backends as soon as the tests registered so far are done, so a suite registered
 * after a later await would find them closed (it then fails with the error below, not the driver's).
 */
export async function backendsForThisFile(among?: readonly BackendName[]): Promise<Backend[]> {
  const backends = (await availableBackends(among)).map(closedAfterFile);
  after(async () => {
    for (const backend of backends) await backend.close();
  });
  return backends;
}

/** `backend`, whose use once the file's `after` closed it throws an error that says why. */
function closedAfterFile(backend: Backend): Backend {
  let closed = false;
  const open =
    <Args extends unknown[], Result>(use: (...args: Args) => Result) =>
    (...args: Args): Result => {
      if (closed)
        throw new Error(
          `the ${backend.name} backend was closed by the file's after hook before this test ran: call backendsForThisFile after the file's other top-level awaits`,
        );
      return use(...args);
    };
  return {
    ...backend,
    query: open(backend.query.bind(backend)),
    rows: open(backend.rows.bind(backend)),
    counted: open(backend.counted.bind(backend)),
    drop: open(backend.drop.bind(backend)),
    async close() {
      closed = true;
      await backend.close();
    },
  };
}

/** For `assert.rejects`/`throws`: a SessionStoreError with this code (and, if given, this text in its message). */
export function isStoreError(code: string, mentioning?: string): (error: unknown) => boolean {
  return (error) => error instanceof SessionStoreError && error.code === code && (mentioning === undefined || error.message.includes(mentioning));
}

/** SQL written with `?` placeholders, numbered for PostgreSQL. */
export function sql(backend: Backend, text: string): string {
  if (backend.dialect !== 'postgres') return text;
  let index = 0;
  return text.replace(/\?/g, () => `$${++index}`);
}

/**
 * A store whose sessions are express-session's (a `cookie` whose `expires`
 * is the session's expiry and whose rolling alone is no change), as most
 * tests write them.
 */
export class CookieStore extends SessionStore {
  constructor(options: SessionStoreOptions) {
    super(options, { format: EXPRESS_SESSION_FORMAT });
  }
}
