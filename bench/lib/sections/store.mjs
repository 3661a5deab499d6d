/**
 * 4. Store level, without HTTP: smart-session-store's express adapter (what
 * express-session calls: get, set, touch) with 50 concurrent callers, each on
 * its own ~1 KB session, next to the floor: the same driver the library loads,
 * doing one SELECT or one UPDATE by primary key on the same table, same pool
 * size (10), same 50 callers.
 *
 *   get             adapter.get(sid)                      floor: SELECT data, expires_at WHERE id = ? (+ JSON parse)
 *   set (changed)   one key changed, adapter.set(sid, s)  floor: UPDATE data, expires_at WHERE id = ? (whole JSON)
 *   set (unchanged) adapter.set(sid, s), nothing changed
 *   touch           adapter.touch(sid, s)
 */
import path from 'node:path';
import { createRequire } from 'node:module';
import { randomBytes } from 'node:crypto';
import { SmartSessionStore } from 'smart-session-store/express';
import { makeProfile } from '../app.mjs';
import { since, snapshot } from '../counters.mjs';
import { LIBRARY_DIR, drivers } from '../drivers.mjs';
import { COUNTER, POOL_SIZE, SMART_BACKENDS, SMART_TABLE, smartOptions, smartUrl } from '../stores.mjs';
import { log, range, round, runFor, viaCallback } from '../util.mjs';

const DAY_MS = 24 * 3600 * 1000;
const TABLE = SMART_TABLE('atomic');

function sessionData(i) {
  return { cookie: { originalMaxAge: DAY_MS, expires: new Date(Date.now() + DAY_MS).toISOString(), httpOnly: true, path: '/' }, profile: makeProfile(i) };
}

/** The raw driver doing one statement by primary key: the best any store on this table could do. */
async function openFloor(ctx, backend) {
  const expires = () => Date.now() + DAY_MS;
  if (backend === 'postgres') {
    const pool = new drivers.library.pg.Pool({ connectionString: ctx.config.urls.postgres, max: POOL_SIZE });
    pool.on('error', () => undefined);
    return {
      insert: (id, text) => pool.query(`INSERT INTO "${TABLE}" (id, data, expires_at) VALUES ($1, $2, $3)`, [id, text, new Date(expires())]),
      select: async (id) => (await pool.query(`SELECT data, expires_at FROM "${TABLE}" WHERE id = $1`, [id])).rows[0].data,
      update: (id, text) => pool.query(`UPDATE "${TABLE}" SET data = $2, expires_at = $3 WHERE id = $1`, [id, text, new Date(expires())]),
      close: () => pool.end(),
      note: `pg Pool (max ${POOL_SIZE}); the json column arrives parsed by pg`,
    };
  }
  if (backend === 'mysql') {
    const mysql = createRequire(path.join(LIBRARY_DIR, 'package.json'))('mysql2/promise');
    const pool = mysql.createPool({ uri: ctx.config.urls.mysql, connectionLimit: POOL_SIZE, charset: 'utf8mb4_unicode_ci' });
    return {
      insert: (id, text) => pool.query(`INSERT INTO \`${TABLE}\` (id, data, expires_at) VALUES (?, ?, ?)`, [id, text, expires()]),
      select: async (id) => JSON.parse((await pool.query(`SELECT data, expires_at FROM \`${TABLE}\` WHERE id = ?`, [id]))[0][0].data),
      update: (id, text) => pool.query(`UPDATE \`${TABLE}\` SET data = ?, expires_at = ? WHERE id = ?`, [text, expires(), id]),
      close: () => pool.end(),
      note: `mysql2 pool (connectionLimit ${POOL_SIZE}), query(); JSON.parse of the LONGTEXT`,
    };
  }
  const db = new drivers.library.Database(path.join(ctx.sqliteDir, 'smart.db'));
  db.pragma('journal_mode = WAL');
  db.pragma('busy_timeout = 5000');
  const insert = db.prepare(`INSERT INTO "${TABLE}" (id, data, expires_at) VALUES (?, ?, ?)`);
  const select = db.prepare(`SELECT data, expires_at FROM "${TABLE}" WHERE id = ?`);
  const update = db.prepare(`UPDATE "${TABLE}" SET data = ?, expires_at = ? WHERE id = ?`);
  return {
    insert: async (id, text) => insert.run(id, text, expires()),
    select: async (id) => JSON.parse(select.get(id).data),
    update: async (id, text) => update.run(text, expires(), id),
    close: async () => db.close(),
    note: 'better-sqlite3, one connection (synchronous: no pool), prepared once; JSON.parse of the TEXT',
  };
}

/** The six operations of this section on one backend, each for caller i; ready to run. */
export async function prepareStoreOps(ctx, backend, callers) {
  const store = new SmartSessionStore(smartOptions({ url: smartUrl(ctx, backend), table: TABLE, locking: 'atomic' }));
  await store.createTable();
  const floor = await openFloor(ctx, backend);
  const close = async () => {
    await floor.close();
    await store.close();
  };
  try {
    const tag = randomBytes(4).toString('hex');
    const sids = range(callers).map((i) => `store-level-${tag}-${i}`);
    const floorIds = range(callers).map((i) => `floor-${tag}-${i}`);
    const get = (sid) => viaCallback((cb) => store.get(sid, cb));
    const set = (sid, data) => viaCallback((cb) => store.set(sid, data, cb));
    const touch = (sid, data) => viaCallback((cb) => store.touch(sid, data, cb));
    for (const i of range(callers)) {
      await set(sids[i], sessionData(i));
      await floor.insert(floorIds[i], JSON.stringify(sessionData(i)));
    }
    // Each caller holds its session as loaded, as express-session does between get and set.
    const loaded = await Promise.all(sids.map((sid) => get(sid)));
    const floorDocs = await Promise.all(floorIds.map((id) => floor.select(id)));
    const ops = {
      get: (i) => get(sids[i]),
      'set (changed)': (i) => {
        loaded[i].hits = (loaded[i].hits ?? 0) + 1;
        return set(sids[i], loaded[i]);
      },
      'set (unchanged)': (i) => set(sids[i], loaded[i]),
      touch: (i) => touch(sids[i], loaded[i]),
      'floor SELECT': (i) => floor.select(floorIds[i]),
      'floor UPDATE': (i) => {
        floorDocs[i].hits = (floorDocs[i].hits ?? 0) + 1;
        return floor.update(floorIds[i], JSON.stringify(floorDocs[i]));
      },
    };
    return { ops, floorNote: floor.note, close };
  } catch (error) {
    await close();
    throw error;
  }
}

export const STORE_OPS = ['get', 'floor SELECT', 'set (changed)', 'floor UPDATE', 'set (unchanged)', 'touch'];

export async function storeLevel(ctx) {
  const { callers, warmupSeconds, seconds, repeats } = ctx.config.store;
  const backends = SMART_BACKENDS.filter((b) => ctx.reachable[b]);
  const rows = [];
  for (const backend of backends) {
    const key = COUNTER[backend];
    const { ops, floorNote, close } = await prepareStoreOps(ctx, backend, callers);
    try {
      const order = STORE_OPS;
      const results = {};
      for (let repeat = 0; repeat < repeats; repeat++) {
        for (const name of repeat % 2 === 0 ? order : [...order].reverse()) {
          if (repeat === 0) await runFor(warmupSeconds, callers, ops[name]);
          const before = snapshot();
          const result = await runFor(seconds, callers, ops[name]);
          result.statementsPerOp = round(since(before, key) / Math.max(1, result.ops), 2);
          (results[name] ??= []).push(result);
        }
      }
      const best = (list) => list.reduce((a, b) => (b.opsPerSec > a.opsPerSec ? b : a));
      const summary = Object.fromEntries(
        Object.entries(results).map(([name, list]) => {
          const b = best(list);
          return [
            name,
            {
              opsPerSec: round(b.opsPerSec),
              statementsPerOp: b.statementsPerOp,
              cpuMicrosPerOp: round(b.cpuMicrosPerOp, 1),
              errors: list.reduce((s, r) => s + r.errors, 0),
              firstError: b.firstError,
              runs: list.map((r) => round(r.opsPerSec)),
            },
          ];
        }),
      );
      const row = {
        backend,
        floor: floorNote,
        ops: summary,
        ratios: {
          getVsFloorSelect: round(summary.get.opsPerSec / summary['floor SELECT'].opsPerSec, 2),
          setVsFloorUpdate: round(summary['set (changed)'].opsPerSec / summary['floor UPDATE'].opsPerSec, 2),
        },
      };
      rows.push(row);
      log(
        `  store level   ${backend.padEnd(9)} ` +
          order.map((name) => `${name} ${summary[name].opsPerSec}/s`).join('  ') +
          `  get/floor ${row.ratios.getVsFloorSelect}  set/floor ${row.ratios.setVsFloorUpdate}`,
      );
    } finally {
      await close();
    }
  }
  return { callers, poolSize: POOL_SIZE, seconds, warmupSeconds, repeats, table: TABLE, rows };
}
