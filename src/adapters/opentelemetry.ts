/**
 * OpenTelemetry instrumentation: the store's diagnostics channels
 * (`smart-session-store:load`, `:save`, `:destroy`, `:purge`,
 * `:connection`) turned into spans and metrics.
 *
 * ```ts
 * import { NodeSDK } from '@opentelemetry/sdk-node';
 * import { SmartSessionStoreInstrumentation } from 'smart-session-store/opentelemetry';
 *
 * new NodeSDK({ instrumentations: [new SmartSessionStoreInstrumentation()] }).start();
 * ```
 *
 * Each load, save, destroy and purge is a client span, a child of the span
 * active where the store was called (the request's), named
 * `<operation> <table>`; see docs/opentelemetry.md for every attribute and
 * metric. Nothing names a session id, a stored key or session data: a
 * session is named by its public handle.
 *
 * @module
 */
import { subscribe, tracingChannel, unsubscribe } from 'node:diagnostics_channel';
import { type Attributes, type Counter, context, type Histogram, type ObservableGauge, type Span, SpanKind, SpanStatusCode } from '@opentelemetry/api';
import { InstrumentationBase, type InstrumentationConfig } from '@opentelemetry/instrumentation';
import type { ConnectionMessage, DestroyMessage, LoadMessage, OperationMessage, PurgeMessage, SaveMessage } from '../core/tracing.js';
import { SessionStoreError } from '../errors.js';

export type { ConnectionMessage, DestroyMessage, LoadMessage, OperationMessage, PurgeMessage, SaveMessage } from '../core/tracing.js';

/** Options of {@link SmartSessionStoreInstrumentation}: OpenTelemetry's own (`enabled`). */
export type SmartSessionStoreInstrumentationConfig = InstrumentationConfig;

/** The operations, each on its tracing channel `smart-session-store:<operation>`. */
const OPERATIONS = ['load', 'save', 'destroy', 'purge'] as const;
type Operation = (typeof OPERATIONS)[number];

/** `db.system.name` of each backend, as OpenTelemetry's database conventions name them. */
const DB_SYSTEM: Readonly<Record<string, string>> = { postgres: 'postgresql', mysql: 'mysql', sqlite: 'sqlite', redis: 'redis' };

/** Bucket boundaries of the duration histogram, in seconds: a cached read to a slow purge. */
const DURATION_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** The metric instruments. */
interface Instruments {
  readonly duration: Histogram;
  readonly conflicts: Counter;
  readonly retries: Counter;
  readonly created: Counter;
  readonly destroyed: Counter;
  readonly purged: Counter;
  readonly folds: Counter;
  readonly available: ObservableGauge;
}

/** What one instrumentation holds (kept apart from the instance: the base class enables it from its constructor, before fields exist). */
interface InstrumentationState {
  instruments: Instruments | undefined;
  /** Spans of operations under way, by their message. */
  readonly spans: WeakMap<object, { span: Span; started: number }>;
  /** Each store's connection state (1 up, 0 down), by backend and table. */
  readonly connections: Map<string, { attributes: Attributes; up: number }>;
  unsubscribe: (() => void) | undefined;
}

const states = new WeakMap<SmartSessionStoreInstrumentation, InstrumentationState>();

function stateOf(instrumentation: SmartSessionStoreInstrumentation): InstrumentationState {
  let state = states.get(instrumentation);
  if (state === undefined) {
    state = { instruments: undefined, spans: new WeakMap(), connections: new Map(), unsubscribe: undefined };
    states.set(instrumentation, state);
  }
  return state;
}

/** The attributes every span and metric of an operation has. */
function baseAttributes(operation: Operation, message: OperationMessage): Attributes {
  const attributes: Attributes = {
    'db.system.name': DB_SYSTEM[message.backend] ?? message.backend,
    'db.operation.name': operation,
  };
  if (message.collection !== undefined) attributes['db.collection.name'] = message.collection;
  return attributes;
}

/** What an operation's message says once it ended, as span attributes. */
function resultAttributes(operation: Operation, message: OperationMessage): Attributes {
  const attributes: Attributes = { 'smart_session_store.retries': message.retries, 'smart_session_store.conflicts': message.conflicts };
  if (message.locking !== undefined) attributes['smart_session_store.locking'] = message.locking;
  if (operation === 'load' || operation === 'save') {
    const { outcome, bytes } = message as LoadMessage | SaveMessage;
    if (outcome !== undefined) attributes['smart_session_store.outcome'] = outcome;
    attributes['smart_session_store.bytes'] = bytes;
  }
  if (operation === 'save' && (message as SaveMessage).folded) attributes['smart_session_store.folded'] = true;
  if (operation === 'purge') attributes['smart_session_store.purge.removed'] = (message as PurgeMessage).removed;
  return attributes;
}

/** The error's type, as `error.type`: the store's error code, else the error's name. */
function errorType(error: unknown): string {
  if (error instanceof SessionStoreError) return error.code;
  return error instanceof Error ? error.name : 'unknown';
}

/**
 * Spans and metrics of smart-session-store, from its diagnostics channels.
 * Register it like any OpenTelemetry instrumentation (`NodeSDK`'s
 * `instrumentations`, or `registerInstrumentations`); it patches no module.
 */
export class SmartSessionStoreInstrumentation extends InstrumentationBase<SmartSessionStoreInstrumentationConfig> {
  /** @param config OpenTelemetry's instrumentation options. @default enabled */
  constructor(config: SmartSessionStoreInstrumentationConfig = {}) {
    super('smart-session-store', '0.1.0', config);
  }

  /** Nothing to patch: the store publishes on diagnostics channels. */
  protected override init(): [] {
    return [];
  }

  protected override _updateMetricInstruments(): void {
    const state = stateOf(this);
    const meter = this.meter;
    const available = meter.createObservableGauge('smart_session_store.connection.available', {
      description: 'Whether the store reaches its database: 1, or 0 while calls fail fast with ERR_UNAVAILABLE',
      unit: '1',
    });
    available.addCallback((result) => {
      for (const { attributes, up } of state.connections.values()) result.observe(up, attributes);
    });
    state.instruments = {
      duration: meter.createHistogram('smart_session_store.operation.duration', {
        description: 'Duration of session store operations',
        unit: 's',
        advice: { explicitBucketBoundaries: DURATION_BUCKETS },
      }),
      conflicts: meter.createCounter('smart_session_store.conflicts', {
        description: 'Writes run again after a conflict: a deadlock the database rolled back, or a compare-and-swap another request won',
        unit: '{conflict}',
      }),
      retries: meter.createCounter('smart_session_store.retries', { description: 'Operations run again after a lost connection', unit: '{retry}' }),
      created: meter.createCounter('smart_session_store.sessions.created', { description: 'Sessions stored for the first time', unit: '{session}' }),
      destroyed: meter.createCounter('smart_session_store.sessions.destroyed', {
        description: 'Sessions destroyed (a logout, a regeneration)',
        unit: '{session}',
      }),
      purged: meter.createCounter('smart_session_store.purge.removed', { description: 'Expired sessions removed by purges', unit: '{session}' }),
      folds: meter.createCounter('smart_session_store.pending_changes.folds', {
        description: "Saves that folded a session's appended changes into its stored document (atomic mode on SQL)",
        unit: '{fold}',
      }),
      available,
    };
  }

  override enable(): void {
    super.enable();
    const state = stateOf(this);
    if (state.unsubscribe !== undefined) return;
    const stops: (() => void)[] = [];
    for (const operation of OPERATIONS) {
      const channel = tracingChannel(`smart-session-store:${operation}`);
      // The store publishes an OperationMessage (../core/tracing.ts) on each of its channels.
      const handlers = {
        start: (message: object) => this.#start(operation, message as OperationMessage),
        end: () => undefined,
        asyncStart: () => undefined,
        asyncEnd: (message: object) => this.#end(operation, message as OperationMessage),
        error: (message: object) => this.#failed(message as OperationMessage & { error?: unknown }),
      };
      channel.subscribe(handlers);
      stops.push(() => channel.unsubscribe(handlers));
    }
    const onConnection = (message: unknown): void => {
      const { backend, collection, state: up } = message as ConnectionMessage;
      this.#connection(backend, collection, up === 'up' ? 1 : 0);
    };
    subscribe('smart-session-store:connection', onConnection);
    stops.push(() => unsubscribe('smart-session-store:connection', onConnection));
    state.unsubscribe = () => {
      for (const stop of stops) stop();
    };
  }

  override disable(): void {
    super.disable();
    const state = stateOf(this);
    state.unsubscribe?.();
    state.unsubscribe = undefined;
  }

  /** Opens the operation's span, as a child of the span active where the store was called. */
  #start(operation: Operation, message: OperationMessage): void {
    const attributes = baseAttributes(operation, message);
    if ('handle' in message) attributes['smart_session_store.session.handle'] = (message as DestroyMessage).handle;
    const span = this.tracer.startSpan(`${operation} ${message.collection ?? message.storage}`, { kind: SpanKind.CLIENT, attributes }, context.active());
    stateOf(this).spans.set(message, { span, started: performance.now() });
  }

  #failed(message: OperationMessage & { error?: unknown }): void {
    const open = stateOf(this).spans.get(message);
    if (open === undefined) return;
    const { error } = message;
    if (error instanceof Error) open.span.recordException(error);
    open.span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
    open.span.setAttribute('error.type', errorType(error));
  }

  /** Ends the span and records the metrics, whether the operation succeeded or failed. */
  #end(operation: Operation, message: OperationMessage & { error?: unknown }): void {
    const state = stateOf(this);
    const open = state.spans.get(message);
    if (open === undefined) return;
    state.spans.delete(message);
    open.span.setAttributes(resultAttributes(operation, message));
    open.span.end();
    const instruments = state.instruments;
    if (instruments === undefined) return;
    const attributes = baseAttributes(operation, message);
    const failed = 'error' in message && message.error !== undefined;
    if (failed) attributes['error.type'] = errorType(message.error);
    else if (operation === 'load' || operation === 'save') {
      const { outcome } = message as LoadMessage | SaveMessage;
      if (outcome !== undefined) attributes['smart_session_store.outcome'] = outcome;
    }
    instruments.duration.record((performance.now() - open.started) / 1000, attributes);
    const counted = baseAttributes(operation, message);
    if (message.conflicts > 0) instruments.conflicts.add(message.conflicts, counted);
    if (message.retries > 0) instruments.retries.add(message.retries, counted);
    if (failed) return;
    // A store that answered is up, as far as anyone knows.
    this.#connection(message.backend, message.collection, 1, false);
    if (operation === 'save' && (message as SaveMessage).outcome === 'created') instruments.created.add(1, counted);
    if (operation === 'save' && (message as SaveMessage).folded) instruments.folds.add(1, counted);
    if (operation === 'destroy') instruments.destroyed.add(1, counted);
    if (operation === 'purge') instruments.purged.add((message as PurgeMessage).removed, counted);
  }

  /** Notes a store's connection state (`replace`: a state change; else only when none is known yet). */
  #connection(backend: string, collection: string | undefined, up: number, replace = true): void {
    const connections = stateOf(this).connections;
    const key = `${backend}\u0000${collection ?? ''}`;
    const known = connections.get(key);
    if (known !== undefined && !replace) return;
    const attributes: Attributes = { 'db.system.name': DB_SYSTEM[backend] ?? backend };
    if (collection !== undefined) attributes['db.collection.name'] = collection;
    connections.set(key, { attributes, up });
  }
}

export default SmartSessionStoreInstrumentation;
