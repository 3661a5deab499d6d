/**
 * PostgreSQL URLs naming several hosts, with libpq's meaning
 * (`postgres://user@db1:5432,db2:5432/app?target_session_attrs=read-write`),
 * which `pg` does not read (brianc/node-postgres#1470): a `pg` pool per host,
 * and the connections of the host that accepts writes.
 *
 * Each new connection is checked before its first use, as libpq checks a
 * session: with `read-write`, that `transaction_read_only` is off; with
 * `primary`, that the server is not in recovery. A host whose connection
 * fails, or that answers as a standby (or says `cannot execute ... in a
 * read-only transaction`, SQLSTATE 25006, as a demoted primary does), is left:
 * the next connection is looked for from the first host again, in the order
 * the URL gives, so a promoted standby is found once it accepts writes.
 */
import { splitHostList } from '../driver.js';
import type { PgNamedQuery, PgPoolClientLike, PgPoolLike, PgQueryResultLike } from './pg-shapes.js';

/** The values of libpq's `target_session_attrs` the store can work with: it writes. */
export const WRITABLE_SESSION_ATTRS = ['any', 'read-write', 'primary'] as const;
/** Which server a connection may be made to (libpq's `target_session_attrs`). */
export type TargetSessionAttrs = (typeof WRITABLE_SESSION_ATTRS)[number];

/** A PostgreSQL URL split into one URL per host (as `pg` reads them) and the session attributes asked for. */
export interface PostgresHostList {
  /** `host:port` as written, and the URL that reaches it alone. */
  readonly hosts: readonly { readonly address: string; readonly url: string }[];
  readonly attrs: TargetSessionAttrs;
  /** True when `target_session_attrs` was written in the URL. */
  readonly attrsGiven: boolean;
}

/**
 * Splits a PostgreSQL URL into its hosts, dropping `target_session_attrs` from
 * each host's URL (`pg` would pass it on to the server as a setting).
 *
 * @throws {Error} when `target_session_attrs` asks for a server the store cannot write to, or is unknown.
 */
export function postgresHostList(url: string): PostgresHostList {
  const split = splitHostList(url);
  const hosts = split?.hosts ?? [''];
  const query = /\?([^#]*)/.exec(url)?.[1] ?? '';
  const params = new URLSearchParams(query);
  const given = params.get('target_session_attrs');
  if (given !== null && !(WRITABLE_SESSION_ATTRS as readonly string[]).includes(given)) {
    throw new Error(
      `has target_session_attrs=${given}; the store writes sessions, so it takes ${WRITABLE_SESSION_ATTRS.join(', ')} (read-write to follow a promotion)`,
    );
  }
  params.delete('target_session_attrs');
  const rest = params.toString();
  const withoutAttrs = (hostUrl: string): string => hostUrl.replace(/\?[^#]*/, rest === '' ? '' : `?${rest}`);
  return {
    hosts: hosts.map((address) => ({ address, url: withoutAttrs(split === undefined ? url : split.urlFor(address)) })),
    attrs: (given ?? 'any') as TargetSessionAttrs,
    attrsGiven: given !== null,
  };
}

/** SQLSTATE read_only_sql_transaction: `cannot execute UPDATE in a read-only transaction`, as a standby answers a write. */
export const READ_ONLY_SQLSTATE = '25006';

/** True when a statement failed because the server takes no writes (a standby, or a primary turned read-only). */
export function isReadOnlyError(error: unknown): boolean {
  return (error as { code?: unknown } | null)?.code === READ_ONLY_SQLSTATE;
}

/** No host could give a connection that accepts writes; says what each one answered. */
export class NoWritableHostError extends Error {
  readonly code = 'ERR_NO_WRITABLE_HOST';
}

/** Logins every host refuses alike (same accounts): no other host will take them. */
function isLoginRefusal(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === '28P01' || code === '28000' || code === '3D000';
}

interface HostState {
  readonly address: string;
  readonly url: string;
  pool: PgPoolLike | undefined;
  /** Moves on when the host was found unable to take writes: its connections checked before are checked again. */
  generation: number;
}

/** What creates one host's pool. */
export type PoolFactory = (url: string) => PgPoolLike;

/** True when an error means the connection (or its server's ability to take writes) failed, not the statement. */
export type ConnectionErrorTest = (error: unknown) => boolean;

/** The pools of several hosts, shaped as one pool whose connections reach the host that accepts writes. */
export class PostgresHosts implements PgPoolLike {
  readonly #hosts: readonly HostState[];
  readonly #attrs: TargetSessionAttrs;
  readonly #createPool: PoolFactory;
  readonly #isConnectionError: ConnectionErrorTest;
  /** The host the last connection was found on: asked first. */
  #current: HostState | undefined;
  /** Each connection checked, with its host and the host's generation at the check. */
  readonly #checked = new WeakMap<PgPoolClientLike, { readonly host: HostState; readonly generation: number }>();
  #ended = false;

  constructor(list: PostgresHostList, createPool: PoolFactory, isConnectionError: ConnectionErrorTest) {
    this.#hosts = list.hosts.map((host) => ({ ...host, pool: undefined, generation: 0 }));
    this.#attrs = list.attrs;
    this.#createPool = createPool;
    this.#isConnectionError = isConnectionError;
  }

  /** `host:port` of each host, for messages. */
  get addresses(): readonly string[] {
    return this.#hosts.map((host) => host.address);
  }

  #pool(host: HostState): PgPoolLike {
    host.pool ??= this.#createPool(host.url);
    return host.pool;
  }

  /** Why the server of a new connection cannot be used for the store's writes; `undefined` when it can. */
  async #refusal(client: PgPoolClientLike): Promise<string | undefined> {
    if (this.#attrs === 'any') return undefined;
    const { rows } = await client.query("SELECT pg_is_in_recovery() AS in_recovery, current_setting('transaction_read_only') AS read_only");
    const [row] = rows;
    if (row?.['in_recovery'] === true) return 'is a standby (in recovery)';
    if (this.#attrs === 'read-write' && row?.['read_only'] === 'on') return 'is read-only (transaction_read_only is on)';
    return undefined;
  }

  /**
   * A connection of the host that accepts writes: the one found last, then
   * every host in the URL's order. Throws the connection error when no host
   * answered, and a {@link NoWritableHostError} when some answered but none
   * takes writes.
   */
  async connect(): Promise<PgPoolClientLike> {
    if (this.#ended) throw new Error('Cannot use a pool after calling end on the pool');
    const current = this.#current;
    const order = current === undefined ? this.#hosts : [current, ...this.#hosts.filter((host) => host !== current)];
    const answers: string[] = [];
    let lastError: unknown;
    let answered = false;
    for (const host of order) {
      let client: PgPoolClientLike;
      try {
        client = await this.#pool(host).connect();
      } catch (error) {
        if (isLoginRefusal(error)) throw error;
        lastError = error;
        answers.push(`${host.address}: ${error instanceof Error ? error.message : String(error)}`);
        continue;
      }
      const known = this.#checked.get(client);
      if (known !== undefined && known.generation === host.generation) {
        this.#current = host;
        return client;
      }
      let refusal: string | undefined;
      try {
        refusal = await this.#refusal(client);
      } catch (error) {
        client.release(error instanceof Error ? error : new Error(String(error)));
        if (isLoginRefusal(error)) throw error;
        lastError = error;
        answers.push(`${host.address}: ${error instanceof Error ? error.message : String(error)}`);
        continue;
      }
      if (refusal === undefined) {
        this.#checked.set(client, { host, generation: host.generation });
        this.#current = host;
        return client;
      }
      // A standby: this connection is of no use, and neither are the host's others checked before.
      answered = true;
      host.generation++;
      client.release(new Error(`${host.address} ${refusal}`));
      answers.push(`${host.address} ${refusal}`);
    }
    this.#current = undefined;
    if (!answered && lastError !== undefined) throw lastError;
    throw new NoWritableHostError(`no host accepts writes (target_session_attrs=${this.#attrs}): ${answers.join('; ')}`);
  }

  /**
   * Gives a connection back; `broken` destroys it. A connection that failed,
   * or found its server read-only, makes the store look for the host that
   * accepts writes again from the first.
   */
  release(client: PgPoolClientLike, broken: Error | undefined): void {
    if (broken !== undefined && this.#isConnectionError(broken)) {
      const known = this.#checked.get(client);
      if (known !== undefined && known.generation === known.host.generation) {
        known.host.generation++;
        if (this.#current === known.host) this.#current = undefined;
      }
    }
    client.release(broken);
  }

  /** One statement on a connection of the writable host. */
  async query(statement: string | PgNamedQuery, values?: unknown[]): Promise<PgQueryResultLike> {
    const client = await this.connect();
    let broken: Error | undefined;
    try {
      return await client.query(statement, values);
    } catch (error) {
      if (this.#isConnectionError(error)) broken = error instanceof Error ? error : new Error(String(error));
      throw error;
    } finally {
      this.release(client, broken);
    }
  }

  async end(): Promise<void> {
    this.#ended = true;
    await Promise.all(this.#hosts.map((host) => host.pool?.end()));
  }

  on(): unknown {
    return this;
  }
}
