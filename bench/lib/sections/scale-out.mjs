/**
 * 7. Scale-out: the engines users already run to scale a database out.
 *
 * - PgBouncer in transaction mode in front of PostgreSQL
 *   (scripts/pgbouncer.sh): one express app whose store connects through it,
 *   next to the same app straight on PostgreSQL.
 * - A 3-node MariaDB Galera cluster (scripts/galera.sh): three express apps,
 *   app i's store preferring node i (the cluster's URL with its hosts
 *   rotated, `syncWait: true`), loaded at once by three load generators;
 *   next to one app on node 1 alone.
 *
 * For each: writing requests per second (autocannon, 50 keep-alive
 * connections in all, each on its own ~1 KB session, in processes of their
 * own), and survival: 20 parallel requests on ONE session, request k sent to
 * app k mod apps (so on Galera through node k mod 3), each setting its own
 * key; the share of keys the session kept, in each locking mode.
 *
 * An engine that does not answer is started by its script when its URL is
 * the script's own (root and apt-get may be needed); if it still does not
 * answer it is reported as unreachable and skipped.
 *
 * Then a failover under load (../failover.mjs): a PostgreSQL primary and a
 * Redis master killed under 20 writers, their standby promoted: seconds of
 * failed saves, and acknowledged saves lost, with and without waiting for
 * the replicas.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { createSessions, get, startApp } from '../app.mjs';
import { drivers, LIBRARY_DIR } from '../drivers.mjs';
import { MODES, smartOptions } from '../stores.mjs';
import { log, range, round } from '../util.mjs';
import { failovers } from '../failover.mjs';
import { startWorker } from './http.mjs';
import { SmartSessionStore } from 'smart-session-store/express';

const run = promisify(execFile);
/** The table of this section on both engines (bench_*: the test suite's are ssn_*). */
export const SCALE_OUT_TABLE = 'bench_scaleout';
/** What the scripts print. */
export const DEFAULT_URLS = {
  pgbouncer: 'postgres://postgres@127.0.0.1:6432/test',
  galera: 'mysql://root@127.0.0.1:3311,127.0.0.1:3312,127.0.0.1:3313/test',
};
const SCRIPTS = { pgbouncer: 'scripts/pgbouncer.sh', galera: 'scripts/galera.sh' };

/** A multi-host URL's parts: `mysql://root@` + `h1,h2,h3` + `/test`. */
function hostParts(url) {
  const match = /^([a-z]+:\/\/(?:[^@/]*@)?)([^/?#]+)(.*)$/.exec(url);
  if (match === null) throw new Error(`not a URL with hosts: ${url}`);
  return { head: match[1], hosts: match[2].split(','), rest: match[3] };
}

/** The URL with its hosts rotated so that host `first` comes first: a store that prefers that node. */
function rotated(url, first) {
  const { head, hosts, rest } = hostParts(url);
  return `${head}${[...hosts.slice(first), ...hosts.slice(0, first)].join(',')}${rest}`;
}

/** The URL of node `index` alone. */
function nodeUrl(url, index) {
  const { head, hosts, rest } = hostParts(url);
  return `${head}${hosts[index]}${rest}`;
}

/** Answers SELECT 1, and what the engine is (its version). */
async function probe(engine, url) {
  if (engine === 'pgbouncer') {
    const client = new drivers.bench.pg.Client({ connectionString: url, connectionTimeoutMillis: 3000 });
    await client.connect();
    try {
      const server = (await client.query('SHOW server_version')).rows[0]?.server_version;
      const admin = new URL(url);
      admin.pathname = '/pgbouncer';
      const console = new drivers.bench.pg.Client({ connectionString: admin.toString(), connectionTimeoutMillis: 3000 });
      let bouncer = 'unknown';
      try {
        await console.connect();
        bouncer = Object.values((await console.query('SHOW VERSION')).rows[0] ?? {})[0] ?? 'unknown';
      } catch {
        // The admin console may be closed to this user: the version is only for the record.
      } finally {
        await console.end().catch(() => undefined);
      }
      return { version: `${bouncer}, in front of PostgreSQL ${server}` };
    } finally {
      await client.end();
    }
  }
  const nodes = hostParts(url).hosts.length;
  const statuses = [];
  for (let index = 0; index < nodes; index++) {
    const connection = await drivers.bench.mysql2Promise.createConnection({ uri: nodeUrl(url, index), connectTimeout: 3000 });
    try {
      const [[row]] = await connection.query('SELECT VERSION() AS version');
      const [status] = await connection.query("SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_ready', 'wsrep_cluster_size', 'wsrep_provider_version')");
      const values = Object.fromEntries(status.map((s) => [s.Variable_name, s.Value]));
      if (values.wsrep_ready !== 'ON') throw new Error(`node ${index + 1} is not a synced Galera node (wsrep_ready ${values.wsrep_ready ?? 'missing'})`);
      statuses.push({ version: row.version, provider: values.wsrep_provider_version, size: values.wsrep_cluster_size });
    } finally {
      await connection.end();
    }
  }
  return { version: `MariaDB ${statuses[0].version}, Galera ${statuses[0].provider}, ${statuses[0].size} nodes`, nodes };
}

/** The engine, reachable: started by its script when it does not answer and its URL is the script's. */
async function reach(engine, url) {
  try {
    return { url, started: false, ...(await probe(engine, url)) };
  } catch (firstError) {
    if (url !== DEFAULT_URLS[engine]) return { url, problem: String(firstError.message ?? firstError) };
    const script = path.join(LIBRARY_DIR, SCRIPTS[engine]);
    log(`  ${engine} does not answer (${firstError.message}): starting it with ${SCRIPTS[engine]} start`);
    try {
      const { stdout } = await run(script, ['start'], { timeout: 15 * 60_000 });
      const printed = stdout.trim().split('\n').pop();
      return { url: printed, started: true, ...(await probe(engine, printed)) };
    } catch (error) {
      return {
        url,
        problem: `${firstError.message}; ${SCRIPTS[engine]} start failed: ${String(error.stderr ?? error.message ?? error)
          .trim()
          .split('\n')
          .slice(-3)
          .join(' ')}`,
      };
    }
  }
}

async function dropTable(engine, url) {
  if (engine === 'pgbouncer') {
    const client = new drivers.bench.pg.Client({ connectionString: url });
    await client.connect();
    try {
      await client.query(`DROP TABLE IF EXISTS "${SCALE_OUT_TABLE}"`);
    } finally {
      await client.end();
    }
    return;
  }
  const connection = await drivers.bench.mysql2Promise.createConnection({ uri: nodeUrl(url, 0) });
  try {
    await connection.query(`DROP TABLE IF EXISTS \`${SCALE_OUT_TABLE}\``);
  } finally {
    await connection.end();
  }
}

/** Express apps, one per store URL, each with its own smart-session-store. */
async function openApps(urls, options) {
  // The table takes every mode: a lock_version column for optimistic (atomic and pessimistic writes bump it too).
  const creator = new SmartSessionStore(smartOptions({ url: urls[0], table: SCALE_OUT_TABLE, locking: 'optimistic', createTable: true }));
  await creator.ready();
  await creator.close();
  const apps = [];
  for (const url of urls) {
    const store = new SmartSessionStore(smartOptions({ url, table: SCALE_OUT_TABLE, ...options }));
    await store.ready();
    const app = await startApp(store);
    apps.push({
      app,
      close: async () => {
        await app.close();
        await store.close();
      },
    });
  }
  return apps;
}

/** Writing requests per second with the connections shared out over `apps`, one load generator per app, all at once. */
async function writeThroughput(ctx, apps, workers) {
  const { connections, seconds, warmupSeconds, repeats } = ctx.config.scaleout;
  const shares = apps.map((_, index) => Math.floor(connections / apps.length) + (index < connections % apps.length ? 1 : 0));
  const cookies = [];
  for (const [index, { app }] of apps.entries()) cookies.push(await createSessions(app, shares[index]));
  const runs = [];
  for (let repeat = 0; repeat < repeats; repeat++) {
    const job = (index, length) => ({ origin: apps[index].app.origin, path: '/write', cookies: cookies[index], connections: shares[index], seconds: length });
    if (repeat === 0) await Promise.all(apps.map((_, index) => workers[index].run(job(index, warmupSeconds))));
    const errorsBefore = apps.map(({ app }) => app.stats.errors);
    const results = await Promise.all(apps.map((_, index) => workers[index].run(job(index, seconds))));
    runs.push({
      reqPerSec: round(results.reduce((sum, r) => sum + r.reqPerSec, 0)),
      perApp: results.map((r) => round(r.reqPerSec)),
      p99: Math.max(...results.map((r) => r.latency.p99)),
      non2xx: results.reduce((sum, r) => sum + r.non2xx, 0),
      errors: results.reduce((sum, r) => sum + r.errors, 0),
      appErrors: apps.reduce((sum, { app }, index) => sum + app.stats.errors - errorsBefore[index], 0),
    });
  }
  const best = runs.reduce((a, b) => (b.reqPerSec > a.reqPerSec ? b : a));
  return { ...best, runs };
}

/** N parallel requests on one session, request k through app k mod apps; the share of keys the session kept. */
async function survival(ctx, apps) {
  const { rounds, parallel, maxDelayMs } = ctx.config.scaleout;
  let kept = 0;
  let failed = 0;
  for (let r = 0; r < rounds; r++) {
    const [cookie] = await createSessions(apps[r % apps.length].app, 1);
    const responses = await Promise.all(range(parallel).map((k) => get(`${apps[k % apps.length].app.origin}/set?k=${k}&maxDelay=${maxDelayMs}`, cookie)));
    failed += responses.filter((response) => response.status !== 200).length;
    const keys = new Set(JSON.parse((await get(`${apps[(r + 1) % apps.length].app.origin}/keys`, cookie)).body));
    kept += range(parallel).filter((k) => keys.has(`k${k}`)).length;
  }
  const total = parallel * rounds;
  return { keptPercent: round((kept / total) * 100, 1), kept, total, failed };
}

export async function scaleOut(ctx) {
  const { urls } = ctx.config;
  const engines = {};
  const rows = [];
  const workers = [0, 1, 2].map(() => startWorker());
  try {
    await Promise.all(workers.map((worker) => worker.ready));
    for (const engine of ['pgbouncer', 'galera']) {
      const reached = await reach(engine, urls[engine]);
      engines[engine] = reached;
      if (reached.problem !== undefined) {
        log(`  ${engine} unreachable (skipped): ${reached.problem}`);
        continue;
      }
      log(`  ${engine}: ${reached.version}${reached.started ? ' (started by its script)' : ''}`);
      await dropTable(engine, reached.url);
      const setups =
        engine === 'pgbouncer'
          ? [
              { setup: 'through PgBouncer (transaction mode)', urls: [reached.url], options: {} },
              ...(ctx.reachable.postgres ? [{ setup: 'PostgreSQL directly (reference)', urls: [urls.postgres], options: {} }] : []),
            ]
          : [
              {
                setup: `${reached.nodes} apps, one per node (writes spread over the nodes)`,
                urls: range(reached.nodes).map((i) => rotated(reached.url, i)),
                options: { syncWait: true },
              },
              { setup: 'one app on node 1 only (reference)', urls: [nodeUrl(reached.url, 0)], options: { syncWait: true } },
            ];
      try {
        for (const { setup, urls: storeUrls, options } of setups) {
          const row = { engine, setup, apps: storeUrls.length, survival: {} };
          let apps = await openApps(storeUrls, { ...options, locking: 'atomic' });
          try {
            row.write = await writeThroughput(ctx, apps, workers);
          } finally {
            for (const app of apps) await app.close();
          }
          for (const mode of MODES) {
            apps = await openApps(storeUrls, { ...options, locking: mode });
            try {
              row.survival[mode] = await survival(ctx, apps);
            } finally {
              for (const app of apps) await app.close();
            }
          }
          rows.push(row);
          log(
            `  scale-out     ${engine.padEnd(9)} ${setup.padEnd(48)} write ${row.write.reqPerSec} req/s (p99 ${row.write.p99} ms${row.write.non2xx || row.write.errors ? `, non-2xx ${row.write.non2xx}, errors ${row.write.errors}` : ''})  ` +
              MODES.map(
                (mode) => `${mode} ${row.survival[mode].keptPercent}% kept${row.survival[mode].failed ? ` (${row.survival[mode].failed} failed)` : ''}`,
              ).join('  '),
          );
        }
      } finally {
        await dropTable(engine, reached.url).catch((error) => log(`  dropping ${SCALE_OUT_TABLE} on ${engine} failed: ${error.message}`));
        if (engine === 'pgbouncer' && ctx.reachable.postgres) await dropTable('pgbouncer', urls.postgres).catch(() => undefined);
      }
    }
  } finally {
    for (const worker of workers) worker.stop();
  }
  const failover = await failovers(urls);
  const { connections, seconds, repeats, rounds, parallel } = ctx.config.scaleout;
  return { connections, seconds, repeats, rounds, parallel, engines, rows, failover };
}
