/**
 * Purging in batches, the same on every SQL database: only the batch
 * statement and the lock that keeps purges of one table to one process at a
 * time differ (see each dialect, and `lease.ts`).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { TableName } from '../connection-settings.js';
import type { LockedBatch, PurgeBatch, PurgePacing, PurgeTarget, SqlDialect, SqlDriver, SqlRunner } from './sql-dialect.js';

/** The name under which purges of one table take their cross-process lock. */
export function purgeLockName(table: TableName): string {
  return `smart-session-store:purge:${table.schema === undefined ? '' : `${table.schema}.`}${table.name}`;
}

/**
 * A database server's pacing: batches of about 50 ms, then twice as long a
 * pause, so a purge of a million rows never holds the server for long at a
 * time and takes at most a third of its time (on a small machine the server
 * shares its cores with the application).
 */
export const DEFAULT_PURGE_PACING: PurgePacing = { budgetMs: 50, pauseShare: 2 };

/** Runs of one batch that a database rolled back for a conflict, before the purge gives up. */
const BATCH_CONFLICT_ATTEMPTS = 10;
/** The longest random pause, in ms, before a batch rolled back for a conflict runs again. */
const BATCH_CONFLICT_PAUSE_CAP_MS = 100;

/**
 * Runs `work` again when the database rolled it back for a conflict (a save
 * holding a row, a certification conflict on a multi-primary cluster): a
 * batch is idempotent, and running the whole purge again would lose the
 * count of the batches already done.
 */
export async function retryingConflicts<T>(driver: SqlDriver, work: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await work();
    } catch (error) {
      if (!driver.isTransientConflict(error) || attempt >= BATCH_CONFLICT_ATTEMPTS) throw error;
      await sleep(Math.random() * Math.min(10 * attempt, BATCH_CONFLICT_PAUSE_CAP_MS));
    }
  }
}

/** How the batches of one purge run. */
export interface BatchPlan {
  /** Rows deleted per statement, at most. */
  readonly batchSize: number;
  /** Called after each batch with the number removed so far. */
  readonly onProgress?: ((removed: number) => void) | undefined;
  /** How long a batch may take and how long to pause after it (the dialect's pacing). */
  readonly pacing: PurgePacing;
}

/**
 * Deletes in batches until a batch comes back short, reporting progress and
 * yielding to other work between batches, so a large purge never holds locks
 * for long nor starves requests. Each batch runs through `batch` (where the
 * purge lock covers it); a batch refused by the lock ends the run with what
 * was removed so far.
 */
export async function deleteInBatches(
  driver: SqlDriver,
  batch: LockedBatch,
  deleteBatch: (runner: SqlRunner, size: number) => Promise<PurgeBatch>,
  { batchSize, onProgress, pacing }: BatchPlan,
): Promise<number> {
  const { budgetMs, pauseShare } = pacing;
  // Start small: the first batch tells how long a row takes.
  let size = Math.min(batchSize, 100);
  let removed = 0;
  for (;;) {
    const started = performance.now();
    const done = await retryingConflicts(driver, () => batch((runner) => deleteBatch(runner, size)));
    if (done === null) return removed;
    done.advance?.();
    const took = performance.now() - started;
    removed += done.removed;
    onProgress?.(removed);
    if (done.found < size) return removed;
    // Never below ten rows, nor above the batch size asked for.
    if (took > budgetMs) size = Math.max(Math.min(10, batchSize), Math.floor(size / 2));
    else if (took < budgetMs / 4) size = Math.min(batchSize, size * 2);
    // Requests that queued behind the batch go first.
    if (pauseShare > 0) await sleep(took * pauseShare);
    else await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * Below this share of expired rows in a window, walking the table in storage
 * order stops paying: with ~1 KB sessions a page holds a dozen rows or more,
 * so the expiry order, one page per expired row, visits fewer pages.
 */
export const STORAGE_WALK_MIN_EXPIRED_SHARE = 1 / 8;

/**
 * The batches of one purge: where the dialect and the table allow, a walk in
 * storage order while it keeps finding mostly expired rows (a table left to
 * fill up with expired sessions: each page is read and written once, not once
 * per row); then, or else, batches in expiry order through the expiry index.
 * The first window (the purge's first, small batch) tells which pays: with
 * random session ids, expired rows are spread evenly over the storage order.
 */
export function expiredRowBatches(dialect: SqlDialect, target: PurgeTarget): (runner: SqlRunner, size: number) => Promise<PurgeBatch> {
  let walking = target.storageOrder !== undefined && dialect.deleteExpiredInStorageOrder !== undefined;
  let after: unknown;
  return async (runner, size) => {
    if (!walking || dialect.deleteExpiredInStorageOrder === undefined) return dialect.deleteExpired(runner, target, size);
    const window = await dialect.deleteExpiredInStorageOrder(runner, target, size, after);
    return {
      removed: window.removed,
      // A full window may have rows after it; a short one ended the walk, and the walk saw every row.
      found: window.examined,
      advance: () => {
        after = window.last;
        // The rows before the cursor are done: the expiry order goes on with the rest.
        if (window.expired < window.examined * STORAGE_WALK_MIN_EXPIRED_SHARE) walking = false;
      },
    };
  };
}
