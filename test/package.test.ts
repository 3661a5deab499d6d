/**
 * The package as users get it: the built ESM and CommonJS entry points with
 * their types, and the command line.
 */
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { runCli } from './support/cli.js';

const require = createRequire(import.meta.url);
const root = join(import.meta.dirname, '..');

describe('package entry points', () => {
  test('require() of smart-session-store/express gives a working express-session store', async () => {
    const { SmartSessionStore } = require('smart-session-store/express') as typeof import('../src/adapters/express.js');
    const session = require('express-session') as typeof import('express-session');
    const store = new SmartSessionStore({ url: 'sqlite::memory:', createTable: true });
    assert.ok(store instanceof session.Store);
    await new Promise<void>((resolve, reject) => store.set('cjs', { cookie: { originalMaxAge: null } } as never, (error) => (error ? reject(error as Error) : resolve())));
    const loaded = await new Promise((resolve, reject) => store.get('cjs', (error, value) => (error ? reject(error as Error) : resolve(value))));
    assert.deepStrictEqual(loaded, { cookie: { originalMaxAge: null } });
    await store.close();
  });

  test('import of both entry points (ESM build)', async () => {
    const core = await import('smart-session-store');
    const express = await import('smart-session-store/express');
    assert.equal(typeof core.SessionStore, 'function');
    assert.equal(typeof core.SessionStoreError, 'function');
    assert.equal(typeof express.SmartSessionStore, 'function');
    assert.equal(express.default, express.SmartSessionStore);
  });

  test('both builds ship type declarations', () => {
    for (const file of ['dist/esm/index.d.ts', 'dist/esm/adapters/express.d.ts', 'dist/cjs/index.d.ts', 'dist/cjs/adapters/express.d.ts']) {
      assert.ok(existsSync(join(root, file)), file);
    }
  });
});

describe('command line', () => {
  const attempt = runCli;

  test('create-table creates the table and its expiry index', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sss-cli-')), 'cli.db');
    const result = await attempt('create-table', '--url', `sqlite:${file}`, '--table', 'web_sessions');
    assert.equal(result.code, 0, result.stderr);
    const db = new Database(file);
    const objects = db.prepare("SELECT type, name FROM sqlite_master WHERE tbl_name = 'web_sessions'").all() as { type: string; name: string }[];
    db.close();
    assert.ok(objects.some(({ type, name }) => type === 'table' && name === 'web_sessions'));
    assert.ok(objects.some(({ type, name }) => type === 'index' && name === 'web_sessions_expires_at_idx'));
  });

  test('exit codes: 0 for --help, 2 for a wrong command line, 1 for a database that cannot be reached', async () => {
    assert.equal((await attempt('--help')).code, 0);
    assert.equal((await attempt()).code, 2);
    assert.equal((await attempt('drop-everything', '--url', 'sqlite::memory:')).code, 2);
    assert.equal((await attempt('create-table')).code, 2);
    const refused = await attempt('create-table', '--url', 'sqlite::memory:', '--table', 'sessions; DROP TABLE users');
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /"table"/);
    const unreachable = await attempt('create-table', '--url', 'postgres://postgres@127.0.0.1:1/test');
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /ERR_UNAVAILABLE/);
  });
});
