/** What to run and for how long, from the environment. */

export const SECTIONS = ['lost', 'http', 'statements', 'store', 'contention', 'purge', 'scaleout', 'sizes', 'frameworks'];

/** The frameworks the `frameworks` section compares (BENCH_FRAMEWORKS narrows them). */
export const FRAMEWORKS = ['express', 'fastify', 'koa', 'hono'];

const ALIASES = {
  lost: 'lost',
  'lost-updates': 'lost',
  http: 'http',
  throughput: 'http',
  statements: 'statements',
  stmts: 'statements',
  store: 'store',
  'store-level': 'store',
  contention: 'contention',
  purge: 'purge',
  scaleout: 'scaleout',
  'scale-out': 'scaleout',
  sizes: 'sizes',
  size: 'sizes',
  'session-size': 'sizes',
  frameworks: 'frameworks',
  framework: 'frameworks',
};

function flag(name) {
  const value = process.env[name];
  return value !== undefined && value !== '' && value !== '0' && value.toLowerCase() !== 'false';
}

function number(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value === '') return fallback;
  const parsed = Number(value);
  if (!Number.isFinite(parsed) || parsed <= 0) throw new Error(`${name} must be a positive number, got "${value}"`);
  return parsed;
}

/** A comma-separated list, or `undefined` when the variable is unset or empty. */
function list(name) {
  const raw = process.env[name];
  if (raw === undefined || raw.trim() === '') return undefined;
  return raw
    .split(',')
    .map((part) => part.trim().toLowerCase())
    .filter(Boolean);
}

function parseOnly() {
  const raw = process.env.BENCH_ONLY;
  if (raw === undefined || raw.trim() === '') return [...SECTIONS];
  const chosen = new Set();
  for (const part of raw
    .split(',')
    .map((s) => s.trim().toLowerCase())
    .filter(Boolean)) {
    const section = ALIASES[part];
    if (section === undefined) throw new Error(`BENCH_ONLY: unknown section "${part}" (known: ${SECTIONS.join(', ')})`);
    chosen.add(section);
  }
  return SECTIONS.filter((s) => chosen.has(s));
}

/** BENCH_FRAMEWORKS: a subset of {@link FRAMEWORKS}, in their order. */
function parseFrameworks() {
  const chosen = list('BENCH_FRAMEWORKS');
  if (chosen === undefined) return [...FRAMEWORKS];
  for (const name of chosen) if (!FRAMEWORKS.includes(name)) throw new Error(`BENCH_FRAMEWORKS: unknown framework "${name}" (known: ${FRAMEWORKS.join(', ')})`);
  return FRAMEWORKS.filter((f) => chosen.includes(f));
}

/** BENCH_FRAMEWORK_SIZES: session sizes in bytes (default 1 KB and 40 KB). */
function parseFrameworkSizes() {
  const chosen = list('BENCH_FRAMEWORK_SIZES');
  if (chosen === undefined) return [1024, 40 * 1024];
  return chosen.map((part) => {
    const bytes = Number(part);
    if (!Number.isInteger(bytes) || bytes < 256) throw new Error(`BENCH_FRAMEWORK_SIZES: "${part}" is no size in bytes (256 or more)`);
    return bytes;
  });
}

export function loadConfig() {
  const quick = flag('BENCH_QUICK');
  const only = parseOnly();
  return {
    quick,
    only,
    partial: only.length !== SECTIONS.length,
    urls: {
      postgres: process.env.BENCH_POSTGRES_URL ?? process.env.POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
      mysql: process.env.BENCH_MYSQL_URL ?? process.env.MYSQL_URL ?? 'mysql://root@127.0.0.1:3306/test',
      redis: process.env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379',
      // What scripts/pgbouncer.sh and scripts/galera.sh print (PGBOUNCER_URL and GALERA_URL, as the tests use them, work too).
      pgbouncer: process.env.BENCH_PGBOUNCER_URL ?? process.env.PGBOUNCER_URL ?? 'postgres://postgres@127.0.0.1:6432/test',
      galera: process.env.BENCH_GALERA_URL ?? process.env.GALERA_URL ?? 'mysql://root@127.0.0.1:3311,127.0.0.1:3312,127.0.0.1:3313/test',
      // What scripts/postgres-replica.sh and scripts/redis-sentinel.sh print (the tests' variables work too).
      'postgres-failover':
        process.env.BENCH_POSTGRES_FAILOVER_URL ??
        process.env.POSTGRES_FAILOVER_URL ??
        'postgres://postgres@127.0.0.1:5442,127.0.0.1:5443/test?target_session_attrs=read-write',
      'redis-sentinel':
        process.env.BENCH_REDIS_SENTINEL_URL ?? process.env.REDIS_SENTINEL_URL ?? 'redis+sentinel://127.0.0.1:26390,127.0.0.1:26391,127.0.0.1:26392/sessions',
    },
    lost: { rounds: quick ? 3 : 20, parallel: [20, 5], maxDelayMs: 20 },
    statements: { sessions: quick ? 5 : 20 },
    http: {
      connections: 50,
      warmupSeconds: quick ? 0.5 : 2,
      seconds: number('BENCH_HTTP_SECONDS', quick ? 2 : 8),
      repeats: quick ? 1 : 3,
      sessionBytes: 1024,
    },
    store: {
      callers: 50,
      poolSize: 10,
      warmupSeconds: quick ? 0.2 : 0.5,
      seconds: number('BENCH_STORE_SECONDS', quick ? 0.7 : 3),
      repeats: quick ? 1 : 3,
    },
    contention: { writers: 50, rounds: quick ? 3 : 20 },
    sizes: {
      connections: 50,
      warmupSeconds: quick ? 0.5 : 1,
      seconds: number('BENCH_SIZE_SECONDS', quick ? 2 : 6),
      repeats: quick ? 1 : 2,
      sizes: [1024, 10 * 1024, 40 * 1024],
    },
    frameworks: {
      frameworks: parseFrameworks(),
      sizes: parseFrameworkSizes(),
      connections: 50,
      warmupSeconds: quick ? 0.5 : 1,
      seconds: number('BENCH_FRAMEWORK_SECONDS', quick ? 1 : 5),
      // The targets are medians of three repetitions.
      repeats: Math.round(number('BENCH_FRAMEWORK_REPEATS', number('BENCH_REPEATS', quick ? 1 : 3))),
      // BENCH_FASTIFY_ROLLING=0 runs both Fastify layers with `rolling: false` (default: their default, true).
      fastifyRolling: process.env.BENCH_FASTIFY_ROLLING === undefined || process.env.BENCH_FASTIFY_ROLLING === '' ? true : flag('BENCH_FASTIFY_ROLLING'),
    },
    scaleout: {
      // 50 connections in all, shared out over the apps (one per Galera node).
      connections: 50,
      warmupSeconds: quick ? 0.5 : 2,
      seconds: number('BENCH_HTTP_SECONDS', quick ? 2 : 8),
      repeats: quick ? 1 : 3,
      rounds: quick ? 3 : 20,
      parallel: 20,
      maxDelayMs: 20,
    },
    purge: {
      // Expired rows to purge per backend (the figure: 1,000,000), and the live sessions the requests use.
      rows: Math.round(number('BENCH_PURGE_ROWS', quick ? 50_000 : 1_000_000)),
      // The backends to purge (postgres, mysql, sqlite), for a rerun of one; all of them by default.
      backends: list('BENCH_PURGE_BACKENDS'),
      liveSessions: quick ? 200 : 1000,
      // autocannon's connections in the calibration run.
      connections: 50,
      // The paced load opens this many keep-alive sockets before it starts and sends over them in turn:
      // enough that requests never queue in the load generator (a stalled server finds every request that
      // arrived meanwhile waiting on its sockets).
      pacedMaxSockets: 256,
      // Three read-only requests for one writing request.
      paths: ['/read', '/read', '/read', '/write'],
      calibrateSeconds: quick ? 1 : 2,
      // The paced load runs at this share of what the app served flat out (the calibration run).
      loadShare: 0.5,
      // Long enough that the p99 without a purge is no quiet moment of a shared machine: with 8 s, the same code's
      // ratio for MariaDB went from 1.16x to 3.09x between two runs while its p99 during the purge stayed at 52-54 ms.
      baselineSeconds: number('BENCH_PURGE_BASELINE_SECONDS', quick ? 2 : 30),
      // Load before the purge starts, so the purge window holds no connection set-up.
      leadInSeconds: quick ? 0.5 : 1,
      // The load stops after this long even if the purge has not finished.
      maxSeconds: 900,
    },
  };
}
