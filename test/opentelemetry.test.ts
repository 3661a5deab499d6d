/**
 * smart-session-store/opentelemetry with OpenTelemetry's own SDK (spans to
 * an in-memory exporter, metrics read on demand): requests through express
 * get a load and a save span under their own span, the duration histogram
 * counts them, a lost compare-and-swap and a purge show in the counters, and
 * the connection gauge follows the database going away and coming back.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { context, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { InMemorySpanExporter, type ReadableSpan, SimpleSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import express from 'express';
import session from 'express-session';
import { SmartSessionStoreInstrumentation } from '../src/adapters/opentelemetry.js';
import { SmartSessionStore } from '../src/adapters/express.js';
import { SessionStore } from '../src/index.js';
import { backendsForThisFile, dropTable } from './support/backends.js';
import { Client, listen } from './support/http.js';
import { startTcpProxy } from './support/tcp-proxy.js';

const backends = await backendsForThisFile();

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
const spans = new InMemorySpanExporter();
const tracerProvider = new TracerProvider({ spanProcessors: [new SimpleSpanProcessor({ exporter: spans })] });
const reader = new PeriodicExportingMetricReader({ exporter: new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE), exportIntervalMillis: 3_600_000 });
const meterProvider = new MeterProvider({ readers: [reader] });
const instrumentation = new SmartSessionStoreInstrumentation();
instrumentation.setTracerProvider(tracerProvider);
instrumentation.setMeterProvider(meterProvider);
const requests = tracerProvider.getTracer('test-requests');

after(async () => {
  instrumentation.disable();
  await tracerProvider.shutdown();
  await meterProvider.shutdown();
});

type Point = { attributes: Record<string, unknown>; value: unknown };

/** The data points of a metric, as collected now. */
async function points(name: string): Promise<Point[]> {
  const { resourceMetrics } = await reader.collect();
  return resourceMetrics.scopeMetrics.flatMap((scope) =>
    scope.metrics.filter((metric) => metric.descriptor.name === name).flatMap((metric) => metric.dataPoints as Point[]),
  );
}

/** The sum of a counter's points whose attributes include `match`. */
async function total(name: string, match: Record<string, unknown>): Promise<number> {
  let sum = 0;
  for (const point of await points(name)) {
    if (Object.entries(match).every(([key, value]) => point.attributes[key] === value)) sum += point.value as number;
  }
  return sum;
}

const DB_SYSTEM: Record<string, string> = { postgres: 'postgresql', mysql: 'mysql', sqlite: 'sqlite', redis: 'redis' };

for (const backend of backends) {
  describe(`${backend.name}: OpenTelemetry spans and metrics`, () => {
    const table = 'ssn_otel';
    const tables = [table, `${table}_optimistic`, `${table}_purge`];
    before(() => Promise.all(tables.map((name) => dropTable(backend, name))));
    after(() => Promise.all(tables.map((name) => dropTable(backend, name))));

    test('20 parallel writing requests through express: each request span holds one load and one save span; the histogram counts them', async () => {
      const system = DB_SYSTEM[backend.dialect];
      const countBefore = async (operation: string): Promise<number> => {
        const point = (await points('smart_session_store.operation.duration')).find(
          ({ attributes }) =>
            attributes['db.operation.name'] === operation &&
            attributes['db.system.name'] === system &&
            attributes['db.collection.name'] === table &&
            attributes['smart_session_store.outcome'] === (operation === 'load' ? 'found' : 'data'),
        );
        return (point?.value as { count: number } | undefined)?.count ?? 0;
      };
      const loadsBefore = await countBefore('load');
      const savesBefore = await countBefore('save');
      const store = new SmartSessionStore({ url: backend.url, table, createTable: true, autopurge: false });
      const app = express();
      // The application's own request span, as an HTTP instrumentation would make it.
      app.use((request, response, next) => {
        const span = requests.startSpan(`${request.method} ${request.path}`);
        response.on('finish', () => span.end());
        context.with(trace.setSpan(context.active(), span), next);
      });
      app.use(session({ secret: 'otel test secret', resave: false, saveUninitialized: false, store }));
      app.post('/start', (request, response) => {
        (request.session as unknown as Record<string, unknown>)['started'] = true;
        response.json({ ok: true });
      });
      app.post('/set/:key', (request, response) => {
        (request.session as unknown as Record<string, unknown>)[String(request.params['key'])] = 1;
        response.json({ ok: true });
      });
      const server = await listen(createServer(app));
      try {
        const client = new Client(server.base);
        await client.request('POST', '/start');
        spans.reset();
        await Promise.all(Array.from({ length: 20 }, (_, index) => client.request('POST', `/set/k${index}`)));
        // A request span ends on the response's `finish`, which may come a turn after the client read the response.
        const requestSpansEnded = () => spans.getFinishedSpans().filter((span) => span.instrumentationScope.name === 'test-requests').length === 20;
        for (let waited = 0; !requestSpansEnded() && waited < 5000; waited += 10) await new Promise((resolve) => setTimeout(resolve, 10));
        const finished = spans.getFinishedSpans();
        const requestSpans = finished.filter((span) => span.instrumentationScope.name === 'test-requests');
        assert.equal(requestSpans.length, 20);
        const children = (parent: ReadableSpan, operation: string) =>
          finished.filter((span) => span.parentSpanContext?.spanId === parent.spanContext().spanId && span.attributes['db.operation.name'] === operation);
        for (const parent of requestSpans) {
          assert.equal(children(parent, 'load').length, 1, 'one load per request');
          assert.equal(children(parent, 'save').length, 1, 'one save per request');
          const [save] = children(parent, 'save');
          assert.equal(save?.name, `save ${table}`);
          assert.equal(save?.attributes['db.system.name'], system);
          assert.equal(save?.attributes['smart_session_store.outcome'], 'data');
          assert.equal(typeof save?.attributes['smart_session_store.session.handle'], 'string');
        }
        assert.equal((await countBefore('load')) - loadsBefore, 20);
        assert.equal((await countBefore('save')) - savesBefore, 20);
      } finally {
        await server.close();
        await store.close();
      }
    });

    test('a compare-and-swap lost to another request counts a conflict; a purge counts what it removed', async () => {
      const system = DB_SYSTEM[backend.dialect];
      const store = new SessionStore({ url: backend.url, table: `${table}_optimistic`, createTable: true, locking: 'optimistic', autopurge: false });
      const purging = new SessionStore({ url: backend.url, table: `${table}_purge`, createTable: true, autopurge: false });
      try {
        const conflictsBefore = await total('smart_session_store.conflicts', { 'db.system.name': system, 'db.collection.name': `${table}_optimistic` });
        await store.save('contended', { n: 0 });
        const first = await store.load('contended');
        const second = await store.load('contended');
        assert.ok(first && second);
        await store.save('contended', { ...first.session, a: 1 }, first.state);
        await store.save('contended', { ...second.session, b: 1 }, second.state);
        assert.equal(
          (await total('smart_session_store.conflicts', { 'db.system.name': system, 'db.collection.name': `${table}_optimistic` })) - conflictsBefore,
          1,
        );

        // Counters add up over the process: a backend sharing a database and a table name with another (PgBouncer) counts on.
        const removedBefore = await total('smart_session_store.purge.removed', { 'db.system.name': system, 'db.collection.name': `${table}_purge` });
        for (let index = 0; index < 3; index++) await purging.save(`old${index}`, { index }, undefined, { expiresAt: Date.now() + 30 });
        await new Promise((resolve) => setTimeout(resolve, 60));
        spans.reset();
        const removed = await purging.purge();
        const purgeSpan = spans.getFinishedSpans().find((span) => span.attributes['db.operation.name'] === 'purge');
        assert.equal(purgeSpan?.attributes['smart_session_store.purge.removed'], removed);
        // Redis drops expired keys itself: its purges remove nothing.
        assert.equal(removed, backend.dialect === 'redis' ? 0 : 3);
        assert.equal(
          (await total('smart_session_store.purge.removed', { 'db.system.name': system, 'db.collection.name': `${table}_purge` })) - removedBefore,
          removed,
        );
      } finally {
        await store.close();
        await purging.close();
      }
    });
  });
}

// One server behind a TCP proxy: not the multi-host setups (clusters, Galera, a primary with standbys, Sentinel).
const servers = backends.filter(
  (backend) => backend.dialect !== 'sqlite' && !backend.name.includes('cluster') && !['galera', 'postgres-failover', 'redis-sentinel'].includes(backend.name),
);

for (const backend of servers) {
  test(`${backend.name}: the connection gauge goes to 0 while the database is away, back to 1 when it answers; the failed call's span says why`, async () => {
    const url = new URL(backend.url);
    const proxy = await startTcpProxy(Number(url.port));
    url.port = String(proxy.port);
    const table = 'ssn_otel_outage';
    const store = new SessionStore({ url: url.toString(), table, createTable: true, connectTimeout: 2, autopurge: false });
    const gauge = async (): Promise<unknown> =>
      (await points('smart_session_store.connection.available')).find(
        ({ attributes }) => attributes['db.system.name'] === DB_SYSTEM[backend.dialect] && attributes['db.collection.name'] === table,
      )?.value;
    try {
      await store.save('outage', { a: 1 });
      assert.equal(await gauge(), 1);
      spans.reset();
      await proxy.cut();
      await assert.rejects(store.load('outage'));
      assert.equal(await gauge(), 0);
      const failed = spans.getFinishedSpans().find((span) => span.attributes['db.operation.name'] === 'load');
      assert.equal(failed?.attributes['error.type'], 'ERR_UNAVAILABLE');
      await proxy.restore();
      await new Promise<void>((resolve) => store.once('connect', () => resolve()));
      assert.equal(await gauge(), 1);
    } finally {
      await store.clear().catch(() => undefined);
      await store.close();
      await proxy.close();
    }
  });
}
