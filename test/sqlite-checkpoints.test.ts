/**
 * SQLite: a worker thread copies the write-ahead log into the database file
 * (`backgroundCheckpoints`, on by default), the log still starts over while
 * requests keep writing, and closing ends the worker and gives a handed-over
 * Database its automatic checkpoint back.
 *
 * What SQLite did is read from the WAL index in the `-shm` file, which every
 * connection maps: no connection of the test's own checkpoints anything.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { endianness, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { SessionStore, type JsonObject } from '../src/index.js';
import { BACKSTOP_PAGES, CATCH_UP_PAGES } from '../src/backends/sqlite/sqlite-checkpointer.js';
import { CookieStore, delay, isStoreError } from './support/backends.js';

const selected = process.env['DATABASE'];
const skip = selected !== undefined && selected !== '' && !/sqlite/i.test(selected) ? 'DATABASE excludes sqlite' : false;
const canCountFiles = existsSync('/proc/self/fd') ? false : 'no /proc/self/fd to count open files with';

const table = 'sessions';
const session = (size: number, mark: number): JsonObject => ({
  cookie: { originalMaxAge: null, expires: null },
  mark,
  blob: 'x'.repeat(size),
});

function newFile(): string {
  return join(mkdtempSync(join(tmpdir(), 'sss-checkpoints-')), 'sessions.db');
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

describe('SQLite checkpoints in a worker thread', { skip }, () => {
  test('a worker copies the log into the database before SQLite would, and closing ends it', { skip: canCountFiles }, async () => {
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

  test('with backgroundCheckpoints: false the log waits for SQLite\'s own checkpoint (the test above can fail)', { skip: canCountFiles }, async () => {
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

  test(`while requests keep writing, the log starts over after ${CATCH_UP_PAGES} pages and every session is intact`, async () => {
    const file = newFile();
    const store = new CookieStore({ url: `sqlite:${file}`, table, createTable: true, autopurge: false });
    await store.ready();
    let longest = 0;
    let restarts = 0;
    let previous = 0;
    // 700 sessions of 40 KB: about 7,000 pages of log, past the catch-up mark.
    const count = 700;
    for (let i = 0; i < count; i++) {
      await store.save(`s${i}`, session(40_000, i));
      const { logged } = walState(file);
      if (logged < previous) restarts++;
      previous = logged;
      longest = Math.max(longest, logged);
      // As an HTTP server does between requests, let the worker's messages in.
      await new Promise((resolve) => setImmediate(resolve));
    }
    assert.ok(restarts >= 1, `the log started over (it reached ${longest} pages)`);
    assert.ok(longest > 1000, `the commits did not checkpoint every 1000 pages themselves (longest log: ${longest} pages)`);
    assert.ok(longest < BACKSTOP_PAGES, `the log never reached the backstop of ${BACKSTOP_PAGES} pages (longest: ${longest})`);
    for (const i of [0, 1, count >> 1, count - 1]) {
      const loaded = (await store.load(`s${i}`))?.session;
      assert.equal(loaded?.['mark'], i);
      assert.equal((loaded?.['blob'] as string).length, 40_000);
    }
    await store.close();
    // A fresh connection reads the same, from the database file and whatever log is left.
    const db = new Database(file, { readonly: true });
    try {
      const [row] = db.prepare(`SELECT count(*) AS n FROM ${table}`).all() as { n: number }[];
      assert.equal(row?.n, count);
    } finally {
      db.close();
    }
  });

  test('a Database handed over gets its own automatic checkpoint back when the store closes', { skip: canCountFiles }, async () => {
    const file = newFile();
    const db = new Database(file);
    db.pragma('journal_mode = WAL');
    db.pragma('wal_autocheckpoint = 500');
    const store = new SessionStore({ connection: db, table, createTable: true, autopurge: false });
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
    const store = new SessionStore({ connection: db, table, createTable: true, autopurge: false });
    await store.ready();
    await store.save('a', { n: 1 });
    await delay(100);
    assert.equal(db.pragma('journal_mode', { simple: true }), 'delete');
    assert.equal(db.pragma('wal_autocheckpoint', { simple: true }), 1000);
    assert.equal(connectionsTo(file), 1);
    await store.close();
    db.close();
  });

  test('a database in memory gets no worker', async () => {
    const store = new SessionStore({ url: 'sqlite::memory:', table, createTable: true, autopurge: false });
    await store.ready();
    await store.save('a', { n: 1 });
    assert.equal((await store.load('a'))?.session['n'], 1);
    await store.close();
  });
});

describe('backgroundCheckpoints is a SQLite option', () => {
  test('given for another backend, it is refused by name', () => {
    assert.throws(() => new SessionStore({ url: 'postgres://db1/sessions', backgroundCheckpoints: true }), isStoreError('ERR_INVALID_OPTION', 'backgroundCheckpoints'));
    assert.throws(() => new SessionStore({ url: 'redis://127.0.0.1:6379/0', backgroundCheckpoints: false }), isStoreError('ERR_INVALID_OPTION', 'backgroundCheckpoints'));
    assert.throws(() => new SessionStore({ url: 'sqlite::memory:', backgroundCheckpoints: 'sometimes' as unknown as boolean }), isStoreError('ERR_INVALID_OPTION', 'backgroundCheckpoints'));
  });
});
