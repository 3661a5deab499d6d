/**
 * Preload for a benchmark run with smart-session-store's OpenTelemetry
 * instrumentation subscribed, as an application exporting traces and
 * metrics would have it: every load and save makes a span (batched, then
 * handed to an exporter that drops them) and records its metrics (read
 * every 10 s). What it costs a request is the difference with a run
 * without it.
 *
 *   node --import ./bench/tools/otel-preload.mjs bench/run.mjs
 *
 * The OpenTelemetry packages are the library's dev dependencies.
 */
import { context, metrics, trace } from '@opentelemetry/api';
import { AsyncLocalStorageContextManager } from '@opentelemetry/context-async-hooks';
import { registerInstrumentations } from '@opentelemetry/instrumentation';
import { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BatchSpanProcessor, TracerProvider } from '@opentelemetry/sdk-trace';
import { SmartSessionStoreInstrumentation } from 'smart-session-store/opentelemetry';

/** An exporter that takes everything and keeps nothing. */
const dropping = {
  export: (_items, done) => done({ code: 0 }),
  shutdown: async () => undefined,
  forceFlush: async () => undefined,
  selectAggregationTemporality: () => AggregationTemporality.CUMULATIVE,
};

context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
trace.setGlobalTracerProvider(new TracerProvider({ spanProcessors: [new BatchSpanProcessor({ exporter: dropping })] }));
metrics.setGlobalMeterProvider(new MeterProvider({ readers: [new PeriodicExportingMetricReader({ exporter: dropping, exportIntervalMillis: 10_000 })] }));
registerInstrumentations({ instrumentations: [new SmartSessionStoreInstrumentation()] });
