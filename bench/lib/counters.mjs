/**
 * Statement counting for the benchmark (never for tests): wraps the drivers'
 * own entry points so every statement a store sends is counted, whichever
 * copy of the driver the store loaded (the library resolves its drivers from
 * the repository root, the peer stores from bench/node_modules).
 *
 *   pg             Client.prototype.query (pools and knex go through it; BEGIN/COMMIT too)
 *   mysql2         the connection prototype owning query/execute/ping (pool.query and
 *                  beginTransaction/commit/rollback go through it)
 *   better-sqlite3 Statement.prototype.run/get/all/iterate (db.transaction() runs its
 *                  BEGIN/COMMIT through prepared statements, so they count too), Database.prototype.exec
 *   redis          the client's command methods used by connect-redis (wrapped per client)
 */

export const counts = { pg: 0, mysql: 0, sqlite: 0, redis: 0 };

const PATCHED = Symbol.for('smart-session-store-bench.patched');

function wrap(owner, name, key) {
  const original = owner[name];
  if (typeof original !== 'function' || original[PATCHED]) return false;
  const wrapped = function countedCall(...args) {
    counts[key]++;
    return original.apply(this, args);
  };
  wrapped[PATCHED] = true;
  owner[name] = wrapped;
  return true;
}

/** The prototype in `proto`'s chain that defines `name` itself. */
function owning(proto, name) {
  for (let p = proto; p !== null && p !== Object.prototype; p = Object.getPrototypeOf(p)) {
    if (Object.hasOwn(p, name)) return p;
  }
  return null;
}

/** Patches one copy of `pg` (the module object, as require('pg') returns it). */
export function patchPg(pg) {
  if (pg?.Client?.prototype === undefined) return false;
  const owner = owning(pg.Client.prototype, 'query');
  return owner !== null && wrap(owner, 'query', 'pg');
}

/** Patches one copy of `mysql2` (as require('mysql2') returns it). */
export function patchMysql2(mysql2) {
  const proto = mysql2?.Connection?.prototype;
  if (proto === undefined) return false;
  let patched = false;
  for (const name of ['query', 'execute', 'ping']) {
    const owner = owning(proto, name);
    if (owner !== null) patched = wrap(owner, name, 'mysql') || patched;
  }
  return patched;
}

/** Patches one copy of `better-sqlite3` (the Database constructor). */
export function patchBetterSqlite3(Database) {
  if (typeof Database !== 'function') return false;
  const probe = new Database(':memory:');
  const statementProto = Object.getPrototypeOf(probe.prepare('SELECT 1'));
  probe.close();
  let patched = false;
  for (const name of ['run', 'get', 'all', 'iterate']) patched = wrap(statementProto, name, 'sqlite') || patched;
  patched = wrap(Database.prototype, 'exec', 'sqlite') || patched;
  return patched;
}

/** Wraps the command methods of one node-redis client instance. */
export function countRedisClient(client) {
  for (const name of ['get', 'set', 'expire', 'del', 'mGet', 'scan', 'exists', 'ttl', 'pExpire', 'setEx']) {
    const original = client[name];
    if (typeof original !== 'function' || original[PATCHED]) continue;
    const wrapped = (...args) => {
      counts.redis++;
      return original.apply(client, args);
    };
    wrapped[PATCHED] = true;
    client[name] = wrapped;
  }
  return client;
}

/** A snapshot of all counters, to subtract later. */
export function snapshot() {
  return { ...counts };
}

/** Statements of `key` since `before`. */
export function since(before, key) {
  return key === null ? 0 : counts[key] - before[key];
}
