/**
 * The engines users scale out on, started by the project's own scripts:
 * PgBouncer in transaction mode in front of the machine's PostgreSQL
 * (`scripts/pgbouncer.sh start`) and a 3-node MariaDB Galera cluster
 * (`scripts/galera.sh start`). Their URLs come from `PGBOUNCER_URL` and
 * `GALERA_URL`, by default what the scripts print. `DATABASE=pgbouncer` or
 * `DATABASE=galera` narrows the suite to them.
 *
 * The Galera store under test gets the cluster's multi-host URL; what the
 * tests read and write past the store goes to the first node, with reads
 * that wait for the cluster's earlier writes (`wsrep_sync_wait`).
 */
import mysql from 'mysql2/promise';
import type { Backend, BackendConnector } from '../backends.js';
import { countedSqlConnection } from '../counted.js';
import { connectPostgres, sqlBackend } from './sql.js';

/** What `scripts/pgbouncer.sh start` prints. */
export const PGBOUNCER_URL = process.env['PGBOUNCER_URL'] ?? 'postgres://postgres@127.0.0.1:6432/test';
/** What `scripts/galera.sh start` prints. */
export const GALERA_URL = process.env['GALERA_URL'] ?? 'mysql://root@127.0.0.1:3311,127.0.0.1:3312,127.0.0.1:3313/test';

/** A multi-host URL's parts: `mysql://root@` + hosts + `/test`. */
export function galeraNodes(url = GALERA_URL): { readonly hosts: readonly string[]; urlWith(hosts: readonly string[]): string } {
  const match = /^([a-z]+:\/\/(?:[^@/]*@)?)([^/?#]+)(.*)$/.exec(url);
  if (match === null) throw new Error(`GALERA_URL is not a mysql:// URL: ${url}`);
  const [, head, hosts, rest] = match as unknown as [string, string, string, string];
  return { hosts: hosts.split(','), urlWith: (list) => `${head}${list.join(',')}${rest}` };
}

/** The cluster's URL with its hosts rotated so that node `first` (0-based) comes first: a store that prefers that node. */
export function galeraUrlPreferring(first: number, url = GALERA_URL): string {
  const { hosts, urlWith } = galeraNodes(url);
  return urlWith([...hosts.slice(first), ...hosts.slice(0, first)]);
}

/** The URL of node `index` (0-based) alone. */
export function galeraNodeUrl(index: number, url = GALERA_URL): string {
  const { hosts, urlWith } = galeraNodes(url);
  const host = hosts[index];
  if (host === undefined) throw new Error(`GALERA_URL has no node ${index + 1}: ${url}`);
  return urlWith([host]);
}

/** A pool on one Galera node whose reads wait for the writes the cluster committed before them. */
export function causalPool(url: string, connectionLimit = 2): mysql.Pool {
  const pool = mysql.createPool({ uri: url, connectionLimit, connectTimeout: 3000, charset: 'utf8mb4_unicode_ci' });
  // mysql2 hands the listener its callback-style connection; the statement is queued before any of the first user's.
  pool.on('connection', (connection) => {
    (connection as unknown as { query(sql: string, done: () => void): void }).query('SET SESSION wsrep_sync_wait = 1', () => undefined);
  });
  return pool;
}

/** Connects to the cluster: raw statements on node 1, the store on every node. */
async function connectGalera(): Promise<Backend> {
  const nodeOne = galeraNodeUrl(0);
  const pool = causalPool(nodeOne);
  try {
    const [rows] = await pool.query("SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_ready', 'wsrep_cluster_size')");
    const status = new Map((rows as { Variable_name: string; Value: string }[]).map((row) => [row.Variable_name, row.Value]));
    if (status.get('wsrep_ready') !== 'ON')
      throw new Error(`node 1 (${nodeOne}) is not a ready Galera node: ${JSON.stringify(Object.fromEntries(status))}; run scripts/galera.sh start`);
  } catch (error) {
    await pool.end();
    throw error;
  }
  const query: Backend['query'] = async (sql, params) => {
    const [rows] = await pool.query(sql, params);
    return Array.isArray(rows) ? (rows as Record<string, unknown>[]) : [];
  };
  // The store under test gets the whole cluster; counting runs on node 1 (a handed-over pool is one server's).
  return { ...sqlBackend('galera', 'mysql', GALERA_URL, query, () => pool.end()), counted: () => countedSqlConnection('mysql', nodeOne) };
}

export const connectors: readonly BackendConnector[] = [
  { name: 'pgbouncer', aliases: [], order: 20, connect: () => connectPostgres('pgbouncer', PGBOUNCER_URL) },
  { name: 'galera', aliases: [], order: 21, connect: connectGalera },
];
