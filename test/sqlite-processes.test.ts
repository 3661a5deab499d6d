/**
 * SQLite: several processes on one file (WAL, busy timeout) keep every change.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { LOCKING_MODES, CookieStore } from './support/backends.js';

const run = promisify(execFile);
const selected = process.env['DATABASE'];
const skip = selected !== undefined && selected !== '' && !/sqlite/i.test(selected) ? 'DATABASE excludes sqlite' : false;

describe('SQLite shared by several processes', { skip }, () => {
  for (const locking of LOCKING_MODES) {
    test(`${locking}: 3 processes, 15 saves each, on one session: every key kept`, async () => {
      const url = `sqlite:${join(mkdtempSync(join(tmpdir(), 'sss-multi-')), 'shared.db')}`;
      const table = 'sessions';
      const store = new CookieStore({ url, table, locking, createTable: true });
      await store.save('shared', { cookie: { originalMaxAge: null, expires: null }, start: true });
      const worker = join(import.meta.dirname, 'support/sqlite-worker.ts');
      await Promise.all([0, 1, 2].map((index) => run(process.execPath, ['--import', 'tsx', worker, url, table, locking, 'shared', String(index), '15'])));
      const final = (await store.load('shared'))?.session;
      await store.close();
      assert.ok(final);
      for (const index of [0, 1, 2]) {
        for (let i = 0; i < 15; i++) assert.equal(final[`p${index}_${i}`], i, `process ${index}, save ${i}`);
      }
    });
  }
});
