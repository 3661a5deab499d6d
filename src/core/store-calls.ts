/**
 * The store's calls that carry a message on their tracing channel (besides
 * a request's save and touch, `./save-request.ts`): a load, a destroy, a
 * purge; the connection's state; and the report that names the store.
 */
import type { BackendOpener } from './backend.js';
import type { BackendLink } from './backend-link.js';
import { type LoadedSession, loadedFrom } from './loaded-state.js';
import type { JsonObject } from './json.js';
import { publicHandle } from './session-id.js';
import { outlived } from './storage-queries.js';
import type { SessionStats, StoreReport } from './store-types.js';
import {
  CONNECTION_CHANNEL,
  type ConnectionMessage,
  type DestroyMessage,
  type LoadMessage,
  type OperationMessage,
  type PurgeMessage,
  TRACING,
  traced,
} from './tracing.js';

/** What every message on the tracing channels says, before the operation runs. */
export function operationMessage(opener: BackendOpener, link: BackendLink): OperationMessage {
  return { backend: opener.name, storage: opener.storageName, collection: opener.collection, locking: link.locking, retries: 0, conflicts: 0 };
}

/** Publishes a change of the connection's state, when someone listens. */
export function publishConnection(opener: BackendOpener, state: 'up' | 'down', error?: Error): void {
  if (CONNECTION_CHANNEL.hasSubscribers) {
    CONNECTION_CHANNEL.publish({ backend: opener.name, storage: opener.storageName, collection: opener.collection, state, error } satisfies ConnectionMessage);
  }
}

/**
 * Reads the live session stored under `key` (`sid`'s); `null` when there is none, it has expired, or it has outlived
 * the absolute timeout (`absoluteTimeoutMs`). `copy`: how the application's session is made, `parse`: how the stored
 * text is read (`loadedFrom`).
 */
export function loadSession(
  opener: BackendOpener,
  link: BackendLink,
  sid: string,
  key: string,
  absoluteTimeoutMs: number | undefined,
  copy: 'whole' | 'onRead' = 'whole',
  parse?: (text: string | null) => JsonObject,
): Promise<LoadedSession | null> {
  const message: LoadMessage | undefined = TRACING.load.hasSubscribers
    ? { ...operationMessage(opener, link), handle: publicHandle(key), outcome: undefined, bytes: 0 }
    : undefined;
  const run = () =>
    link.call(
      'loading the session',
      async ({ storage }) => {
        const now = Date.now();
        const found = await storage.load(key, now);
        const row = found === null || outlived(found.createdAt, absoluteTimeoutMs, now) ? null : found;
        if (message !== undefined) {
          message.locking = storage.locking;
          message.outcome = row === null ? 'missing' : 'found';
          message.bytes = row?.text?.length ?? 0;
        }
        return row === null ? null : loadedFrom(row, sid, key, copy, parse);
      },
      message,
    );
  return traced(TRACING.load, message, run);
}

/** Deletes the session stored under `key`. */
export function destroySession(opener: BackendOpener, link: BackendLink, key: string): Promise<void> {
  const message: DestroyMessage | undefined = TRACING.destroy.hasSubscribers ? { ...operationMessage(opener, link), handle: publicHandle(key) } : undefined;
  const run = () => link.call('destroying the session', ({ storage }) => storage.destroy(key), message);
  return traced(TRACING.destroy, message, run);
}

/** Removes expired sessions in batches; resolves to how many (0 where the storage drops them itself). */
export function purgeExpired(
  opener: BackendOpener,
  link: BackendLink,
  batchSize: number,
  onProgress: ((removed: number) => void) | undefined,
): Promise<number> {
  const message: PurgeMessage | undefined = TRACING.purge.hasSubscribers ? { ...operationMessage(opener, link), removed: 0 } : undefined;
  const run = () =>
    link.call(
      'purging expired sessions',
      async ({ storage }) => {
        // A storage without a purge drops expired sessions by itself.
        const removed = (await storage.purge?.({ now: Date.now(), batchSize, onProgress })) ?? 0;
        if (message !== undefined) Object.assign(message, { locking: storage.locking, removed });
        return removed;
      },
      message,
    );
  return traced(TRACING.purge, message, run);
}

/** The counts, the store's backend, table and locking mode, and what the storage can tell of itself. */
export function reportOn(opener: BackendOpener, link: BackendLink, stats: SessionStats, topUsers: number): Promise<StoreReport> {
  return link.call('reporting on the sessions', async ({ storage }) => ({
    backend: opener.name,
    collection: opener.collection,
    locking: storage.locking,
    ...stats,
    ...(await storage.report?.(Date.now(), topUsers)),
  }));
}
