/**
 * What is express-session's own, through a real express app and HTTP:
 * `reload` and `resave`. The scenarios every framework shares (parallel
 * requests, regenerate, logout, statements per request) are in
 * frameworks.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import session from 'express-session';
import { SmartSessionStore } from '../src/adapters/express.js';
import { hashSessionId } from '../src/index.js';
import { backendsForThisFile, dropTable, LOCKING_MODES } from './support/backends.js';
import { handlerDelay, keysOf } from './support/frameworks/harness.js';
import { Client, listen, type RunningServer } from './support/http.js';

const backends = await backendsForThisFile();

function buildApp(store: SmartSessionStore, resave: boolean, maxAge = 3_600_000): express.Express {
  const app = express();
  app.use(session({ secret: 'test secret', resave, saveUninitialized: false, store, cookie: { maxAge } }));
  app.post('/start', (req, res) => {
    req.session['started'] = true;
    res.json({ id: req.sessionID });
  });
  app.post('/set/:key', async (req, res) => {
    await handlerDelay();
    req.session[`k_${req.params['key']}`] = req.params['key'];
    res.json({ ok: true });
  });
  app.get('/keys', (req, res) => {
    res.json({ id: req.sessionID, keys: keysOf(req.session) });
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
  app.get('/max-age', (req, res) => {
    res.json({ started: req.session['started'] ?? null, maxAge: req.session.cookie.maxAge });
  });
  return app;
}

for (const backend of backends) {
  for (const locking of LOCKING_MODES) {
    describe(`express-session on ${backend.name} / ${locking}`, () => {
      const table = `ssn_express_${locking}`;
      let store: SmartSessionStore;
      let server: RunningServer;

      before(async () => {
        await dropTable(backend, table);
        store = new SmartSessionStore({ url: backend.url, table, locking });
        await store.createTable();
        server = await listen(createServer(buildApp(store, false)));
      });
      after(async () => {
        await server.close();
        await store.close();
        await dropTable(backend, table);
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
    let server: RunningServer;
    before(async () => {
      await dropTable(backend, table);
      store = new SmartSessionStore({ url: backend.url, table, createTable: true });
      server = await listen(createServer(buildApp(store, true)));
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
      const rows = backend.rows(table);
      const stored = (await rows.read(key))?.data ?? {};
      // Slow read-only requests overlap a write by someone else: their resave must not erase it.
      const reads = Array.from({ length: 5 }, () => client.request('GET', '/read'));
      await rows.rewrite(key, JSON.stringify({ ...stored, k_meanwhile: 'x' }));
      await Promise.all(reads);
      assert.deepStrictEqual((await client.request('GET', '/keys'))['keys'], ['k_meanwhile']);
    });
  });

  describe(`express-session on ${backend.name}: a short session kept alive by reads`, () => {
    const table = 'ssn_express_alive';
    const maxAge = 3000;
    let store: SmartSessionStore;
    let server: RunningServer;
    before(async () => {
      await dropTable(backend, table);
      // touchAfter (60 s) is far longer than this session lives: the store must touch it anyway.
      store = new SmartSessionStore({ url: backend.url, table, createTable: true, autopurge: false });
      server = await listen(createServer(buildApp(store, false, maxAge)));
    });
    after(async () => {
      await server.close();
      await store.close();
      await dropTable(backend, table);
    });

    test('read-only requests keep it alive past its maxAge, and cookie.maxAge stays close to the original', async () => {
      const client = new Client(server.base);
      await client.request('POST', '/start');
      let previous = Date.now();
      const seen: number[] = [];
      // 10 reads 400 ms apart: longer than the session's 3 s, so only touches keep it alive.
      for (let read = 0; read < 10; read++) {
        await new Promise((resolve) => setTimeout(resolve, 400));
        const sinceLast = Date.now() - previous;
        const { started, maxAge: left } = await client.request('GET', '/max-age');
        previous = Date.now();
        seen.push(Number(left));
        assert.equal(started, true, `read ${read}: the session expired while in use (cookie.maxAge seen so far: ${seen.join(', ')})`);
        // A touch lags the rolling expiry by at most a tenth of the lifetime: what is left is at least that, less the wait.
        assert.ok(
          Number(left) >= maxAge * 0.9 - sinceLast - 100,
          `read ${read}: cookie.maxAge ${String(left)} after ${sinceLast} ms (seen: ${seen.join(', ')})`,
        );
      }
    });
  });
}
