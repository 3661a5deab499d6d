/**
 * When the store cannot connect, the error says what failed (the login, the
 * database, nothing listening) with user, host and database, and never
 * blames the table; settings that would be ignored are refused.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { describe, test } from 'node:test';
import { SessionStore } from '../src/index.js';
import { backendsForThisFile, isStoreError, LOCAL_SQL } from './support/backends.js';

const backends = await backendsForThisFile(LOCAL_SQL);

/** A loopback port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/** The URL of `backend` with some parts changed. */
function variant(url: string, change: (url: URL) => void): string {
  const parsed = new URL(url);
  change(parsed);
  return parsed.href;
}

/** The error of a store's first call, which connects. */
async function firstError(url: string): Promise<Error> {
  const store = new SessionStore({ url, autopurge: false });
  try {
    await store.ready();
  } catch (error) {
    return error as Error;
  } finally {
    await store.close();
  }
  throw new Error('the store connected');
}

for (const backend of backends.filter((candidate) => candidate.dialect !== 'sqlite')) {
  describe(`${backend.name}: connection errors say what failed`, () => {
    test('a login the server refuses: ERR_LOGIN_FAILED naming the user, the address and the database, not the table', async () => {
      const url = variant(backend.url, (parsed) => {
        // PostgreSQL here trusts every password of a known role: an unknown role is refused instead.
        if (backend.dialect === 'postgres') parsed.username = 'no_such_role';
        else parsed.password = 'certainly-wrong';
      });
      const error = await firstError(url);
      assert.ok(isStoreError('ERR_LOGIN_FAILED')(error), String(error));
      const user = backend.dialect === 'postgres' ? 'no_such_role' : new URL(backend.url).username;
      assert.match(error.message, new RegExp(`refused the login as user "${user}"`));
      assert.match(error.message, new RegExp(`${new URL(backend.url).hostname}:${new URL(backend.url).port}`));
      assert.match(error.message, /database "test"/);
      assert.doesNotMatch(error.message, /table/);
    });

    test('a database that does not exist: ERR_LOGIN_FAILED naming it', async () => {
      const error = await firstError(variant(backend.url, (parsed) => (parsed.pathname = '/no_such_database')));
      assert.ok(isStoreError('ERR_LOGIN_FAILED')(error), String(error));
      assert.match(error.message, /database "no_such_database" does not exist/);
      assert.doesNotMatch(error.message, /table/);
    });

    test('nothing listening: ERR_UNAVAILABLE saying so, with the address', async () => {
      const port = await closedPort();
      const error = await firstError(variant(backend.url, (parsed) => (parsed.port = String(port))));
      assert.ok(isStoreError('ERR_UNAVAILABLE')(error), String(error));
      assert.match(error.message, new RegExp(`nothing accepts connections at 127\\.0\\.0\\.1:${port}`));
    });
  });
}

describe('sqlite: a file that cannot be opened', () => {
  test('ERR_LOGIN_FAILED naming the file, not the table', async () => {
    const error = await firstError('sqlite:/no/such/directory/sessions.db');
    assert.ok(isStoreError('ERR_LOGIN_FAILED')(error), String(error));
    assert.match(error.message, /\/no\/such\/directory\/sessions\.db cannot be opened/);
  });
});

describe('conflicting connection settings are refused, never ignored', () => {
  const cases: [string, Record<string, unknown>][] = [
    ['database', { url: 'postgres://u@h/db', database: 'other' }],
    ['host', { url: 'mysql://u@h/db', host: 'elsewhere' }],
    ['password', { url: 'mysql://u@h/db', password: 'secret' }],
    ['user', { connection: { query() {}, connect() {} }, dialect: 'postgres', user: 'u' }],
  ];
  for (const [name, options] of cases) {
    test(`"${name}" with ${'url' in options ? '"url"' : '"connection"'}`, () => {
      assert.throws(() => new SessionStore(options as never), isStoreError('ERR_INVALID_OPTION', `"${name}"`));
    });
  }
});
