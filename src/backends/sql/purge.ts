/**
 * Purging in batches, the same on every SQL database: only the batch
 * statement and the lock around the run differ (see each dialect).
 */
import type { TableName } from '../connection-options.js';

/** The name under which purges of one table take their cross-process lock. */
export function purgeLockName(table: TableName): string {
  return `smart-session-store:purge:${table.schema === undefined ? '' : `${table.schema}.`}${table.name}`;
}

/**
 * Deletes in batches until a batch comes back short, reporting progress and
 * yielding to other work between batches, so a large purge never holds locks
 * for long nor starves requests. `between` runs before each further batch.
 *
 * With `budgetMs` the batch size adapts so that one batch takes about that
 * long: for a synchronous driver (better-sqlite3) a batch blocks the event
 * loop, and every request waiting behind it.
 */
export async function deleteInBatches(
  deleteBatch: (size: number) => Promise<number>,
  batchSize: number,
  onProgress: ((removed: number) => void) | undefined,
  options: { readonly between?: (() => void | Promise<void>) | undefined; readonly budgetMs?: number | undefined } = {},
): Promise<number> {
  const { between, budgetMs } = options;
  let size = budgetMs === undefined ? batchSize : Math.min(batchSize, 100);
  let removed = 0;
  for (;;) {
    const started = performance.now();
    const count = await deleteBatch(size);
    const took = performance.now() - started;
    removed += count;
    onProgress?.(removed);
    if (count < size) return removed;
    if (budgetMs !== undefined) {
      if (took > budgetMs) size = Math.max(10, Math.floor(size / 2));
      else if (took < budgetMs / 4) size = Math.min(batchSize, size * 2);
    }
    await between?.();
    await new Promise((resolve) => setImmediate(resolve));
  }
}

