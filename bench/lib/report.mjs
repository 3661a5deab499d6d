/**
 * Writes a run's results: <date>.json (everything), <date>.md (tables, ratios
 * against the targets) and the SVG charts.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { barChart } from './svg.mjs';
import { BACKEND_LABEL, PEER_OF } from './stores.mjs';
import { round } from './util.mjs';

export const TARGETS = {
  readVsPeer: 1.3,
  writeVsPeer: 1.0,
  // Sessions of about 40 KB, one small key changed: writing req/s vs the peer, and the write p99 at most the peer's.
  largeWriteVsPeer: 1.2,
  largeWriteP99VsPeer: 1.0,
  getVsFloor: 0.8,
  setVsFloor: 0.8,
  statementsPerRead: 1,
  // p99 latency of requests while a purge runs, at most this many times the p99 without one.
  purgeP99VsWithout: 2,
  // Frameworks (express and Fastify): our own session layer against the framework's layer with the same-backend peer,
  // medians of the repeats; and its reads against the same app with no session layer.
  frameworkReadVsPeer1k: 1.6,
  frameworkWriteVsPeer1k: 1.3,
  frameworkVsPeer40k: 2.0,
  frameworkReadVsCeiling: 0.5,
};

/** The frameworks whose own layer is held to the targets above (Koa and Hono are reported, with no target). */
const FRAMEWORKS_WITH_TARGETS = ['express', 'fastify'];

const COLORS = { smart: '#1f6feb', peer: '#8c959f', second: '#54aeff', floor: '#bf8700', ok: '#1a7f37', during: '#cf222e' };

const fmt = (value, digits = 0) =>
  value === null || value === undefined ? '–' : Number(value).toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
const ratio = (value) => (value === null || value === undefined ? '–' : `${value.toFixed(2)}x`);
const verdict = (met) => (met === null ? 'n/a' : met ? 'met' : '**missed**');

function table(header, rows) {
  return [`| ${header.join(' | ')} |`, `|${header.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** Every target with its measured value: used by the Markdown and kept in the JSON. */
export function evaluateTargets(results) {
  const targets = [];
  const http = results.results.http;
  if (http !== undefined) {
    for (const backend of ['postgres', 'mysql', 'sqlite', 'redis']) {
      const smart = http.rows.find((r) => r.id === (backend === 'redis' ? 'smart-redis-optimistic' : `smart-${backend}-atomic`));
      const peer = http.rows.find((r) => r.id === PEER_OF[backend]);
      if (smart === undefined || peer === undefined) continue;
      for (const [kind, target] of [
        ['read', TARGETS.readVsPeer],
        ['write', TARGETS.writeVsPeer],
      ]) {
        const value = round(smart[kind].reqPerSec / peer[kind].reqPerSec, 2);
        targets.push({
          metric: `${kind === 'read' ? 'read-only' : 'writing'} req/s vs ${peer.store}`,
          backend,
          smart: smart[kind].reqPerSec,
          reference: peer[kind].reqPerSec,
          unit: 'req/s',
          value,
          target,
          met: value >= target,
        });
      }
    }
  }
  const sizes = results.results.sizes;
  if (sizes !== undefined) {
    const largest = Math.max(...sizes.sizes);
    for (const smart of sizes.rows.filter((r) => r.bytes === largest && r.id.startsWith('smart-'))) {
      const peer = sizes.rows.find((r) => r.bytes === largest && r.id === PEER_OF[smart.backend]);
      if (peer === undefined) continue;
      const value = round(smart.write.reqPerSec / peer.write.reqPerSec, 2);
      targets.push({
        metric: `writing req/s vs ${peer.store}, ${Math.round(largest / 1024)} KB sessions`,
        backend: smart.backend,
        smart: smart.write.reqPerSec,
        reference: peer.write.reqPerSec,
        unit: 'req/s',
        value,
        target: TARGETS.largeWriteVsPeer,
        met: value >= TARGETS.largeWriteVsPeer,
      });
      const p99 = round(smart.write.p99 / peer.write.p99, 2);
      targets.push({
        metric: `write p99 vs ${peer.store}, ${Math.round(largest / 1024)} KB sessions`,
        backend: smart.backend,
        smart: smart.write.p99,
        reference: peer.write.p99,
        unit: 'ms',
        value: p99,
        target: TARGETS.largeWriteP99VsPeer,
        atMost: true,
        met: p99 <= TARGETS.largeWriteP99VsPeer,
      });
    }
  }
  const fw = results.results.frameworks;
  if (fw !== undefined) {
    for (const r of fw.ratios.filter((x) => FRAMEWORKS_WITH_TARGETS.includes(x.framework))) {
      const ours = fw.rows.find((x) => x.framework === r.framework && x.bytes === r.bytes && x.backend === r.backend && x.variant === 'ours');
      const peer = fw.rows.find((x) => x.framework === r.framework && x.bytes === r.bytes && x.backend === r.backend && x.variant === 'peer');
      const none = fw.rows.find((x) => x.framework === r.framework && x.bytes === r.bytes && x.variant === 'none');
      const size = `${Math.round(r.bytes / 1024)} KB`;
      const vsPeer =
        r.bytes === 1024
          ? { read: TARGETS.frameworkReadVsPeer1k, write: TARGETS.frameworkWriteVsPeer1k }
          : r.bytes === 40 * 1024
            ? { read: TARGETS.frameworkVsPeer40k, write: TARGETS.frameworkVsPeer40k }
            : null;
      if (vsPeer !== null && ours !== undefined && peer !== undefined) {
        for (const kind of ['read', 'write']) {
          const value = r.oursVsPeer[kind];
          targets.push({
            metric: `${FRAMEWORK_LABEL[r.framework]}: our layer's ${kind === 'read' ? 'read-only' : 'writing'} req/s vs ${peer.label}, ${size} (median)`,
            backend: r.backend,
            smart: ours[kind].reqPerSec,
            reference: peer[kind].reqPerSec,
            unit: 'req/s',
            value,
            target: vsPeer[kind],
            met: value === null ? null : value >= vsPeer[kind],
          });
        }
      }
      if (ours !== undefined && none !== undefined && r.oursVsCeiling.read !== null) {
        targets.push({
          metric: `${FRAMEWORK_LABEL[r.framework]}: our layer's read-only req/s vs no session layer, ${size} (median)`,
          backend: r.backend,
          smart: ours.read.reqPerSec,
          reference: none.read.reqPerSec,
          unit: 'req/s',
          value: r.oursVsCeiling.read,
          target: TARGETS.frameworkReadVsCeiling,
          met: r.oursVsCeiling.read >= TARGETS.frameworkReadVsCeiling,
        });
      }
    }
  }
  const store = results.results.store;
  if (store !== undefined) {
    for (const row of store.rows) {
      targets.push({
        metric: 'store get vs floor SELECT',
        backend: row.backend,
        smart: row.ops.get.opsPerSec,
        reference: row.ops['floor SELECT'].opsPerSec,
        unit: 'ops/s',
        value: row.ratios.getVsFloorSelect,
        target: TARGETS.getVsFloor,
        met: row.ratios.getVsFloorSelect >= TARGETS.getVsFloor,
      });
      targets.push({
        metric: 'store set (changed, uncontended) vs floor UPDATE',
        backend: row.backend,
        smart: row.ops['set (changed)'].opsPerSec,
        reference: row.ops['floor UPDATE'].opsPerSec,
        unit: 'ops/s',
        value: row.ratios.setVsFloorUpdate,
        target: TARGETS.setVsFloor,
        met: row.ratios.setVsFloorUpdate >= TARGETS.setVsFloor,
      });
    }
  }
  const statements = results.results.statements;
  if (statements !== undefined) {
    for (const row of statements.rows.filter((r) => r.id.startsWith('smart-'))) {
      targets.push({
        metric: `statements per read-only request (${row.mode})`,
        backend: row.backend,
        smart: row.readOnly,
        reference: null,
        unit: 'statements',
        value: row.readOnly,
        target: TARGETS.statementsPerRead,
        met: row.readOnly <= TARGETS.statementsPerRead,
      });
    }
  }
  const purge = results.results.purge;
  if (purge?.measured) {
    for (const row of purge.backends) {
      targets.push({
        metric: 'p99 during purge vs without',
        backend: row.backend,
        smart: row.p99During,
        reference: row.p99Without,
        unit: 'ms',
        digits: 1,
        value: row.ratio,
        target: TARGETS.purgeP99VsWithout,
        atMost: true,
        met: row.ratio === null ? null : row.ratio <= TARGETS.purgeP99VsWithout,
      });
    }
  }
  return targets;
}

function header(results) {
  const env = results.environment;
  const m = env.machine;
  const s = env.servers;
  const lib = env.library;
  const lines = [
    `# smart-session-store benchmark, ${results.date}${results.quick ? ' (BENCH_QUICK smoke run: few rounds, short durations)' : ''}`,
    '',
    `- **Machine**: ${m.cpus} × ${m.cpuModel}, ${m.memoryGiB} GiB, ${m.os}`,
    `- **Node**: ${env.node}`,
    `- **Servers**: PostgreSQL ${String(s.postgres)
      .split(' on ')[0]
      .replace(
        /^PostgreSQL /,
        '',
      )} · MariaDB ${s.mysql} · SQLite ${s.sqlite.library ?? '–'} (library's better-sqlite3), ${s.sqlite.bench} (peer's) · Redis ${s.redis}`,
    `- **Library**: smart-session-store ${lib.version}, commit ${lib.commit ?? '?'}${lib.uncommittedChangesInSrc ? ' with uncommitted changes in src/' : ''}, dist built ${lib.distBuiltAt ?? '?'}`,
    `- **Load**: ${env.load.note}`,
    `- **Run**: ${results.startedAt} → ${results.finishedAt}; sections: ${results.sections.join(', ')}`,
  ];
  if (Object.keys(env.unreachable).length > 0) lines.push(`- **Skipped** (server unreachable): ${Object.keys(env.unreachable).join(', ')}`);
  lines.push('', 'Timings are reported, never asserted: they depend on the machine and on what else runs on it.');
  return lines.join('\n');
}

function targetsSection(targets) {
  if (targets.length === 0) return '';
  const rows = targets.map((t) => [
    t.metric,
    BACKEND_LABEL[t.backend],
    t.reference === null ? fmt(t.smart, 2) : `${fmt(t.smart, t.digits ?? 0)} vs ${fmt(t.reference, t.digits ?? 0)} ${t.unit}`,
    t.reference === null ? fmt(t.value, 2) : ratio(t.value),
    t.reference === null ? `≤ ${t.target}` : `${t.atMost ? '≤' : '≥'} ${t.target.toFixed(1)}x`,
    verdict(t.met),
  ]);
  return ['## Targets', '', table(['metric', 'backend', 'measured', 'ratio', 'target', ''], rows)].join('\n');
}

function lostSection(lost, chart) {
  const [a, b] = lost.parallel;
  const rows = lost.rows.map((r) => [
    r.id.startsWith('smart-') ? `**${r.store}**` : r.store,
    BACKEND_LABEL[r.backend],
    `${fmt(r.byParallel[a].keptPercent, 1)} %`,
    `${fmt(r.byParallel[b].keptPercent, 1)} %`,
    fmt(r.byParallel[a].medianRoundMs, 1),
    String(r.byParallel[a].errors + r.byParallel[b].errors),
  ]);
  return [
    '## 1. Lost updates',
    '',
    `express 5 + express-session, one session, N parallel requests each setting its own key after a random 0-${lost.maxDelayMs} ms handler delay, ${lost.rounds} rounds; then one request reads the session. Share of the keys kept:`,
    '',
    chart,
    '',
    table(['store', 'backend', `N=${a} kept`, `N=${b} kept`, `median ms per round (N=${a})`, 'failed requests'], rows),
  ].join('\n');
}

/**
 * What express-session's MemoryStore (no storage: JSON text in the process) served, as a ratio of each peer: how
 * much of the peer's request its storage takes, and roughly how far a store can get past that peer.
 */
function memoryReferenceNote(rows) {
  const memory = rows.find((r) => r.id === 'memory');
  if (memory === undefined) return undefined;
  const ratios = Object.entries(PEER_OF).flatMap(([backend, id]) => {
    const peer = rows.find((r) => r.id === id);
    return peer === undefined
      ? []
      : [`${BACKEND_LABEL[backend]} ${ratio(memory.read.reqPerSec / peer.read.reqPerSec)} / ${ratio(memory.write.reqPerSec / peer.write.reqPerSec)}`];
  });
  return `Reference: express-session's MemoryStore keeps sessions as JSON text in this process, so its requests parse and write the same JSON as the peers' and touch no storage. It is no strict upper bound (it defers every callback with \`setImmediate\`, and connect-redis can serve more), but its ratio to a peer shows how much of that peer's request its storage takes. It served ${fmt(memory.read.reqPerSec)} read-only and ${fmt(memory.write.reqPerSec)} writing req/s, as a ratio of each backend's peer (read / write): ${ratios.join(', ')}.`;
}

function httpSection(http, chart) {
  const peerOf = (row) => (row.id.startsWith('smart-') ? http.rows.find((p) => p.id === PEER_OF[row.backend]) : undefined);
  const rows = http.rows.map((r) => {
    const peer = peerOf(r);
    return [
      r.id.startsWith('smart-') ? `**${r.store}**` : r.store,
      BACKEND_LABEL[r.backend],
      fmt(r.read.reqPerSec),
      fmt(r.read.p50),
      fmt(r.read.p99),
      fmt(r.write.reqPerSec),
      fmt(r.write.p50),
      fmt(r.write.p99),
      peer ? ratio(round(r.read.reqPerSec / peer.read.reqPerSec, 2)) : '',
      peer ? ratio(round(r.write.reqPerSec / peer.write.reqPerSec, 2)) : '',
      `${fmt(r.read.statementsPerRequest, 2)} / ${fmt(r.write.statementsPerRequest, 2)}`,
      `${fmt(r.read.serverCpuMicrosPerRequest)} / ${fmt(r.write.serverCpuMicrosPerRequest)}`,
    ];
  });
  const problems = http.rows.filter((r) => r.read.non2xx + r.read.errors + r.write.non2xx + r.write.errors > 0 || r.read.distinctSessions !== http.connections);
  const memoryReference = memoryReferenceNote(http.rows);
  return [
    '## 2. HTTP throughput and latency',
    '',
    `express 5 + express-session in this process; autocannon in a child process, ${http.connections} keep-alive connections, each on its own pre-created ~${http.sessionBytes} B session; ${http.warmupSeconds} s warm-up, then ${http.repeats} × ${http.seconds} s per store and kind, interleaved across stores, best run shown (all runs in the JSON). Latencies in ms. smart-session-store in its default (atomic) mode. Server CPU: user + system time of the server process per request, all its threads (GC helpers included); the load generator runs in its own process. The server's single JavaScript thread is the usual bottleneck, so the store whose requests cost less CPU serves more of them.`,
    '',
    chart,
    '',
    table(
      [
        'store',
        'backend',
        'read req/s',
        'p50',
        'p99',
        'write req/s',
        'p50',
        'p99',
        'read vs peer',
        'write vs peer',
        'statements/req under load (read / write)',
        'server CPU µs/req (read / write)',
      ],
      rows,
    ),
    ...(memoryReference === undefined ? [] : ['', memoryReference]),
    ...(problems.length > 0
      ? [
          '',
          `Check: ${problems.map((r) => `${r.store}: non-2xx ${r.read.non2xx + r.write.non2xx}, errors ${r.read.errors + r.write.errors}, distinct sessions ${r.read.distinctSessions}`).join('; ')}.`,
        ]
      : []),
  ].join('\n');
}

function statementsSection(statements) {
  const rows = statements.rows.map((r) => [
    r.id.startsWith('smart-') ? `**${r.store}**` : r.store,
    BACKEND_LABEL[r.backend],
    fmt(r.create, 2),
    fmt(r.readOnly, 2),
    fmt(r.write, 2),
  ]);
  return [
    '## 3. Statements per request',
    '',
    `Counted at the driver (pg \`Client.query\`, mysql2 \`query\`/\`execute\`/\`ping\`, better-sqlite3 statement \`run\`/\`get\`/\`all\`/\`iterate\` and \`exec\`, node-redis commands), ${statements.sessionsPerStore} requests of each kind one after another, each on its own session. BEGIN, COMMIT and ROLLBACK count as statements (better-sqlite3 runs its transactions' BEGIN and COMMIT as prepared statements, so they are counted too).`,
    '',
    table(['store', 'backend', 'new session', 'read-only request', 'writing request'], rows),
  ].join('\n');
}

function storeSection(store, chart) {
  const cell = (op) => `${fmt(op.opsPerSec)} (${fmt(op.statementsPerOp, 2)})`;
  const rows = store.rows.map((r) => [
    BACKEND_LABEL[r.backend],
    cell(r.ops.get),
    cell(r.ops['floor SELECT']),
    `**${ratio(r.ratios.getVsFloorSelect)}**`,
    cell(r.ops['set (changed)']),
    cell(r.ops['floor UPDATE']),
    `**${ratio(r.ratios.setVsFloorUpdate)}**`,
    cell(r.ops['set (unchanged)']),
    cell(r.ops.touch),
  ]);
  return [
    '## 4. Store level',
    '',
    `smart-session-store's express adapter called as express-session calls it (get, set, touch), ${store.callers} concurrent callers each on its own ~1 KB session, pool of ${store.poolSize}; next to the floor: the same driver the library loads doing one SELECT or one UPDATE by primary key on the same table (\`${store.table}\`), same pool, same callers. ${store.repeats} × ${store.seconds} s each, best shown. ops/s, statements per op in parentheses.`,
    '',
    chart,
    '',
    table(['backend', 'get', 'floor SELECT', 'get / floor', 'set (changed)', 'floor UPDATE', 'set / floor', 'set (unchanged)', 'touch'], rows),
    '',
    ...store.rows.map(
      (r) =>
        `- ${BACKEND_LABEL[r.backend]} floor: ${r.floor}. CPU of the benchmark process per op: get ${fmt(r.ops.get.cpuMicrosPerOp, 1)} µs vs floor SELECT ${fmt(r.ops['floor SELECT'].cpuMicrosPerOp, 1)} µs; set (changed) ${fmt(r.ops['set (changed)'].cpuMicrosPerOp, 1)} µs vs floor UPDATE ${fmt(r.ops['floor UPDATE'].cpuMicrosPerOp, 1)} µs; set (unchanged) ${fmt(r.ops['set (unchanged)'].cpuMicrosPerOp, 1)} µs.`,
    ),
  ].join('\n');
}

function contentionSection(contention) {
  const rows = contention.rows.map((r) => [
    BACKEND_LABEL[r.backend],
    r.mode,
    fmt(r.writesPerSec),
    `${fmt(r.keptPercent, 1)} %`,
    fmt(r.statementsPerWrite, 2),
    r.errors ? `${r.errors} (${r.firstError})` : '0',
  ]);
  return [
    '## 5. Contention',
    '',
    `${contention.writers} concurrent writers on ONE session through the framework-neutral API (\`load\`, set one key of its own, \`save\`), ${contention.rounds} rounds. Writers per second, keys kept, statements per writer (its load and its save; optimistic retries add to it).`,
    '',
    table(['backend', 'locking', 'writes/s', 'keys kept', 'statements per writer', 'errors'], rows),
  ].join('\n');
}

/** What the server did during a purge (PostgreSQL WAL and checkpoints, MariaDB pages read from disk), as a sentence. */
function serverNote(r) {
  const d = r.serverDuringPurge;
  if (d === undefined || d === null) return '';
  if (r.backend === 'postgres') {
    return ` During the purge the server wrote ${fmt(d.walMiB)} MiB of WAL and started ${d.checkpoints} checkpoint${d.checkpoints === 1 ? '' : 's'} (max_wal_size ${r.server.max_wal_size ?? '?'}, autovacuum ${r.server.autovacuum ?? '?'}).`;
  }
  if (r.backend === 'mysql') {
    const perRow = r.purge.removed ? d.bufferPoolReadsFromDisk / r.purge.removed : null;
    const pool = Number(r.server.innodb_buffer_pool_size);
    return (
      ` During the purge InnoDB read ${fmt(d.bufferPoolReadsFromDisk)} pages from disk (${fmt(perRow, 2)} per row removed; buffer pool ${Number.isFinite(pool) ? fmt(pool / 2 ** 20) : '?'} MiB, flush method ${r.server.innodb_flush_method ?? '?'})` +
      ` and wrote ${fmt(d.redoLogMiB)} MiB of redo log.`
    );
  }
  return '';
}

function purgeSection(purge, chart) {
  if (!purge.measured) return ['## 6. Purge', '', `**${purge.note ?? 'not measured'}**`].join('\n');
  const rows = purge.backends.map((r) => [
    BACKEND_LABEL[r.backend],
    fmt(r.rows),
    r.purge.removed === null ? `failed: ${r.purge.error}` : fmt(r.purge.seconds, 1),
    fmt(r.purge.rowsPerSec),
    fmt(r.p99Without, 1),
    fmt(r.p99During, 1),
    `**${ratio(r.ratio)}**`,
    verdict(r.met),
  ]);
  const details = purge.backends.map((r) => {
    const problems = [
      r.purge.removed !== null && r.purge.removed !== r.statsBefore.expired
        ? `removed ${fmt(r.purge.removed)} of ${fmt(r.statsBefore.expired)} expired rows`
        : '',
      r.statsAfter.live !== r.statsBefore.live ? `live sessions ${fmt(r.statsBefore.live)} before, ${fmt(r.statsAfter.live)} after` : '',
      r.missingSessions ? `${r.missingSessions} requests found no session` : '',
      r.during.non2xx + r.during.errors + r.without.non2xx + r.without.errors
        ? `non-2xx ${r.during.non2xx + r.without.non2xx}, failed ${r.during.errors + r.without.errors}`
        : '',
    ].filter(Boolean);
    return (
      `- ${BACKEND_LABEL[r.backend]}: ${fmt(r.rows)} rows inserted in ${fmt(r.insertSeconds, 1)} s; the app served ${fmt(r.load.capacityReqPerSec)} req/s flat out, the load ran at ${fmt(r.load.rate)} req/s ` +
      `(${fmt(r.without.requests)} requests without a purge, ${fmt(r.during.requests)} during it; p50 ${fmt(r.without.latency.p50, 1)} → ${fmt(r.during.latency.p50, 1)} ms, max ${fmt(r.without.latency.max, 1)} → ${fmt(r.during.latency.max, 1)} ms). ` +
      `${fmt(r.purge.batches)} batches of ${fmt(r.purge.removed / Math.max(1, r.purge.batches))} rows on average, ${fmt(r.purge.batchMs.median, 1)} ms from one to the next (median; p99 ${fmt(r.purge.batchMs.p99, 1)} ms, longest ${fmt(r.purge.batchMs.max, 1)} ms). ` +
      `Event-loop delay of the app's process, p99: ${fmt(r.eventLoopWithout.p99, 1)} ms without, ${fmt(r.eventLoopDuring.p99, 1)} ms during the purge. ` +
      `The machine's CPUs (app, load generator and database server together): ${fmt(r.cpuBusyPercentWithout)} % busy without, ${fmt(r.cpuBusyPercentDuring)} % during.` +
      serverNote(r) +
      (problems.length > 0 ? ` **Check**: ${problems.join('; ')}.` : '')
    );
  });
  return [
    '## 6. Purge',
    '',
    `${fmt(purge.rows)} expired rows (~${purge.expiredRowBytes} B sessions, generated by the server in one statement) beside ${fmt(purge.liveSessions)} live ~1 KB sessions in \`bench_purge\`, created by smart-session-store (atomic, pool of 10, autopurge off). ` +
      `\`store.purge()\` with its defaults (no \`batchSize\` passed: at most ${purge.batchSize} rows per statement), on the store the express app runs on, as autopurge would run it. ` +
      `Requests: express 5 + express-session, ${purge.paths.filter((p) => p === '/read').length} read-only for ${purge.paths.filter((p) => p !== '/read').length} writing, each on the next live session, sent by a load generator in another process at a fixed rate: ` +
      `${Math.round(purge.loadShare * 100)} % of what the app served flat out in a ${purge.calibrateSeconds} s autocannon run (${purge.connections} connections), over ${purge.pacedMaxSockets ?? purge.connections} keep-alive connections opened beforehand. ` +
      `Open loop: a request is timed from the instant it was due, so a stall counts for every request that arrived during it. ` +
      `p99 without: ${purge.baselineSeconds} s of that load, no purge; p99 during: the requests due while the purge ran. Latencies in ms; the target is p99 during ≤ ${purge.targetRatio}x p99 without.`,
    '',
    chart,
    '',
    table(['backend', 'expired rows', 'purge s', 'rows/s', 'p99 without', 'p99 during', 'during / without', `≤ ${purge.targetRatio}x`], rows),
    '',
    ...details,
    ...(purge.failed?.length > 0
      ? ['', `**Not measured** (the run failed): ${purge.failed.map((f) => `${BACKEND_LABEL[f.backend]}: ${f.error}`).join('; ')}.`]
      : []),
  ].join('\n');
}

function sizesSection(sizes, writeChart, p99Chart) {
  const rows = sizes.sizes.flatMap((bytes) =>
    ['postgres', 'mysql', 'sqlite', 'redis'].flatMap((backend) => {
      const smart = sizes.rows.find((r) => r.bytes === bytes && r.backend === backend && r.id.startsWith('smart-'));
      const peer = sizes.rows.find((r) => r.bytes === bytes && r.id === PEER_OF[backend]);
      const memory = sizes.rows.find((r) => r.bytes === bytes && r.id === 'memory');
      if (smart === undefined || peer === undefined) return [];
      return [
        [
          `${Math.round(bytes / 1024)} KB`,
          BACKEND_LABEL[backend],
          fmt(smart.read.reqPerSec),
          fmt(peer.read.reqPerSec),
          ratio(smart.read.reqPerSec / peer.read.reqPerSec),
          fmt(smart.write.reqPerSec),
          fmt(peer.write.reqPerSec),
          ratio(smart.write.reqPerSec / peer.write.reqPerSec),
          `${fmt(smart.write.p99)} / ${fmt(peer.write.p99)}`,
          `${fmt(smart.write.serverCpuMicrosPerRequest)} / ${fmt(peer.write.serverCpuMicrosPerRequest)}`,
          memory === undefined ? '–' : ratio(memory.write.reqPerSec / peer.write.reqPerSec),
        ],
      ];
    }),
  );
  return [
    '## 8. Session size',
    '',
    `The HTTP section's runs with sessions of about ${sizes.sizes.map((b) => `${Math.round(b / 1024)} KB`).join(', ')} (a cart of growing length; express-session's cookie included): ${sizes.connections} keep-alive connections, each on its own session; a writing request changes one small key, so the peer writes the whole session back and this store only the change. Best of ${sizes.repeats} × ${sizes.seconds} s per store, kind and size, interleaved. The peer on each backend: ${Object.values(PEER_OF).join(', ')}.`,
    '',
    writeChart,
    '',
    p99Chart,
    '',
    table(
      [
        'session',
        'backend',
        'read req/s',
        'peer',
        'read vs peer',
        'write req/s',
        'peer',
        'write vs peer',
        'write p99 ms (this / peer)',
        'server CPU µs per write (this / peer)',
        'MemoryStore writes vs peer',
      ],
      rows,
    ),
    '',
    "Reference: express-session's MemoryStore ran beside them at each size. It keeps sessions as JSON text in this process: its requests parse and write the same JSON as the peers' (and pay express-session's own hash of the session, twice per request, as every store does) and touch no storage, so its ratio to a peer shows how much of that peer's writing request is storage at all, and roughly how far any store can get past it.",
  ].join('\n');
}

const FRAMEWORK_LABEL = { express: 'express', fastify: 'Fastify', koa: 'Koa', hono: 'Hono' };

/** What each framework's variants are, for the section's text. */
function frameworkVariantsText(fw) {
  const lines = {
    express:
      "**express** 5: `session()` of `smart-session-store/express` (ours); express-session with `SmartSessionStore` (the compatibility path); express-session with the backend's peer store (`resave: false`, `saveUninitialized: false`, so a read-only request calls the store's `touch`); no session layer.",
    fastify: `**Fastify** 5: the \`smartSession\` plugin of \`smart-session-store/fastify\` (ours, without @fastify/session); @fastify/session with @fastify/cookie and the backend's peer store; no session layer. Both layers with \`saveUninitialized: false\` and \`rolling: ${fw.fastifyRolling}\`${fw.fastifyRolling ? " (their default: @fastify/session then saves the whole session on every request, read-only ones too; ours moves an unchanged session's expiry at most once per `touchAfter`; `BENCH_FASTIFY_ROLLING=0` runs both with `rolling: false`)" : ' (`BENCH_FASTIFY_ROLLING=0`: an unchanged session is not saved by either)'}.`,
    koa: "**Koa** 3: `smartSession(options, app)` of `smart-session-store/koa` (ours, without koa-session); koa-session 7 with the peer store of the backend behind a minimal wrapper (its `get`/`set`/`destroy` as promises, nothing else: there is no maintained koa-session store per backend), which is the peer stack the ratios use; koa-session with `SmartSessionStore` as its external store (the compatibility path), beside them; no session layer. koa-session's defaults otherwise (signed cookie, `rolling: false`: a read-only request writes nothing).",
    hono: "**Hono** 4 on @hono/node-server: `HonoSessionStore` of `smart-session-store/hono` (ours); @hono/session (encrypted JWT cookie holding the id, `duration.absolute` one day) with the peer store of the backend as its `useSessionStorage` storage behind a minimal wrapper. @hono/session does not await its storage's `set`, so the wrapper makes a session's next read wait for its write in flight: a connection's next request sees its change, and writes cannot pile up behind answers already sent (its writing requests still answer before their write). No session layer.",
  };
  return fw.frameworks.map((f) => `- ${lines[f]}`);
}

function frameworksSection(fw) {
  const parts = [
    '## 9. Frameworks',
    '',
    `smart-session-store's own session layer per framework, next to the framework's usual session layer with the peer store of the same backend (${Object.values(PEER_OF).join(', ')}) and next to the same app with no session layer at all (the ceiling: the cookie read from the header, the session an object in a Map). Each app: \`GET /read\` reads one key, \`POST /write\` changes one small key, on sessions of about ${fw.sizes.map((b) => `${Math.round(b / 1024)} KB`).join(' and ')} created beforehand through the app's own layer (its own cookie). autocannon in a child process, ${fw.connections} keep-alive connections, each on its own session. For one framework and size, every variant on every backend runs at once and the runs alternate between them; ${fw.warmupSeconds} s warm-up, then ${fw.repeats} × ${fw.seconds} s per variant and kind; the **median** of the repeats is shown (every run in the JSON). Server CPU: user + system time of the server process per request. smart-session-store in its default locking mode (atomic on SQL, optimistic on Redis).`,
    '',
    ...frameworkVariantsText(fw),
  ];
  for (const framework of fw.frameworks) {
    const rows = fw.rows.filter((r) => r.framework === framework);
    if (rows.length === 0) continue;
    const order = fw.variants[framework];
    const sorted = fw.sizes.flatMap((bytes) =>
      [...fw.backends, null].flatMap((backend) =>
        order.flatMap((variant) => rows.filter((r) => r.bytes === bytes && r.backend === backend && r.variant === variant)),
      ),
    );
    const measured = sorted.map((r) => [
      `${Math.round(r.bytes / 1024)} KB`,
      r.backend === null ? '–' : BACKEND_LABEL[r.backend],
      r.variant === 'ours' ? `**${r.label}**` : r.label,
      fmt(r.read.reqPerSec),
      fmt(r.read.serverCpuMicrosPerRequest),
      fmt(r.read.p99),
      fmt(r.write.reqPerSec),
      fmt(r.write.serverCpuMicrosPerRequest),
      fmt(r.write.p99),
      r.backend === null ? '–' : `${fmt(r.read.statementsPerRequest, 2)} / ${fmt(r.write.statementsPerRequest, 2)}`,
    ]);
    const ratios = fw.ratios
      .filter((r) => r.framework === framework)
      .map((r) => [
        `${Math.round(r.bytes / 1024)} KB`,
        BACKEND_LABEL[r.backend],
        `**${ratio(r.oursVsPeer.read)}**`,
        `**${ratio(r.oursVsPeer.write)}**`,
        ratio(r.oursVsCeiling.read),
        ratio(r.oursVsCeiling.write),
        `${ratio(r.peerVsCeiling.read)} / ${ratio(r.peerVsCeiling.write)}`,
        r.compatVsPeer === null ? '–' : `${ratio(r.compatVsPeer.read)} / ${ratio(r.compatVsPeer.write)}`,
        `${ratio(r.cpuOursVsPeer.read)} / ${ratio(r.cpuOursVsPeer.write)}`,
      ]);
    const problems = rows.filter(
      (r) => r.read.non2xx + r.read.errors + r.write.non2xx + r.write.errors + r.read.missingSessions + r.write.missingSessions + r.appErrors > 0,
    );
    parts.push(
      '',
      `### ${FRAMEWORK_LABEL[framework]}`,
      '',
      table(
        [
          'session',
          'backend',
          'layer',
          'read req/s',
          'CPU µs/read',
          'read p99 ms',
          'write req/s',
          'CPU µs/write',
          'write p99 ms',
          'statements/req (read / write)',
        ],
        measured,
      ),
      '',
      table(
        [
          'session',
          'backend',
          'ours ÷ peer, reads',
          'ours ÷ peer, writes',
          'ours ÷ no layer, reads',
          'ours ÷ no layer, writes',
          'peer ÷ no layer (read / write)',
          'compatibility path ÷ peer (read / write)',
          'CPU per request, ours ÷ peer (read / write)',
        ],
        ratios,
      ),
    );
    if (problems.length > 0)
      parts.push(
        '',
        `Check: ${problems
          .map(
            (r) =>
              `${r.label} (${r.backend ?? 'no backend'}, ${Math.round(r.bytes / 1024)} KB): non-2xx ${r.read.non2xx + r.write.non2xx}, errors ${r.read.errors + r.write.errors}, missing sessions ${r.read.missingSessions + r.write.missingSessions}, app errors ${r.appErrors}${r.firstAppError ? ` (${r.firstAppError})` : ''}`,
          )
          .join('; ')}.`,
      );
  }
  if (fw.failed.length > 0)
    parts.push(
      '',
      `**Not measured** (could not start): ${fw.failed.map((f) => `${FRAMEWORK_LABEL[f.framework]} ${f.variant} on ${f.backend ?? 'no backend'}, ${Math.round(f.bytes / 1024)} KB: ${f.error}`).join('; ')}.`,
    );
  return parts.join('\n');
}

function scaleOutSection(scaleout) {
  const engineLabel = { pgbouncer: 'PgBouncer', galera: 'Galera' };
  const engines = Object.entries(scaleout.engines).map(
    ([engine, e]) =>
      `- **${engineLabel[engine]}**: ${e.problem === undefined ? `${e.version}, \`${e.url}\`${e.started ? ' (started by its script for this run)' : ''}` : `unreachable, skipped: ${e.problem}`}`,
  );
  const modes = ['atomic', 'optimistic', 'pessimistic'];
  const rows = scaleout.rows.map((r) => [
    engineLabel[r.engine],
    r.setup,
    `${fmt(r.write.reqPerSec)}${r.apps > 1 ? ` (${r.write.perApp.map((v) => fmt(v)).join(' + ')})` : ''}`,
    fmt(r.write.p99),
    `${r.write.non2xx + r.write.errors}`,
    ...modes.map((mode) => {
      const s = r.survival[mode];
      return s === undefined ? '–' : `${fmt(s.keptPercent, 1)} %${s.failed ? ` (${s.failed} failed)` : ''}`;
    }),
  ]);
  return [
    '## 7. Scale-out: PgBouncer and Galera',
    '',
    ...engines,
    '',
    `Writing requests per second (\`/write\`, one key changed; ${scaleout.connections} keep-alive connections in all, each on its own ~1 KB session, shared out over the apps, one load generator process per app; best of ${scaleout.repeats} × ${scaleout.seconds} s) and survival: ${scaleout.parallel} parallel requests on ONE session, request k through app k mod apps (on Galera, through node k mod 3), ${scaleout.rounds} rounds, keys kept. The Galera stores read with \`syncWait: true\`.`,
    '',
    table(['engine', 'setup', 'write req/s', 'p99 ms', 'non-2xx/errors', 'kept (atomic)', 'kept (optimistic)', 'kept (pessimistic)'], rows),
    ...(scaleout.failover === undefined ? [] : ['', failoverPart(scaleout.failover)]),
  ].join('\n');
}

function failoverPart(failover) {
  const label = { 'postgres-failover': 'PostgreSQL primary + standby', 'redis-sentinel': 'Redis + Sentinel' };
  const engines = Object.entries(failover.engines).map(
    ([engine, e]) =>
      `- **${label[engine]}**: ${e.problem === undefined ? `\`${e.url}\`${e.started ? ' (started by its script for this run)' : ''}` : `unreachable, skipped: ${e.problem}`}`,
  );
  const rows = failover.rows.map((r) => [
    label[r.engine],
    r.setting,
    fmt(r.failoverSeconds, 2),
    fmt(r.failingSeconds, 2),
    `${r.failed}`,
    `${r.saves}`,
    `${r.lost}${r.safe && r.lost > 0 ? ' (should be 0)' : ''}`,
  ]);
  return [
    '### A failover under load',
    '',
    ...engines,
    '',
    `${failover.writers} writers save their own sessions without pause through one store; the primary (master) is killed with SIGKILL and the standby promoted by the setup's script (PostgreSQL: \`pg_ctl promote\` right away; Redis: the Sentinels, after \`down-after-milliseconds\` 2000); each writer goes on until 3 saves succeeded after it. Failover: kill to promotion seen by the script; failing: first failed save to last; lost: acknowledged saves a fresh store cannot read back (must be 0 with synchronous replication or \`waitReplicas\`).`,
    '',
    table(['setup', 'setting', 'failover s', 'failing s', 'failed calls', 'acknowledged', 'lost'], rows),
  ].join('\n');
}

function methodSection(results) {
  const p = results.environment.packages;
  const rows = Object.entries(p.bench).map(([name, version]) => [name, version ?? '–']);
  for (const [name, version] of Object.entries(p.libraryDrivers)) rows.push([`${name} (as loaded by smart-session-store)`, version ?? '–']);
  rows.push(['mysql2 (as loaded by express-mysql-session)', p['mysql2 used by express-mysql-session'] ?? '–']);
  return [
    '## How it was measured',
    '',
    "- Every store is built as its README shows, pools of 10 connections where it takes one; background pruning is off everywhere (smart-session-store's purge is measured in a section of its own). express-session: `resave: false`, `saveUninitialized: false`, `cookie.maxAge` one day, so a read-only request calls the store's `touch`.",
    "- better-sqlite3-session-store gets the same WAL and busy-timeout settings as smart-session-store's own connection. connect-session-knex runs on PostgreSQL through knex + pg (knex finds the server version itself, so the store takes its one-statement upsert path).",
    '- Tables are named `bench_*` and dropped at the end; SQLite files live in a temporary folder; Redis keys under `bench:sess:`.',
    '- Statement counting wraps the drivers in the benchmark process only; its cost (one increment per statement) is the same for every store.',
    '',
    '### Package versions',
    '',
    table(['package', 'version'], rows),
  ].join('\n');
}

function charts(results) {
  const out = {};
  const { lost, http, store, contention, purge, sizes } = results.results;
  const date = results.date;
  if (sizes !== undefined) {
    const groups = (kind, metric) =>
      sizes.sizes.flatMap((bytes) =>
        ['postgres', 'mysql', 'sqlite', 'redis'].flatMap((backend) => {
          const smart = sizes.rows.find((r) => r.bytes === bytes && r.backend === backend && r.id.startsWith('smart-'));
          const peer = sizes.rows.find((r) => r.bytes === bytes && r.id === PEER_OF[backend]);
          if (smart === undefined || peer === undefined) return [];
          return [
            { label: `${BACKEND_LABEL[backend]}, ${Math.round(bytes / 1024)} KB`, note: `vs ${peer.store}`, values: [smart[kind][metric], peer[kind][metric]] },
          ];
        }),
      );
    const series = [
      { name: 'smart-session-store', color: COLORS.smart },
      { name: 'the peer (writes the whole session back)', color: COLORS.peer },
    ];
    const subtitle = `${sizes.connections} connections, one small key changed per writing request; best of ${sizes.repeats} × ${sizes.seconds} s (${date})`;
    out['bench-session-size.svg'] = barChart({
      title: 'Writing requests per second by session size',
      subtitle,
      series,
      groups: groups('write', 'reqPerSec'),
      unit: 'req/s (higher is better)',
    });
    out['bench-session-size-p99.svg'] = barChart({
      title: 'Write p99 latency by session size',
      subtitle,
      series,
      groups: groups('write', 'p99'),
      unit: 'p99 latency in ms (lower is better)',
    });
  }
  if (lost !== undefined) {
    const [a, b] = lost.parallel;
    out['bench-lost-updates.svg'] = barChart({
      title: 'Lost updates: keys kept with parallel requests on one session',
      subtitle: `express 5 + express-session, each request sets its own key after a 0-${lost.maxDelayMs} ms delay, ${lost.rounds} rounds (${date})`,
      series: [
        { name: `N=${a} parallel requests`, color: COLORS.smart },
        { name: `N=${b}`, color: COLORS.second },
      ],
      groups: lost.rows.map((r) => ({
        label: r.store,
        note: BACKEND_LABEL[r.backend],
        highlight: r.id.startsWith('smart-'),
        values: [r.byParallel[a].keptPercent, r.byParallel[b].keptPercent],
        texts: [`${r.byParallel[a].keptPercent}%`, `${r.byParallel[b].keptPercent}%`],
      })),
      max: 100,
      unit: '% of keys kept (higher is better)',
    });
  }
  if (http !== undefined) {
    out['bench-throughput.svg'] = barChart({
      title: 'HTTP throughput through express-session',
      subtitle: `${http.connections} connections, each on its own ~1 KB session; autocannon in another process; best of ${http.repeats} × ${http.seconds} s (${date})`,
      series: [
        { name: 'read-only requests', color: COLORS.smart },
        { name: 'writing requests', color: COLORS.second },
      ],
      groups: http.rows.map((r) => ({
        label: r.id.startsWith('smart-') ? 'smart-session-store' : r.store,
        note: BACKEND_LABEL[r.backend],
        highlight: r.id.startsWith('smart-'),
        values: [r.read.reqPerSec, r.write.reqPerSec],
        texts: [`${fmt(r.read.reqPerSec)} req/s (p99 ${r.read.p99} ms)`, `${fmt(r.write.reqPerSec)} req/s (p99 ${r.write.p99} ms)`],
      })),
      unit: 'requests per second (higher is better)',
    });
  }
  if (store !== undefined) {
    const groups = [];
    for (const r of store.rows) {
      groups.push({
        label: `${BACKEND_LABEL[r.backend]}: get`,
        note: `${ratio(r.ratios.getVsFloorSelect)} of the floor`,
        values: [r.ops.get.opsPerSec, r.ops['floor SELECT'].opsPerSec],
      });
      groups.push({
        label: `${BACKEND_LABEL[r.backend]}: set (changed)`,
        note: `${ratio(r.ratios.setVsFloorUpdate)} of the floor`,
        values: [r.ops['set (changed)'].opsPerSec, r.ops['floor UPDATE'].opsPerSec],
      });
    }
    out['bench-store-ops.svg'] = barChart({
      title: 'Store operations next to the raw driver',
      subtitle: `${store.callers} concurrent callers, pool of ${store.poolSize}; floor = one SELECT / UPDATE by primary key on the same table (${date})`,
      series: [
        { name: 'smart-session-store', color: COLORS.smart },
        { name: 'floor (raw driver)', color: COLORS.floor },
      ],
      groups,
      unit: 'operations per second (higher is better)',
    });
  }
  if (contention !== undefined) {
    out['bench-contention.svg'] = barChart({
      title: `Contention: ${contention.writers} concurrent writers on one session`,
      subtitle: `load, set an own key, save the delta; ${contention.rounds} rounds; every mode keeps ${contention.rows.every((r) => r.keptPercent === 100) ? 'all' : 'not all'} keys (${date})`,
      series: [{ name: 'writes per second', color: COLORS.smart }],
      groups: contention.rows.map((r) => ({
        label: `${BACKEND_LABEL[r.backend]}, ${r.mode}`,
        note: `${r.keptPercent}% kept, ${r.statementsPerWrite} statements/writer`,
        values: [r.writesPerSec],
      })),
      unit: 'writes per second (higher is better)',
    });
  }
  if (purge?.measured) {
    out['bench-purge.svg'] = barChart({
      title: `Purge of ${fmt(purge.rows)} expired sessions: request latency`,
      subtitle: `p99 of requests at ${Math.round(purge.loadShare * 100)} % of the app's capacity, without a purge and while store.purge() runs with its defaults (${date})`,
      series: [
        { name: 'p99 without a purge', color: COLORS.smart },
        { name: 'p99 during the purge', color: COLORS.during },
      ],
      groups: purge.backends.map((r) => ({
        label: BACKEND_LABEL[r.backend],
        note: r.purge.removed === null ? 'purge failed' : `purged in ${fmt(r.purge.seconds, 1)} s (${fmt(r.purge.rowsPerSec)} rows/s); ${ratio(r.ratio)}`,
        highlight: true,
        values: [r.p99Without, r.p99During],
        texts: [`${fmt(r.p99Without, 1)} ms`, `${fmt(r.p99During, 1)} ms`],
      })),
      unit: 'p99 latency in ms (lower is better)',
      footer: `Target: p99 during a purge at most ${purge.targetRatio}x the p99 without. ${fmt(purge.rows)} expired rows beside ${fmt(purge.liveSessions)} live sessions; load generator in another process.`,
    });
  }
  return out;
}

export function writeReports(results, { resultsDir, chartsDir, published }) {
  const written = [];
  const targets = evaluateTargets(results);
  results.targets = targets;
  const svgs = charts(results);
  const chartLink = (name) => {
    if (svgs[name] === undefined) return '';
    const rel = path.relative(resultsDir, path.join(chartsDir, name)).split(path.sep).join('/');
    return `![${name}](${rel})`;
  };
  const r = results.results;
  const parts = [header(results), targetsSection(targets)];
  if (r.lost) parts.push(lostSection(r.lost, chartLink('bench-lost-updates.svg')));
  if (r.http) parts.push(httpSection(r.http, chartLink('bench-throughput.svg')));
  if (r.statements) parts.push(statementsSection(r.statements));
  if (r.store) parts.push(storeSection(r.store, chartLink('bench-store-ops.svg')));
  if (r.contention) parts.push(contentionSection(r.contention));
  if (r.purge) parts.push(purgeSection(r.purge, chartLink('bench-purge.svg')));
  if (r.scaleout) parts.push(scaleOutSection(r.scaleout));
  if (r.sizes) parts.push(sizesSection(r.sizes, chartLink('bench-session-size.svg'), chartLink('bench-session-size-p99.svg')));
  if (r.frameworks) parts.push(frameworksSection(r.frameworks));
  parts.push(methodSection(results));
  if (!published)
    parts.splice(
      1,
      0,
      '> Smoke or partial run: not published (bench/results/quick/). A full run, `node bench/run.mjs`, writes bench/results/ and the charts in docs/.',
    );

  const base = path.join(resultsDir, results.date);
  writeFileSync(`${base}.json`, `${JSON.stringify(results, null, 2)}\n`);
  written.push(`${base}.json`);
  writeFileSync(`${base}.md`, `${parts.filter(Boolean).join('\n\n')}\n`);
  written.push(`${base}.md`);
  for (const [name, svg] of Object.entries(svgs)) {
    const file = path.join(chartsDir, name);
    writeFileSync(file, svg);
    written.push(file);
  }
  return written;
}
