/**
 * Through a real express app, express-session and HTTP: the lost-update
 * scenario that every peer store fails, on every backend and locking mode.
 */
import assert from 'node:assert/strict';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import session from 'express-session';
import { SmartSessionStore } from '../src/adapters/express.js';
import { hashSessionId } from '../src/index.js';
import { backendsForThisFile, delay, dropTable, LOCKING_MODES, type Backend } from './support/backends.js';

const backends = await backendsForThisFile();

const PARALLEL = 20;
const ROUNDS = 20;

declare module 'express-session' {
  interface SessionData {
    [key: string]: unknown;
  }
}

interface Server {
  readonly base: string;
  close(): Promise<void>;
}

function buildApp(store: SmartSessionStore, resave: boolean): express.Express {
  const app = express();
  app.use(session({ secret: 'test secret', resave, saveUninitialized: false, store, cookie: { maxAge: 3_600_000 } }));
  app.post('/start', (req, res) => {
    req.session['started'] = true;
    res.json({ id: req.sessionID });
  });
  app.post('/set/:key', async (req, res) => {
    await delay(Math.random() * 20);
    req.session[`k_${req.params['key']}`] = req.params['key'];
    res.json({ ok: true });
  });
  app.get('/keys', (req, res) => {
    res.json({ id: req.sessionID, keys: Object.keys(req.session).filter((key) => key.startsWith('k_')).sort() });
  });
  app.post('/login', (req, res, next) => {
    req.session.regenerate((error) => {
      if (error) return next(error);
      req.session['user'] = 'ann';
      res.json({ id: req.sessionID });
    });
  });
  app.post('/logout', (req, res, next) => {
    req.session.destroy((error) => (error ? next(error) : res.json({ ok: true })));
  });
  app.post('/reload-and-set/:key', (req, res, next) => {
    req.session.reload((error) => {
      if (error) return next(error);
      req.session[`k_${req.params['key']}`] = true;
      res.json({ ok: true });
    });
  });
  app.get('/read', (req, res) => {
    res.json({ started: req.session['started'] ?? null });
  });
  return app;
}

async function listen(app: express.Express): Promise<Server> {
  const server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** A client that keeps its session cookie, as a browser does. */
class Client {
  cookie: string | undefined;
  constructor(private readonly base: string) {}
  async request(method: string, path: string): Promise<Record<string, unknown>> {
    const response = await fetch(this.base + path, { method, headers: this.cookie ? { cookie: this.cookie } : {} });
    const setCookie = response.headers.get('set-cookie');
    if (setCookie) this.cookie = setCookie.split(';')[0];
    assert.equal(response.status, 200, `${method} ${path} answered ${response.status}: ${await response.clone().text()}`);
    return (await response.json()) as Record<string, unknown>;
  }
}

function rowCount(backend: Backend, table: string, key: string): Promise<Record<string, unknown>[]> {
  return backend.query(`SELECT id FROM ${table} WHERE id = ${backend.name === 'postgres' ? '$1' : '?'}`, [key]);
}

for (const backend of backends) {
  for (const locking of LOCKING_MODES) {
    describe(`express-session on ${backend.name} / ${locking}`, () => {
      const table = `ssn_express_${locking}`;
      let store: SmartSessionStore;
      let server: Server;

      before(async () => {
        await dropTable(backend, table);
        store = new SmartSessionStore({ url: backend.url, table, locking });
        await store.createTable();
        server = await listen(buildApp(store, false));
      });
      after(async () => {
        await server.close();
        await store.close();
      });

      test(`${PARALLEL} parallel requests on one session each set a key: all kept, ${ROUNDS} rounds`, async () => {
        for (let round = 0; round < ROUNDS; round++) {
          const client = new Client(server.base);
          await client.request('POST', '/start');
          const keys = Array.from({ length: PARALLEL }, (_, i) => `r${round}_${i}`);
          await Promise.all(keys.map((key) => client.request('POST', `/set/${key}`)));
          const { keys: kept } = await client.request('GET', '/keys');
          assert.deepStrictEqual(kept, keys.map((key) => `k_${key}`).sort(), `round ${round}`);
        }
      });

      test('regenerate: the old id is gone at once, and requests still carrying it cannot bring it back', async () => {
        const client = new Client(server.base);
        const { id: oldId } = await client.request('POST', '/start');
        const stale = new Client(server.base);
        stale.cookie = client.cookie;
        const { id: newId } = await client.request('POST', '/login');
        assert.notEqual(newId, oldId);
        assert.equal((await rowCount(backend, table, hashSessionId(String(oldId)))).length, 0);
        await Promise.all(Array.from({ length: 5 }, (_, i) => stale.request('POST', `/set/stale${i}`)));
        assert.equal((await rowCount(backend, table, hashSessionId(String(oldId)))).length, 0);
        assert.equal((await rowCount(backend, table, hashSessionId(String(newId)))).length, 1);
      });

      test('logout sticks against concurrent writes of the same session', async () => {
        const client = new Client(server.base);
        const { id } = await client.request('POST', '/start');
        const loggedInCookie = client.cookie;
        const writes = Array.from({ length: 10 }, (_, i) => client.request('POST', `/set/late${i}`));
        await delay(5);
        await client.request('POST', '/logout');
        await Promise.all(writes);
        assert.equal((await rowCount(backend, table, hashSessionId(String(id)))).length, 0);
        const after = new Client(server.base);
        // A late write may have been given a fresh session (and cookie); the old cookie finds nothing.
        after.cookie = loggedInCookie;
        assert.deepStrictEqual((await after.request('GET', '/keys'))['keys'], []);
      });

      test('reload through express-session, then a change: saved as a delta', async () => {
        const client = new Client(server.base);
        await client.request('POST', '/start');
        await Promise.all([client.request('POST', '/reload-and-set/one'), client.request('POST', '/set/two')]);
        assert.deepStrictEqual((await client.request('GET', '/keys'))['keys'], ['k_one', 'k_two']);
      });
    });
  }

  describe(`express-session on ${backend.name}: resave`, () => {
    const table = 'ssn_express_resave';
    let store: SmartSessionStore;
    let server: Server;
    before(async () => {
      await dropTable(backend, table);
      store = new SmartSessionStore({ url: backend.url, table, createTable: true });
      server = await listen(buildApp(store, true));
    });
    after(async () => {
      await server.close();
      await store.close();
      await dropTable(backend, table);
    });

    test('with resave: true, a request that changed nothing writes no data', async () => {
      const client = new Client(server.base);
      const { id } = await client.request('POST', '/start');
      const key = hashSessionId(String(id));
      const p = backend.name === 'postgres' ? ['$1', '$2'] : ['?', '?'];
      const [row] = await backend.query(`SELECT data FROM ${table} WHERE id = ${p[0]}`, [key]);
      const stored = (typeof row?.['data'] === 'string' ? JSON.parse(row['data']) : row?.['data']) as Record<string, unknown>;
      // Slow read-only requests overlap a write by someone else: their resave must not erase it.
      const reads = Array.from({ length: 5 }, () => client.request('GET', '/read'));
      await backend.query(`UPDATE ${table} SET data = ${p[0]} WHERE id = ${p[1]}`, [JSON.stringify({ ...stored, k_meanwhile: 'x' }), key]);
      await Promise.all(reads);
      assert.deepStrictEqual((await client.request('GET', '/keys'))['keys'], ['k_meanwhile']);
    });
  });
}
