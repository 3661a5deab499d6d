/**
 * Part of the scale-out section: a failover under load. A PostgreSQL primary
 * with a streaming standby (scripts/postgres-replica.sh) and a Redis master
 * with replicas under Sentinel (scripts/redis-sentinel.sh): 20 writers save
 * their own sessions without pause through one store; the primary is killed
 * with SIGKILL and the standby promoted by the script; each writer goes on
 * until it has seen 3 saves succeed after the failover.
 *
 * Measured, per setting (PostgreSQL synchronous and asynchronous replication;
 * Redis with `waitReplicas: 1` and without): how long the script's failover
 * took (kill to promotion seen), the seconds from the first failed save to
 * the last, the failed calls, the acknowledged saves, and how many of those
 * a fresh store cannot read back (lost). Each run restores its setup first.
 *
 * A setup that does not answer is started by its script when its URL is the
 * script's own (root and apt-get may be needed), else reported unreachable.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { promisify } from 'node:util';
import { SessionStore } from 'smart-session-store';
import { LIBRARY_DIR } from './drivers.mjs';
import { log, round } from './util.mjs';

const run = promisify(execFile);
export const FAILOVER_TABLE = 'bench_failover';
const WRITERS = 20;
const SAVES_AFTER = 3;
const LIMIT_MS = 60_000;

/** What the scripts print. */
export const FAILOVER_DEFAULT_URLS = {
  'postgres-failover': 'postgres://postgres@127.0.0.1:5442,127.0.0.1:5443/test?target_session_attrs=read-write',
  'redis-sentinel': 'redis+sentinel://127.0.0.1:26390,127.0.0.1:26391,127.0.0.1:26392/sessions',
};
const SCRIPTS = { 'postgres-failover': 'scripts/postgres-replica.sh', 'redis-sentinel': 'scripts/redis-sentinel.sh' };
const SETTINGS = {
  'postgres-failover': [
    { setting: 'synchronous replication', options: {}, command: undefined, safe: true },
    { setting: 'asynchronous replication', options: {}, command: ['sync', 'off'], safe: false },
  ],
  'redis-sentinel': [
    { setting: 'waitReplicas: 1', options: { waitReplicas: 1 }, command: undefined, safe: true },
    { setting: 'no WAIT (asynchronous)', options: {}, command: undefined, safe: false },
  ],
};

const cookie = () => ({ originalMaxAge: 3_600_000, expires: new Date(Date.now() + 3_600_000).toISOString(), path: '/' });
const script = (engine) => path.join(LIBRARY_DIR, SCRIPTS[engine]);

/** A store on the setup that answers, or why not. */
async function reach(engine, url) {
  const answers = async (candidate) => {
    const store = new SessionStore({ url: candidate, table: FAILOVER_TABLE, autopurge: false, connectTimeout: 3 });
    try {
      if (!candidate.startsWith('redis')) await store.createTable();
      await store.save('bench-probe', { cookie: cookie() });
      await store.destroy('bench-probe');
    } finally {
      await store.close();
    }
  };
  try {
    await answers(url);
    return { url, started: false };
  } catch (firstError) {
    if (url !== FAILOVER_DEFAULT_URLS[engine]) return { url, problem: String(firstError.message ?? firstError) };
    log(`  ${engine} does not answer (${firstError.message}): starting it with ${SCRIPTS[engine]} start`);
    try {
      const { stdout } = await run(script(engine), ['start'], { timeout: 10 * 60_000 });
      const printed = stdout.trim().split('\n').pop();
      await answers(printed);
      return { url: printed, started: true };
    } catch (error) {
      return {
        url,
        problem: `${firstError.message}; ${SCRIPTS[engine]} start failed: ${String(error.stderr ?? error.message ?? error)
          .trim()
          .split('\n')
          .slice(-2)
          .join(' ')}`,
      };
    }
  }
}

/** One failover under 20 writers; what it cost. */
async function measure(engine, url, { options, command }) {
  await run(script(engine), ['restore'], { timeout: 5 * 60_000 });
  if (command !== undefined) await run(script(engine), command, { timeout: 60_000 });
  const store = new SessionStore({ url, table: FAILOVER_TABLE, autopurge: false, ...options });
  let failedOver = false;
  let firstFailure;
  let lastFailure;
  let failed = 0;
  let stuck = 0;
  const prefix = `bench-${engine}-${Date.now()}`;
  const writer = async (index) => {
    const sid = `${prefix}-${index}`;
    const keys = [];
    await store.save(sid, { cookie: cookie() });
    const limit = Date.now() + LIMIT_MS;
    for (let n = 0, after = 0; !(failedOver && after >= SAVES_AFTER); n++) {
      if (Date.now() > limit) {
        stuck++;
        break;
      }
      const wasFailedOver = failedOver;
      try {
        const loaded = await store.load(sid);
        await store.save(sid, { ...loaded.session, [`k${n}`]: n }, loaded.state);
        keys.push(`k${n}`);
        if (wasFailedOver) after++;
      } catch {
        failed++;
        firstFailure ??= performance.now();
        lastFailure = performance.now();
        await sleep(20);
      }
    }
    return { sid, keys };
  };
  let failoverMs;
  try {
    const writers = Array.from({ length: WRITERS }, (_, index) => writer(index));
    await sleep(1000);
    const started = performance.now();
    await run(script(engine), ['failover'], { timeout: 5 * 60_000 });
    failoverMs = performance.now() - started;
    failedOver = true;
    const acknowledged = await Promise.all(writers);
    const reader = new SessionStore({ url, table: FAILOVER_TABLE, autopurge: false });
    let lost = 0;
    let saves = 0;
    try {
      for (const { sid, keys } of acknowledged) {
        const loaded = await reader.load(sid);
        saves += keys.length;
        lost += keys.filter((key) => loaded?.session[key] === undefined).length;
        await reader.destroy(sid);
      }
    } finally {
      await reader.close();
    }
    return {
      failoverSeconds: round(failoverMs / 1000, 2),
      failingSeconds: firstFailure === undefined ? 0 : round((lastFailure - firstFailure) / 1000, 2),
      failed,
      saves,
      lost,
      stuck,
    };
  } finally {
    await store.close();
  }
}

/** Every setting of both setups; the setups left restored (a standby again, synchronous). */
export async function failovers(urls) {
  const engines = {};
  const rows = [];
  for (const engine of ['postgres-failover', 'redis-sentinel']) {
    const reached = await reach(engine, urls[engine]);
    engines[engine] = reached;
    if (reached.problem !== undefined) {
      log(`  ${engine} unreachable (skipped): ${reached.problem}`);
      continue;
    }
    try {
      for (const setting of SETTINGS[engine]) {
        const row = { engine, setting: setting.setting, safe: setting.safe, ...(await measure(engine, reached.url, setting)) };
        rows.push(row);
        log(
          `  failover      ${engine.padEnd(17)} ${setting.setting.padEnd(26)} failover ${row.failoverSeconds} s, saves failing for ${row.failingSeconds} s (${row.failed} failed calls), ${row.saves} acknowledged, ${row.lost} lost${row.stuck ? `, ${row.stuck} writers never recovered` : ''}`,
        );
      }
    } finally {
      await run(script(engine), ['restore'], { timeout: 5 * 60_000 }).catch((error) => log(`  ${SCRIPTS[engine]} restore failed: ${error.message}`));
    }
  }
  return { writers: WRITERS, engines, rows };
}
