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
 * to {@link CATCH_UP_BYTES}, the worker, as soon as it has caught up, asks
 * the store's connection to checkpoint once itself: a few pages to copy,
 * a few milliseconds, after which the next write starts the log over.
 * Meanwhile the connection's automatic checkpoint is raised to
 * {@link BACKSTOP_BYTES}, a bound should the worker fall behind, and put
 * back when the last worker on that connection stops.
 */
import { createRequire } from 'node:module';
import { Worker } from 'node:worker_threads';

/** How soon the worker looks again after a pass that copied pages: more are likely coming, and small passes cost the least. */
const PAUSE_AFTER_COPY_MS = 5;
/** How soon it looks again after a pass that found nothing to copy: a look reads SQLite's shared memory and returns. */
const PAUSE_WHEN_IDLE_MS = 50;
/** Passes in a row that may fail with a transient error (busy, locked, I/O) before the worker gives up. */
const TRANSIENT_FAILURES = 20;
/** Size of log after which the store's connection is asked to finish a checkpoint, so the log starts over. */
export const CATCH_UP_BYTES = 16 * 2 ** 20;
/** The connection's own automatic checkpoint while the worker runs: only reached if the worker cannot keep up. */
export const BACKSTOP_BYTES = 4 * CATCH_UP_BYTES;
/** How long closing waits for the worker to finish its pass before ending it. */
const STOP_TIMEOUT_MS = 2000;

/**
 * The worker: CommonJS source run by `new Worker(..., { eval: true })`, so
 * the ESM and CommonJS builds ship it alike and no file path is needed.
 * It loads the application's own copy of better-sqlite3 by its resolved
 * path: the same native module, so the two connections share SQLite's
 * locks within the process.
 */
const WORKER_SOURCE = `
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const { driverPath, filename, synchronous, pauseAfterCopyMs, pauseWhenIdleMs, transientFailures, catchUpPages } = workerData;
let db;
let timer;
let lastCopied = -1;
let askedAt = -1;
let failuresInARow = 0;
function end(failure) {
  clearTimeout(timer);
  try { if (db !== undefined) db.close(); } catch {}
  if (failure !== undefined) parentPort.postMessage({ failure: String((failure && failure.message) || failure) });
  process.exit(failure === undefined ? 0 : 1);
}
function pass() {
  let result;
  try {
    result = db.pragma('wal_checkpoint(PASSIVE)')[0];
    failuresInARow = 0;
  } catch (error) {
    // Another process recovering the log, a lock, a passing I/O error: look again later.
    if (/^SQLITE_(BUSY|LOCKED|IOERR)/.test(String(error && error.code)) && ++failuresInARow < transientFailures) {
      timer = setTimeout(pass, pauseWhenIdleMs);
    } else {
      end(error);
    }
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
  // Sync as often as the store's connection does (a checkpoint syncs the log and the database file unless it is off).
  db.pragma('synchronous = ' + synchronous);
  pass();
} catch (error) {
  end(error);
}
`;

/** The part of a better-sqlite3 Database the checkpointer uses. */
export interface CheckpointedDatabase {
  pragma(source: string): unknown;
  readonly memory: boolean;
  readonly readonly?: unknown;
}

/** A running background checkpointer. */
export interface BackgroundCheckpoints {
  /** Ends the worker, closes its connection and, with the last worker on the connection, puts the automatic checkpoint back. */
  stop(): Promise<void>;
}

/**
 * Where the better-sqlite3 that made `db` was loaded from, so the worker
 * loads the same copy. Node keeps every CommonJS module it loaded (an ESM
 * import of a CommonJS package included) in one cache, shared by every
 * `require`; better-sqlite3 exports its Database constructor.
 */
function driverPathOf(db: object): string | undefined {
  // Any absolute path gives the shared cache; the file need not exist.
  const cache = createRequire('/').cache;
  for (const loaded of Object.values(cache)) {
    if (loaded !== undefined && loaded.exports === db.constructor) return loaded.filename;
  }
  return undefined;
}

/** A pragma's single value: better-sqlite3 returns rows such as `[{ journal_mode: 'wal' }]`. */
function pragmaValue(db: CheckpointedDatabase, name: string): unknown {
  const [row] = db.pragma(name) as Record<string, unknown>[];
  return row?.[name.replace(/^main\./, '')];
}

/**
 * The workers checkpointing through each connection: the automatic checkpoint is raised by the first and put
 * back by the last, to what it was before the first (two stores may share an application's Database).
 */
const raisedOn = new WeakMap<object, { readonly original: number; readonly raised: number; users: number }>();

function raiseAutomaticCheckpoint(db: CheckpointedDatabase, pageSize: number): void {
  const shared = raisedOn.get(db);
  if (shared !== undefined) {
    shared.users++;
    return;
  }
  const original = Number(pragmaValue(db, 'wal_autocheckpoint'));
  // 0 means the application turned automatic checkpoints off: leave it so.
  const raised = original > 0 ? Math.max(original, Math.ceil(BACKSTOP_BYTES / pageSize)) : original;
  if (raised !== original) db.pragma(`wal_autocheckpoint = ${raised}`);
  raisedOn.set(db, { original, raised, users: 1 });
}

function putAutomaticCheckpointBack(db: CheckpointedDatabase): void {
  const shared = raisedOn.get(db);
  if (shared === undefined || --shared.users > 0) return;
  raisedOn.delete(db);
  try {
    // Unless the application set another value meanwhile.
    if (Number(pragmaValue(db, 'wal_autocheckpoint')) === shared.raised) db.pragma(`wal_autocheckpoint = ${shared.original}`);
  } catch {
    // The application closed its Database first: nothing is left to put back.
  }
}

/**
 * The file of `db`'s main database, as an absolute path, when the worker
 * can take over its checkpoints: a writable file in WAL mode, with no other
 * database attached (the automatic checkpoint is the connection's, so
 * raising it would leave an attached log unchecked).
 */
function checkpointedFile(db: CheckpointedDatabase): string | undefined {
  if (db.memory || db.readonly === true) return undefined;
  const databases = db.pragma('database_list') as { name: string; file: string }[];
  if (databases.some(({ name }) => name !== 'main' && name !== 'temp')) return undefined;
  const file = databases.find(({ name }) => name === 'main')?.file;
  if (file === undefined || file === '') return undefined;
  return pragmaValue(db, 'main.journal_mode') === 'wal' ? file : undefined;
}

/**
 * Starts checkpointing `db`'s file from a worker thread. `catchUp` runs a
 * passive checkpoint on the store's connection (after any transaction
 * holding it). Returns `undefined` where there is nothing to take over (see
 * {@link checkpointedFile}), where better-sqlite3's module cannot be found
 * (a bundle), or where no worker can start: SQLite then checkpoints as it
 * would without.
 */
export function startBackgroundCheckpoints(db: CheckpointedDatabase, catchUp: () => Promise<unknown>): BackgroundCheckpoints | undefined {
  let filename: string | undefined;
  let driverPath: string | undefined;
  let pageSize: number;
  try {
    filename = checkpointedFile(db);
    driverPath = driverPathOf(db);
    if (filename === undefined || driverPath === undefined) return undefined;
    pageSize = Number(pragmaValue(db, 'page_size'));
  } catch {
    // A database that cannot answer (closed meanwhile, say): checkpoint as SQLite does.
    return undefined;
  }
  let worker: Worker;
  try {
    worker = new Worker(WORKER_SOURCE, {
      eval: true,
      // None of the process's flags: the worker loads only better-sqlite3 and Node's own modules, and a
      // worker refuses per-process flags (Node 26's test runner gives its files a dozen of them).
      execArgv: [],
      workerData: {
        driverPath,
        filename,
        synchronous: Number(pragmaValue(db, 'synchronous')),
        pauseAfterCopyMs: PAUSE_AFTER_COPY_MS,
        pauseWhenIdleMs: PAUSE_WHEN_IDLE_MS,
        transientFailures: TRANSIENT_FAILURES,
        catchUpPages: Math.ceil(CATCH_UP_BYTES / pageSize),
      },
    });
  } catch (error) {
    // Worker threads not allowed (a permission model, say): said once, and SQLite checkpoints as it would without.
    process.emitWarning(
      `SQLite checkpoints in a worker thread could not start (${error instanceof Error ? error.message : String(error)}); SQLite checkpoints on the store's connection`,
      {
        code: 'SMART_SESSION_STORE_CHECKPOINTS',
      },
    );
    return undefined;
  }
  let running = true;
  let stopping: Promise<void> | undefined;
  /** Why the worker stopped, as it said or as its error did. */
  let failure: string | undefined;
  // Whatever ends the worker (closing, a failure, an error thrown in it), SQLite goes back to checkpointing by itself.
  const exited = new Promise<void>((resolve) =>
    worker.once('exit', (code) => {
      running = false;
      putAutomaticCheckpointBack(db);
      // Not when the store ended it: a worker that would not finish its pass within the timeout is terminated.
      if (code !== 0 && stopping === undefined) {
        process.emitWarning(
          `SQLite checkpoints in a worker thread stopped (${failure ?? `exit code ${code}`}); SQLite checkpoints on the store's connection again`,
          {
            code: 'SMART_SESSION_STORE_CHECKPOINTS',
          },
        );
      }
      resolve();
    }),
  );
  worker.on('message', (message: { caughtUp?: number; failure?: string }) => {
    // A failed catch-up costs nothing: the log grows on, and the next one or the backstop copies it.
    if (message.caughtUp !== undefined && running) catchUp().catch(() => undefined);
    failure ??= message.failure;
  });
  // An error thrown in the worker must not become an uncaught error of the application; the exit above follows it.
  worker.on('error', (error: unknown) => (failure ??= error instanceof Error ? error.message : String(error)));
  // Nor may the worker keep the process alive: a store left open must not stop an application from exiting.
  worker.unref();
  raiseAutomaticCheckpoint(db, pageSize);
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
