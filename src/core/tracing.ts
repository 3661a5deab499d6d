/**
 * What the store publishes on `node:diagnostics_channel`, for tracing and
 * metrics (the OpenTelemetry instrumentation subscribes to these): one
 * tracing channel per operation, and a plain channel for the connection's
 * state. Nothing is built for them while no one subscribes.
 *
 * A message never holds a session id, a stored key or session data: the
 * session is named by its public handle.
 */
import { channel, type TracingChannel, tracingChannel } from 'node:diagnostics_channel';
import type { LockingMode } from './options.js';

/** What every operation's message says. */
export interface OperationMessage {
  /** The backend: `postgres`, `mysql`, `sqlite`, `redis`. */
  readonly backend: string;
  /** What holds the sessions: `sessions table`, `session keys`. */
  readonly storage: string;
  /** The table or key prefix they are in (`sessions`, `auth.sessions`). */
  readonly collection: string | undefined;
  /** The locking mode in force, once the storage has been inspected. */
  locking: LockingMode | undefined;
  /** Operations run again after a lost connection. */
  retries: number;
  /** Writes run again after a conflict: a deadlock the database rolled back, a compare-and-swap that lost. */
  conflicts: number;
}

/** A load's message. */
export interface LoadMessage extends OperationMessage {
  /** The session's public handle. */
  readonly handle: string;
  /** `found`, or `missing` (none, or expired). Set when the load succeeds. */
  outcome: 'found' | 'missing' | undefined;
  /** The stored text's length in UTF-16 units (about its bytes for ASCII), when found. */
  bytes: number;
}

/** A save's (or touch's) message. */
export interface SaveMessage extends OperationMessage {
  readonly handle: string;
  /**
   * What was written: `created` (a whole new session), `data` (this
   * request's change), `expiry` (only the expiry moved), `nothing` (nothing
   * changed, or the expiry barely moved), `gone` (the session was destroyed
   * or expired meanwhile: nothing written). Set when the save succeeds.
   */
  outcome: 'created' | 'data' | 'expiry' | 'nothing' | 'gone' | undefined;
  /** What the write carried: the whole session's JSON, or the change's; 0 for an expiry. */
  bytes: number;
  /**
   * The save also folded the session's pending changes (appended by earlier saves) into its stored document, where
   * they were still those the request loaded (the database checks, in the same statement).
   */
  folded: boolean;
}

/** A destroy's message. */
export interface DestroyMessage extends OperationMessage {
  readonly handle: string;
}

/** A purge's message. */
export interface PurgeMessage extends OperationMessage {
  /** Sessions removed. Set when the purge succeeds. */
  removed: number;
}

/** The connection's state changed. */
export interface ConnectionMessage {
  readonly backend: string;
  readonly storage: string;
  readonly collection: string | undefined;
  /** `down`: the database cannot be reached (calls fail fast); `up`: it answers again. */
  readonly state: 'up' | 'down';
  /** Why it went down. */
  readonly error?: Error | undefined;
}

/** The store's tracing channels, by operation: `smart-session-store:<operation>`. */
export const TRACING = {
  load: tracingChannel<object, LoadMessage>('smart-session-store:load'),
  save: tracingChannel<object, SaveMessage>('smart-session-store:save'),
  destroy: tracingChannel<object, DestroyMessage>('smart-session-store:destroy'),
  purge: tracingChannel<object, PurgeMessage>('smart-session-store:purge'),
} as const;

/** The channel the connection's state changes are published on. */
export const CONNECTION_CHANNEL = channel('smart-session-store:connection');

/** What a retry loop counts for a message. */
export interface RetryCount {
  retries: number;
  conflicts: number;
}

/**
 * Runs `operation` on `channel` with `message`, when someone subscribes.
 * The channel is handed no result (a tracing channel publishes the value a
 * traced promise resolves to, and a load's or save's holds the session).
 */
export async function traced<M extends object, T>(channel: TracingChannel<object, M>, message: M | undefined, operation: () => Promise<T>): Promise<T> {
  if (message === undefined) return operation();
  let result: T | undefined;
  await channel.tracePromise(async () => {
    result = await operation();
  }, message);
  return result as T;
}
