/**
 * What the numbers were measured on: machine, Node, database servers,
 * package versions, and whether something else was using the CPU.
 */
import os from 'node:os';
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { BENCH_DIR, LIBRARY_DIR, drivers, packageDir, packageVersion } from './drivers.mjs';

export function machine() {
  const cpus = os.cpus();
  return {
    cpus: cpus.length,
    cpuModel: cpus[0]?.model?.trim() ?? 'unknown',
    memoryGiB: +(os.totalmem() / 1024 ** 3).toFixed(1),
    os: `${os.type()} ${os.release()} (${os.platform()} ${os.arch()})`,
    hostname: os.hostname(),
  };
}

/** The machine's CPU time so far, all CPUs (Linux; null elsewhere). */
export function readCpuTimes() {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n')[0];
    const fields = line.trim().split(/\s+/).slice(1).map(Number);
    const idle = fields[3] + (fields[4] ?? 0);
    const total = fields.reduce((a, b) => a + b, 0);
    return { idle, total };
  } catch {
    return null;
  }
}

/** Share of all CPUs busy over `ms` while this process is idle: the load others put on the machine. */
export async function sampleForeignLoad(ms = 1000) {
  const before = readCpuTimes();
  await sleep(ms);
  const after = readCpuTimes();
  const loadavg = os.loadavg().map((v) => +v.toFixed(2));
  if (before === null || after === null) return { busyPercent: null, loadavg };
  const total = after.total - before.total;
  const busy = total === 0 ? 0 : (1 - (after.idle - before.idle) / total) * 100;
  return { busyPercent: +busy.toFixed(1), loadavg };
}

/** Busy share above which the machine is reported as shared. */
export const SHARED_BUSY_PERCENT = 15;

const CLOCK_TICKS = 100;
/** Database servers: the benchmark loads them itself, so their CPU is not counted as someone else's. */
const SERVER_PROCESS = /^(postgres|postmaster|mariadbd|mysqld|redis-server)$/;

function readProcesses() {
  const processes = new Map();
  let entries = [];
  try {
    entries = readdirSync('/proc').filter((name) => /^\d+$/.test(name));
  } catch {
    return null;
  }
  for (const pid of entries) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const comm = stat.slice(stat.indexOf('(') + 1, close);
      const rest = stat.slice(close + 2).split(' ');
      processes.set(Number(pid), { comm, ppid: Number(rest[1]), ticks: Number(rest[11]) + Number(rest[12]) });
    } catch {
      // gone in the meantime
    }
  }
  return processes;
}

/**
 * Watches, every `intervalMs` while the benchmark runs, how much CPU processes
 * that are neither this benchmark (nor its children) nor the database servers
 * use: a test run or a build started by someone else shows up here.
 */
export function startForeignLoadMonitor(intervalMs = 2000) {
  const cpus = os.cpus().length;
  const samples = [];
  const heavy = new Map();
  let previous = readProcesses();
  let previousAt = Date.now();
  const timer = setInterval(() => {
    const current = readProcesses();
    const at = Date.now();
    if (current === null || previous === null) return;
    const ours = (pid) => {
      for (let p = pid, hops = 0; p > 1 && hops < 64; hops++) {
        if (p === process.pid) return true;
        p = current.get(p)?.ppid ?? 0;
      }
      return false;
    };
    let foreignTicks = 0;
    for (const [pid, info] of current) {
      const before = previous.get(pid);
      const delta = info.ticks - (before?.ticks ?? info.ticks);
      // Kernel threads (children of kthreadd, pid 2) do the machine's own I/O work, ours included.
      if (delta <= 0 || ours(pid) || info.ppid === 2 || pid === 2 || SERVER_PROCESS.test(info.comm)) continue;
      foreignTicks += delta;
      heavy.set(info.comm, (heavy.get(info.comm) ?? 0) + delta);
    }
    const seconds = (at - previousAt) / 1000;
    samples.push((foreignTicks / CLOCK_TICKS / (seconds * cpus)) * 100);
    previous = current;
    previousAt = at;
  }, intervalMs);
  timer.unref();
  return {
    stop() {
      clearInterval(timer);
      const mean = samples.length === 0 ? 0 : samples.reduce((a, b) => a + b, 0) / samples.length;
      const top = [...heavy]
        .filter(([, ticks]) => ticks >= CLOCK_TICKS / 10)
        .sort((a, b) => b[1] - a[1])
        .slice(0, 5)
        .map(([comm, ticks]) => ({ process: comm, cpuSeconds: +(ticks / CLOCK_TICKS).toFixed(1) }));
      return {
        samples: samples.length,
        meanPercent: +mean.toFixed(1),
        maxPercent: +Math.max(0, ...samples).toFixed(1),
        busiestOtherProcesses: top,
      };
    },
  };
}

function git(args) {
  try {
    return execFileSync('git', args, { cwd: LIBRARY_DIR, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

/** The library as benchmarked: version, commit, whether its tree had local changes, when dist was built. */
export function libraryInfo() {
  const pkg = JSON.parse(readFileSync(path.join(LIBRARY_DIR, 'package.json'), 'utf8'));
  let distBuiltAt = null;
  try {
    distBuiltAt = statSync(path.join(LIBRARY_DIR, 'dist', 'esm', 'index.js')).mtime.toISOString();
  } catch {
    // not built
  }
  const status = git(['status', '--porcelain', '--', 'src', 'package.json']);
  return {
    version: pkg.version,
    commit: git(['rev-parse', '--short', 'HEAD']),
    uncommittedChangesInSrc: status === null ? null : status.length > 0,
    distBuiltAt,
  };
}

export function packageVersions() {
  const bench = JSON.parse(readFileSync(path.join(BENCH_DIR, 'package.json'), 'utf8'));
  const versions = {};
  for (const name of Object.keys(bench.dependencies)) versions[name] = packageVersion(name, BENCH_DIR);
  const mysqlSessionDir = packageDir('express-mysql-session', BENCH_DIR);
  return {
    bench: versions,
    libraryDrivers: {
      pg: packageVersion('pg', LIBRARY_DIR),
      mysql2: packageVersion('mysql2', LIBRARY_DIR),
      'better-sqlite3': packageVersion('better-sqlite3', LIBRARY_DIR),
      'express-session': packageVersion('express-session', LIBRARY_DIR),
    },
    'mysql2 used by express-mysql-session': mysqlSessionDir === undefined ? null : packageVersion('mysql2', mysqlSessionDir),
  };
}

/** Server versions; an unreachable server is reported as such. */
export async function serverVersions(config, reachable) {
  const versions = {};
  if (reachable.postgres) {
    const client = new drivers.bench.pg.Client({ connectionString: config.urls.postgres });
    await client.connect();
    versions.postgres = (await client.query('SELECT version() AS v')).rows[0].v;
    await client.end();
  } else versions.postgres = 'unreachable';
  if (reachable.mysql) {
    const connection = await drivers.bench.mysql2Promise.createConnection(config.urls.mysql);
    const [rows] = await connection.query('SELECT VERSION() AS v');
    versions.mysql = rows[0].v;
    await connection.end();
  } else versions.mysql = 'unreachable';
  const sqlite = (Database) => {
    if (Database === undefined) return null;
    const db = new Database(':memory:');
    const v = db.prepare('SELECT sqlite_version() AS v').get().v;
    db.close();
    return v;
  };
  versions.sqlite = { library: sqlite(drivers.library.Database), bench: sqlite(drivers.bench.Database) };
  versions.redis = reachable.redis ?? 'unreachable';
  return versions;
}
