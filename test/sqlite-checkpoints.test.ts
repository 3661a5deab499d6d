/**
 * SQLite: a worker thread copies the write-ahead log into the database file
 * (`backgroundCheckpoints`, on by default for a file the store opens, off
 * for a Database handed over unless asked), the log still starts over while
 * requests keep writing, and closing ends the worker and gives a handed-over
 * Database its automatic checkpoint back.
 *
 * What SQLite did is read from the WAL index in the `-shm` file, which every
 * connection maps: no connection of the test's own checkpoints anything.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { endianness, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { SessionStore, type JsonObject } from '../src/index.js';
import { BACKSTOP_BYTES, CATCH_UP_BYTES, startBackgroundCheckpoints } from '../src/backends/sqlite/sqlite-checkpointer.js';
import { CookieStore, delay, isStoreError } from './support/backends.js';

const selected = process.env['DATABASE'];
const skip = selected !== undefined && selected !== '' && !/sqlite/i.test(selected) ? 'DATABASE excludes sqlite' : false;
const canCountFiles = existsSync('/proc/self/fd') ? false : 'no /proc/self/fd to count open files with';
/** The tests' databases use SQLite's default page size. */
const PAGE_SIZE = 4096;
const CATCH_UP_PAGES = CATCH_UP_BYTES / PAGE_SIZE;
const BACKSTOP_PAGES = BACKSTOP_BYTES / PAGE_SIZE;

const table = 'sessions';
const session = (size: number, mark: number): JsonObject => ({
  cookie: { originalMaxAge: null, expires: null },
  mark,
  blob: 'x'.repeat(size),
});

const folders: string[] = [];
after(() => {
  for (const folder of folders) rmSync(folder, { recursive: true, force: true });
});

function newFile(): string {
  const folder = mkdtempSync(join(tmpdir(), 'sss-checkpoints-'));
  folders.push(folder);
  return join(folder, 'sessions.db');
}

/** An application's Database in WAL mode. */
function walDatabase(file: string): Database.Database {
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  return db;
}

/**
 * The WAL index header (SQLite's file format, "wal-index"): `mxFrame`, the
 * last page written to the log, at byte 16; `nBackfill`, how many of them a
 * checkpoint has copied into the database, at byte 96. In the machine's
 * byte order.
 */
function walState(file: string): { logged: number; copied: number } {
  const shm = readFileSync(`${file}-shm`);
  const read = (offset: number) => (endianness() === 'LE' ? shm.readUInt32LE(offset) : shm.readUInt32BE(offset));
  return { logged: read(16), copied: read(96) };
}

/** How many file descriptors of this process have `file` open: one per connection. */
function connectionsTo(file: string): number {
  let count = 0;
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === file) count++;
    } catch {
      // Closed between the listing and the look.
    }
  }
  return count;
}

/** Waits until `condition` holds, failing with `what` after 10 s. */
async function eventually(what: string, condition: () => boolean): Promise<void> {
  for (let waited = 0; !condition(); waited += 20) {
    if (waited > 10_000) assert.fail(`still not true after 10 s: ${what}`);
    await delay(20);
  }
}

/**
 * A child Node process started with `flags` that hands the store a Database on `file` asking for the worker, saves
 * a session, and prints the connection's automatic checkpoint; its process warnings come back apart (our code's only).
 */
async function checkpointingChild(flags: readonly string[], file: string): Promise<{ stdout: string; warnings: string[] }> {
  const code = `
    import Database from 'better-sqlite3';
    import { SessionStore } from ${JSON.stringify(new URL('../src/index.ts', import.meta.url).href)};
    process.on('warning', (warning) => { if (warning.code?.startsWith('SMART_SESSION_STORE')) console.error('WARNING ' + warning.code + ' ' + warning.message); });
    const db = new Database(${JSON.stringify(file)});
    db.pragma('journal_mode = WAL');
    const store = new SessionStore({ connection: db, table: 'sessions', createTable: true, autopurge: false, backgroundCheckpoints: true });
    await store.save('a', { n: 1 });
    if ((await store.load('a'))?.session.n !== 1) throw new Error('the session was not kept');
    console.log(db.pragma('wal_autocheckpoint', { simple: true }));
    await store.close();
    db.close();
  `;
  const child = spawn(process.execPath, [...flags, '--import', 'tsx', '--input-type=module', '-e', code], {
    cwd: new URL('..', import.meta.url),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const [exitCode] = (await once(child, 'exit')) as [number | null];
  assert.equal(exitCode, 0, `the child failed: ${stderr}`);
  return { stdout, warnings: stderr.split('\n').filter((line) => line.startsWith('WARNING ')) };
}

describe('SQLite checkpoints in a worker thread', { skip }, () => {
  test('by default a worker copies the log into the file the store opened before SQLite would, and closing ends it', { skip: canCountFiles }, async () => {
    const file = newFile();
    const store = new CookieStore({ url: `sqlite:${file}`, table, createTable: true, autopurge: false });
    await store.ready();
    await eventually('the worker has its own connection to the file', () => connectionsTo(file) === 2);
    // 30 sessions of 10 KB are some hundred pages, under the 1000 at which a commit would checkpoint by itself.
    for (let i = 0; i < 30; i++) await store.save(`s${i}`, session(10_000, i));
    assert.ok(walState(file).logged > 0);
    await eventually('every page of the log is copied', () => {
      const { logged, copied } = walState(file);
      return logged > 0 && copied === logged;
    });
    await store.close();
    assert.equal(connectionsTo(file), 0, 'the store and its worker closed their connections');
  });

  test('by default a file named by dialect and database gets the worker too', { skip: canCountFiles }, async () => {
    const file = newFile();
    const store = new SessionStore({ dialect: 'sqlite', database: file, table, createTable: true, autopurge: false });
    await store.ready();
    await eventually('the worker has its own connection to the file', () => connectionsTo(file) === 2);
    await store.close();
    assert.equal(connectionsTo(file), 0, 'the store and its worker closed their connections');
  });

  test("with backgroundCheckpoints: false the log waits for SQLite's own checkpoint (the test above can fail)", { skip: canCountFiles }, async () => {
    const file = newFile();
    const store = new CookieStore({ url: `sqlite:${file}`, table, createTable: true, autopurge: false, backgroundCheckpoints: false });
    await store.ready();
    for (let i = 0; i < 30; i++) await store.save(`s${i}`, session(10_000, i));
    // Ten times as long as the worker waits between two looks when idle.
    await delay(500);
    const { logged, copied } = walState(file);
    assert.ok(logged > 0);
    assert.equal(copied, 0, 'nothing copied the log');
    assert.equal(connectionsTo(file), 1, 'no second connection');
    await store.close();
  });

  test(`while requests keep writing, the log starts over near ${CATCH_UP_PAGES} pages, not at the backstop, and every session is intact`, async () => {
    const file = newFile();
    const db = walDatabase(file);
    const store = new CookieStore({ connection: db, table, createTable: true, autopurge: false, backgroundCheckpoints: true });
    await store.ready();
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), BACKSTOP_PAGES, "the commits' own checkpoint is only a backstop");
    let longest = 0;
    // 1,300 sessions of 40 KB: about three times the catch-up mark in log pages, a third of the way to the backstop.
    const count = 1300;
    for (let i = 0; i < count; i++) {
      await store.save(`s${i}`, session(40_000, i));
      longest = Math.max(longest, walState(file).logged);
      // As an HTTP server does between requests, let the worker's messages in.
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.ok(longest < 2 * CATCH_UP_PAGES, `the log started over before twice the catch-up mark (it reached ${longest} pages)`);
    for (const i of [0, 1, count >> 1, count - 1]) {
      const loaded = (await store.load(`s${i}`))?.session;
      assert.equal(loaded?.['mark'], i);
      assert.equal((loaded?.['blob'] as string | undefined)?.length, 40_000);
    }
    await store.close();
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 1000);
    db.close();
    // A fresh connection reads the same, from the database file and whatever log is left.
    const reader = new Database(file, { readonly: true });
    try {
      assert.equal((reader.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n, count);
    } finally {
      reader.close();
    }
  });

  test('a Database handed over gets no worker unless asked, and keeps its settings', { skip: canCountFiles }, async () => {
    const file = newFile();
    const db = walDatabase(file);
    const store = new SessionStore({ connection: db, table, createTable: true, autopurge: false });
    await store.ready();
    for (let i = 0; i < 30; i++) await store.save(`s${i}`, session(10_000, i));
    await delay(500);
    assert.equal(connectionsTo(file), 1, 'no second connection');
    assert.equal(walState(file).copied, 0, 'nothing copied the log');
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 1000);
    await store.close();
    db.close();
  });

  test('a Database handed over gets its own automatic checkpoint back when the store closes', { skip: canCountFiles }, async () => {
    const file = newFile();
    const db = walDatabase(file);
    db.pragma('wal_autocheckpoint = 500');
    const store = new SessionStore({ connection: db, table, createTable: true, autopurge: false, backgroundCheckpoints: true });
    await store.ready();
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), BACKSTOP_PAGES, 'raised to the backstop while the worker runs');
    await eventually('the worker has its own connection to the file', () => connectionsTo(file) === 2);
    await store.close();
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 500);
    // Still the application's, and still usable.
    assert.equal((db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n, 0);
    db.close();
    // SQLite keeps a closed connection's descriptor open while another connection of the process holds locks on the
    // file (closing it would drop them); once the application's is closed too, none may be left.
    assert.equal(connectionsTo(file), 0, 'the worker closed its connection');
  });

  test('a Database handed over in rollback-journal mode gets no worker and keeps its settings', { skip: canCountFiles }, async () => {
    const file = newFile();
    const db = new Database(file);
    const store = new SessionStore({ connection: db, table, createTable: true, autopurge: false, backgroundCheckpoints: true });
    await store.ready();
    await store.save('a', { n: 1 });
    await delay(100);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'delete');
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 1000);
    assert.equal(connectionsTo(file), 1);
    await store.close();
    db.close();
  });

  test('two stores on one Database: the setting is put back when the last one closes', async () => {
    const db = walDatabase(newFile());
    const first = new SessionStore({ connection: db, table, createTable: true, autopurge: false, backgroundCheckpoints: true });
    const second = new SessionStore({ connection: db, table, autopurge: false, backgroundCheckpoints: true });
    await first.ready();
    await second.ready();
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), BACKSTOP_PAGES);
    await first.close();
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), BACKSTOP_PAGES, "the second store's worker still runs");
    await second.close();
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 1000);
    db.close();
  });

  test('a setting the application changed meanwhile is left as it is', async () => {
    const db = walDatabase(newFile());
    const store = new SessionStore({ connection: db, table, createTable: true, autopurge: false, backgroundCheckpoints: true });
    await store.ready();
    db.pragma('wal_autocheckpoint = 2000');
    await store.close();
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 2000);
    db.close();
  });

  test('a Database opened by a relative path is checkpointed there after the process changed directory', async () => {
    const file = newFile();
    const started = process.cwd();
    process.chdir(dirname(file));
    let db: Database.Database;
    try {
      db = walDatabase('sessions.db');
    } finally {
      process.chdir(started);
    }
    const store = new SessionStore({ connection: db, table, createTable: true, autopurge: false, backgroundCheckpoints: true });
    try {
      await store.ready();
      for (let i = 0; i < 10; i++) await store.save(`s${i}`, session(10_000, i));
      await eventually('every page of the log is copied', () => {
        const { logged, copied } = walState(file);
        return logged > 0 && copied === logged;
      });
      assert.equal(existsSync(join(started, 'sessions.db')), false, 'no file opened relative to the new directory');
    } finally {
      await store.close();
      db.close();
    }
  });

  test('a worker that fails says so in a process warning, and the setting is put back', async () => {
    const file = newFile();
    const db = walDatabase(file);
    db.pragma('wal_autocheckpoint = 500');
    // The real Database, except that it names a file that does not exist as its main database: the worker's own
    // connection fails to open it, as it would after the file was moved away.
    const misnamed = new Proxy(db, {
      get(target, property) {
        if (property !== 'pragma') return Reflect.get(target, property, target);
        return (source: string, options?: Database.PragmaOptions) =>
          source === 'database_list' ? [{ seq: 0, name: 'main', file: `${file}-gone` }] : target.pragma(source, options);
      },
    });
    const warned = once(process, 'warning', { signal: AbortSignal.timeout(10_000) }) as Promise<[Error & { code?: string }]>;
    const checkpoints = startBackgroundCheckpoints(misnamed, async () => undefined);
    assert.ok(checkpoints, 'a worker was started');
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), BACKSTOP_PAGES);
    // The worker does not keep the process alive (a store left open must not); this wait does.
    const alive = setInterval(() => undefined, 1000);
    const [warning] = await warned.finally(() => clearInterval(alive));
    assert.equal(warning.code, 'SMART_SESSION_STORE_CHECKPOINTS');
    assert.match(warning.message, /worker thread stopped \(.*(unable to open|does not exist)/i);
    await checkpoints.stop();
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 500);
    db.close();
  });

  test('the worker starts in a process run with flags a worker may not take (Node 26 gives test files a dozen)', async () => {
    const { stdout, warnings } = await checkpointingChild(['--stack-trace-limit=20', '--secure-heap=0'], newFile());
    assert.equal(stdout.trim(), String(BACKSTOP_PAGES), 'the automatic checkpoint was raised: a worker runs');
    assert.deepStrictEqual(warnings, []);
  });

  test('a worker that cannot start (the permission model) says so in a process warning, and the store still works', async () => {
    const [major] = process.versions.node.split('.').map(Number) as [number];
    const permission = major >= 23 ? '--permission' : '--experimental-permission';
    const { stdout, warnings } = await checkpointingChild([permission, '--allow-fs-read=*', '--allow-fs-write=*', '--allow-addons'], newFile());
    assert.equal(stdout.trim(), '1000', 'no worker: the automatic checkpoint is untouched');
    assert.equal(warnings.length, 1, warnings.join('\n'));
    assert.match(warnings[0] as string, /SMART_SESSION_STORE_CHECKPOINTS.*worker thread could not start/);
  });

  test('no worker for a connection with another database attached, nor for one in memory', async () => {
    const db = walDatabase(newFile());
    db.prepare('ATTACH DATABASE ? AS other').run(newFile());
    db.pragma('other.journal_mode = WAL');
    const memory = new Database(':memory:');
    for (const connection of [db, memory]) {
      const store = new SessionStore({ connection, table, createTable: true, autopurge: false, backgroundCheckpoints: true });
      await store.ready();
      await store.save('a', { n: 1 });
      assert.equal((await store.load('a'))?.session['n'], 1);
      assert.equal(connection.pragma('wal_autocheckpoint', { simple: true }), 1000, 'the automatic checkpoint is untouched');
      await store.close();
      connection.close();
    }
  });
});

describe('backgroundCheckpoints is a SQLite option', () => {
  test('given for another backend, it is refused by name', () => {
    assert.throws(
      () => new SessionStore({ url: 'postgres://db1/sessions', backgroundCheckpoints: true }),
      isStoreError('ERR_INVALID_OPTION', 'backgroundCheckpoints'),
    );
    assert.throws(
      () => new SessionStore({ url: 'redis://127.0.0.1:6379/0', backgroundCheckpoints: false }),
      isStoreError('ERR_INVALID_OPTION', 'backgroundCheckpoints'),
    );
    assert.throws(
      () => new SessionStore({ url: 'sqlite::memory:', backgroundCheckpoints: 'sometimes' as unknown as boolean }),
      isStoreError('ERR_INVALID_OPTION', 'backgroundCheckpoints'),
    );
  });
});
