/**
 * SQLite's WAL checkpoints, taken off the event loop.
 *
 * In WAL mode a commit appends pages to the log, and a checkpoint copies
 * them back into the database file. By default the committing statement
 * checkpoints whenever the log holds 1000 pages: it copies up to 4 MiB and
 * syncs the file, and better-sqlite3 runs it on the event loop, so every
 * request waits. A purge, which commits batch after batch, stalled for
 * 50-200 ms at a time.
 *
 * Here a second connection in a worker thread copies the log in small
 * passive passes, which never wait for the store's connection nor hold it
 * up. Copying is not all, though: SQLite starts the log over only when a
 * writer finds every page of it copied, and with requests writing all the
 * time the worker is always a few pages behind. So once the log has grown
 * to {@link CATCH_UP_PAGES}, the worker, as soon as it has caught up, asks
 * the store's connection to checkpoint once itself: a few pages to copy,
 * a few milliseconds, after which the next write starts the log over.
 * Meanwhile the connection's automatic checkpoint is raised to
 * {@link BACKSTOP_PAGES}, a bound should the worker fall behind, and put
 * back when the worker stops.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** How soon the worker looks again after a pass that copied pages: more are likely coming, and small passes cost the least. */
const PAUSE_AFTER_COPY_MS = 5;
/** How soon it looks again after a pass that found nothing to copy: a look reads SQLite's shared memory and returns. */
const PAUSE_WHEN_IDLE_MS = 50;
/** Log pages after which the store's connection is asked to finish a checkpoint, so the log starts over (16 MiB with 4 KiB pages). */
export const CATCH_UP_PAGES = 4096;
/** The connection's own automatic checkpoint while the worker runs: only reached if the worker cannot keep up (64 MiB with 4 KiB pages). */
export const BACKSTOP_PAGES = 4 * CATCH_UP_PAGES;
/** How long closing waits for the worker to finish its pass before ending it. */
const STOP_TIMEOUT_MS = 2000;

/**
 * The worker: CommonJS source run by `new Worker(..., { eval: true })`, so
 * the ESM and CommonJS builds ship it alike and no file path is needed.
 * It loads the application's own copy of better-sqlite3 by its resolved path.
 */
const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { driverPath, filename, pauseAfterCopyMs, pauseWhenIdleMs, catchUpPages } = workerData;
let db;
let timer;
let lastCopied = -1;
let askedAt = -1;
function end(failure) {
  clearTimeout(timer);
  try { if (db !== undefined) db.close(); } catch {}
  if (failure !== undefined) parentPort.postMessage({ failure: String((failure && failure.message) || failure) });
  process.exit(0);
}
function pass() {
  let result;
  try {
    result = db.pragma('wal_checkpoint(PASSIVE)')[0];
  } catch (error) {
    end(error);
    return;
  }
  // log: pages in the WAL; checkpointed: pages of it copied into the database. Both are -1 while another checkpoint runs.
  const { log, checkpointed } = result;
  if (log >= catchUpPages && checkpointed === log && log !== askedAt) {
    askedAt = log;
    parentPort.postMessage({ caughtUp: log });
  }
  const copied = log > 0 && checkpointed !== lastCopied;
  lastCopied = checkpointed;
  timer = setTimeout(pass, copied ? pauseAfterCopyMs : pauseWhenIdleMs);
}
parentPort.on('message', () => end());
try {
  const Database = require(driverPath);
  // No busy timeout: a passive checkpoint never waits anyway.
  db = new Database(filename, { fileMustExist: true, timeout: 0 });
  pass();
} catch (error) {
  end(error);
}
`;

/** The part of a better-sqlite3 Database the checkpointer uses. */
export interface CheckpointedDatabase {
  pragma(source: string): unknown;
  readonly memory: boolean;
  readonly name?: unknown;
}

/** A running background checkpointer. */
export interface BackgroundCheckpoints {
  /** Ends the worker, closes its connection and puts the automatic checkpoint back. */
  stop(): Promise<void>;
}

/**
 * Where the better-sqlite3 that made `db` was loaded from, so the worker
 * loads the same copy. Node keeps every CommonJS module it loaded (an ESM
 * import of a CommonJS package included) in one cache, shared by every
 * `require`; better-sqlite3 exports its Database constructor.
 */
function driverPathOf(db: object): string | undefined {
  const cache = createRequire(`${process.cwd()}/`).cache;
  for (const loaded of Object.values(cache)) {
    if (loaded !== undefined && loaded.exports === db.constructor) return loaded.filename;
  }
  return undefined;
}

/** A pragma's single value: better-sqlite3 returns rows such as `[{ journal_mode: 'wal' }]`. */
function pragmaValue(db: CheckpointedDatabase, name: string): unknown {
  const [row] = db.pragma(name) as Record<string, unknown>[];
  return row?.[name];
}

/**
 * Starts checkpointing `db`'s file from a worker thread. `catchUp` runs a
 * passive checkpoint on the store's connection (after any transaction
 * holding it). Returns `undefined` where there is nothing to take over: a
 * database in memory or a temporary one, a journal mode other than WAL, or
 * a driver whose module cannot be found.
 */
export function startBackgroundCheckpoints(db: CheckpointedDatabase, catchUp: () => Promise<unknown>): BackgroundCheckpoints | undefined {
  if (db.memory || typeof db.name !== 'string' || db.name === '') return undefined;
  if (pragmaValue(db, 'journal_mode') !== 'wal') return undefined;
  const driverPath = driverPathOf(db);
  if (driverPath === undefined) return undefined;
  const automaticPages = Number(pragmaValue(db, 'wal_autocheckpoint'));
  const worker = new Worker(WORKER_SOURCE, {
    eval: true,
    workerData: { driverPath, filename: db.name, pauseAfterCopyMs: PAUSE_AFTER_COPY_MS, pauseWhenIdleMs: PAUSE_WHEN_IDLE_MS, catchUpPages: CATCH_UP_PAGES },
  });
  let running = true;
  // Whatever ends the worker (closing, a failure, an error thrown in it), SQLite goes back to checkpointing by itself.
  const exited = new Promise<void>((resolve) =>
    worker.once('exit', () => {
      running = false;
      try {
        db.pragma(`wal_autocheckpoint = ${automaticPages}`);
      } catch {
        // The application closed its Database first: nothing is left to put back.
      }
      resolve();
    }),
  );
  worker.on('message', (message: { caughtUp?: number }) => {
    // A failed catch-up costs nothing: the log grows on, and the next one or the backstop copies it.
    if (message.caughtUp !== undefined && running) catchUp().catch(() => undefined);
  });
  // An error thrown in the worker must not become an uncaught error of the application; the exit above follows it.
  worker.on('error', () => undefined);
  // Nor may the worker keep the process alive: a store left open must not stop an application from exiting.
  worker.unref();
  if (automaticPages > 0) db.pragma(`wal_autocheckpoint = ${Math.max(automaticPages, BACKSTOP_PAGES)}`);
  let stopping: Promise<void> | undefined;
  return {
    stop() {
      stopping ??= (async () => {
        // Closing waits for the worker's exit, which an unreferenced worker would not keep the process alive for.
        worker.ref();
        worker.postMessage('stop');
        const timer = setTimeout(() => void worker.terminate(), STOP_TIMEOUT_MS);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}
