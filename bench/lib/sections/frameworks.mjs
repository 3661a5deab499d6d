/**
 * 9. Frameworks: per framework (express, Fastify, Koa, Hono), backend and
 * session size, smart-session-store's own session layer next to the session
 * layer users run today with the peer store of the same backend, and next to
 * the same app with no session layer at all (the ceiling). Read-only requests
 * (GET /read) and writing requests (POST /write, one small key changed);
 * req/s, latency, the server's CPU per request and statements per request.
 *
 * For one framework and one size, every variant on every reachable backend
 * runs at once (one app each, on tables of its own created for it) and the
 * runs alternate between them, so background load spreads evenly; the
 * median of the repeats is reported, every run is kept in the JSON.
 */
import { dropBenchTable } from '../admin.mjs';
import { since, snapshot } from '../counters.mjs';
import { COUNTER, FRAMEWORK_TABLES } from '../stores.mjs';
import { log, median, round } from '../util.mjs';
import { startWorker } from './http.mjs';

export const FRAMEWORK_BACKENDS = ['postgres', 'mysql', 'sqlite', 'redis'];

const KINDS = [
  ['read', 'GET', '/read'],
  ['write', 'POST', '/write'],
];

/** Ratio a ÷ b, two decimals; null when either is missing. */
const over = (a, b) => (a === undefined || b === undefined || a === null || b === null || b === 0 ? null : round(a / b, 2));

function summarize(list) {
  const pick = (get) => round(median(list.map(get)));
  return {
    reqPerSec: pick((r) => r.reqPerSec),
    p50: median(list.map((r) => r.latency.p50)),
    p99: median(list.map((r) => r.latency.p99)),
    serverCpuMicrosPerRequest: pick((r) => r.serverCpuMicrosPerRequest),
    statementsPerRequest: median(list.map((r) => r.statementsPerRequest).filter((v) => v !== null)) ?? null,
    bestReqPerSec: round(Math.max(...list.map((r) => r.reqPerSec))),
    non2xx: list.reduce((s, r) => s + r.non2xx, 0),
    errors: list.reduce((s, r) => s + r.errors, 0),
    missingSessions: list.reduce((s, r) => s + r.missingSessions, 0),
    runs: list,
  };
}

/** The ratios the report shows, per framework, size and backend. */
export function frameworkRatios(rows) {
  const out = [];
  const groups = new Set(rows.map((r) => `${r.framework}|${r.bytes}`));
  for (const group of groups) {
    const [framework, bytesText] = group.split('|');
    const bytes = Number(bytesText);
    const inGroup = rows.filter((r) => r.framework === framework && r.bytes === bytes);
    const none = inGroup.find((r) => r.variant === 'none');
    for (const backend of FRAMEWORK_BACKENDS) {
      const find = (variant) => inGroup.find((r) => r.variant === variant && r.backend === backend);
      const ours = find('ours');
      const peer = find('peer');
      const compat = find('compat');
      if (ours === undefined && peer === undefined) continue;
      out.push({
        framework,
        bytes,
        backend,
        oursVsPeer: { read: over(ours?.read.reqPerSec, peer?.read.reqPerSec), write: over(ours?.write.reqPerSec, peer?.write.reqPerSec) },
        oursVsCeiling: { read: over(ours?.read.reqPerSec, none?.read.reqPerSec), write: over(ours?.write.reqPerSec, none?.write.reqPerSec) },
        peerVsCeiling: { read: over(peer?.read.reqPerSec, none?.read.reqPerSec), write: over(peer?.write.reqPerSec, none?.write.reqPerSec) },
        compatVsPeer:
          compat === undefined ? null : { read: over(compat.read.reqPerSec, peer?.read.reqPerSec), write: over(compat.write.reqPerSec, peer?.write.reqPerSec) },
        cpuOursVsPeer: {
          read: over(ours?.read.serverCpuMicrosPerRequest, peer?.read.serverCpuMicrosPerRequest),
          write: over(ours?.write.serverCpuMicrosPerRequest, peer?.write.serverCpuMicrosPerRequest),
        },
      });
    }
  }
  return out;
}

/** Drops the section's tables (the SQLite files and Redis keys are removed by each variant's close). */
async function dropTables(ctx) {
  for (const backend of ['postgres', 'mysql'].filter((b) => ctx.reachable[b])) {
    for (const table of [FRAMEWORK_TABLES.ours, FRAMEWORK_TABLES.compat, FRAMEWORK_TABLES[backend]]) {
      await dropBenchTable(ctx.config, backend, table).catch((error) => log(`  dropping ${table} on ${backend} failed: ${error.message}`));
    }
  }
}

export async function frameworks(ctx) {
  // Imported here, not at the top: the framework packages and the library's adapters load only when this section runs.
  const { createFrameworkSessions, FRAMEWORK_VARIANTS, startFrameworkVariant, variantLabel } = await import('../framework-apps.mjs');
  const { frameworks: chosen, sizes, connections, warmupSeconds, seconds, repeats, fastifyRolling } = ctx.config.frameworks;
  const backends = FRAMEWORK_BACKENDS.filter((b) => ctx.reachable[b]);
  const worker = startWorker();
  await worker.ready;
  const rows = [];
  const failed = [];
  try {
    for (const framework of chosen) {
      for (const bytes of sizes) {
        await dropTables(ctx);
        const opened = [];
        try {
          const wanted = [
            ...backends.flatMap((backend) => FRAMEWORK_VARIANTS[framework].filter((v) => v !== 'none').map((variant) => ({ variant, backend }))),
            { variant: 'none', backend: null },
          ];
          for (const { variant, backend } of wanted) {
            const label = variantLabel(framework, variant, backend);
            let app;
            try {
              app = await startFrameworkVariant(ctx, { framework, variant, backend, bytes });
              const cookies = await createFrameworkSessions(app.origin, connections);
              opened.push({ framework, variant, backend, label, app, cookies, runs: { read: [], write: [] } });
            } catch (error) {
              // One layer that cannot run (a build in progress, a server gone) is reported; the others go on.
              log(`  frameworks: ${framework} ${label} ${backend ?? ''} ${bytes} B could not start: ${error?.stack ?? error}`);
              failed.push({ framework, variant, backend, bytes, error: String(error?.message ?? error) });
              await app?.close().catch(() => undefined);
            }
          }
          for (let repeat = 0; repeat < repeats; repeat++) {
            for (const [kind, method, path] of KINDS) {
              // Alternate the order between repeats so no variant always runs first.
              const order = repeat % 2 === 0 ? opened : [...opened].reverse();
              for (const entry of order) {
                const job = { origin: entry.app.origin, path, method, cookies: entry.cookies, connections };
                if (repeat === 0) await worker.run({ ...job, seconds: warmupSeconds });
                const key = entry.backend === null ? null : COUNTER[entry.backend];
                const missingBefore = entry.app.stats.missing;
                const before = snapshot();
                const cpuBefore = process.cpuUsage();
                const result = await worker.run({ ...job, seconds });
                const cpu = process.cpuUsage(cpuBefore);
                // CPU of the server process (user + system, all its threads) per request: the load generator runs elsewhere.
                result.serverCpuMicrosPerRequest = round((cpu.user + cpu.system) / Math.max(1, result.total));
                result.statementsPerRequest = key === null ? null : round(since(before, key) / Math.max(1, result.total), 2);
                result.missingSessions = entry.app.stats.missing - missingBefore;
                entry.runs[kind].push(result);
                log(
                  `  fw ${framework.padEnd(7)} ${String(bytes).padStart(6)} B ${kind.padEnd(5)} ${entry.label.padEnd(52)} ${(entry.backend ?? '–').padEnd(8)} ` +
                    `${round(result.reqPerSec)} req/s  p99 ${result.latency.p99} ms  server CPU ${result.serverCpuMicrosPerRequest} µs/req` +
                    (result.non2xx || result.errors ? `  (non-2xx ${result.non2xx}, errors ${result.errors})` : ''),
                );
              }
            }
          }
        } finally {
          for (const entry of opened) await entry.app.close().catch((error) => log(`  closing ${entry.label} failed: ${error.message}`));
          await dropTables(ctx);
        }
        for (const entry of opened) {
          rows.push({
            framework,
            bytes,
            variant: entry.variant,
            backend: entry.backend,
            label: entry.label,
            mode: entry.app.mode,
            appErrors: entry.app.stats.errors,
            firstAppError: entry.app.stats.firstError,
            read: summarize(entry.runs.read),
            write: summarize(entry.runs.write),
          });
        }
      }
    }
  } finally {
    worker.stop();
  }
  return {
    frameworks: chosen,
    sizes,
    backends,
    connections,
    seconds,
    warmupSeconds,
    repeats,
    fastifyRolling,
    variants: Object.fromEntries(chosen.map((f) => [f, FRAMEWORK_VARIANTS[f]])),
    labels: Object.fromEntries(chosen.map((f) => [f, Object.fromEntries(FRAMEWORK_VARIANTS[f].map((v) => [v, variantLabel(f, v, null)]))])),
    rows,
    ratios: frameworkRatios(rows),
    failed,
  };
}
