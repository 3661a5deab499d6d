/**
 * What is Hono's own (`smart-session-store/hono`), through a real Hono app
 * over HTTP on every backend: the typed `c.var.session`, `Set-Cookie` only
 * when needed, the awaited write (an answer means a committed change; a
 * failing write is an error response, never a 200), errors in handlers,
 * immutable responses, flash messages, regenerate and destroy, tampered
 * cookies. Parallel requests, logout races and statement counts are in
 * frameworks.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { getRequestListener } from '@hono/node-server';
import { Hono } from 'hono';
import { HonoSessionStore, SessionStoreError, type SessionEnv } from '../src/adapters/hono.js';
import { hashSessionId } from '../src/index.js';
import { backendsForThisFile, delay, dropTable, isStoreError } from './support/backends.js';
import { holdSaves } from './support/frameworks/fetch.js';
import { listen, type RunningServer } from './support/http.js';

const backends = await backendsForThisFile();

/** What the test app's sessions hold. */
interface CartSession {
  cart?: Record<string, number>;
  user?: string;
  big?: string;
  thrown?: boolean;
}

/** Its flash messages. */
interface CartFlash {
  notice: string;
  [name: `n${number}`]: string;
}

// Types only: a chain infers the session from the middleware; a wrong use does not compile.
function typesOnly(sessions: HonoSessionStore<CartSession, CartFlash>): void {
  new Hono().use(sessions.middleware).get('/', (c) => {
    const cart: Record<string, number> | undefined = c.var.session.get('cart');
    // @ts-expect-error a cart holds numbers
    c.var.session.set('cart', { apple: 'one' });
    // @ts-expect-error no such key
    c.get('session').get('nope');
    return c.json(cart ?? {});
  });
}
void typesOnly;

/** The `name=value` of the first `Set-Cookie` of a response. */
function cookieOf(response: Response): string {
  const [setCookie] = response.headers.getSetCookie();
  assert.ok(setCookie !== undefined, 'expected a Set-Cookie');
  return setCookie.split(';')[0] as string;
}

/** The session id in a `sid=` cookie pair. */
function idOf(cookie: string): string {
  return decodeURIComponent(cookie.slice('sid='.length))
    .slice(2)
    .replace(/\.[^.]*$/, '');
}

for (const backend of backends) {
  describe(`hono on ${backend.name}`, () => {
    const table = 'ssn_hono';
    let sessions: HonoSessionStore<CartSession, CartFlash>;
    let server: RunningServer;
    const caught: unknown[] = [];

    before(async () => {
      await dropTable(backend, table);
      sessions = new HonoSessionStore<CartSession, CartFlash>({
        url: backend.url,
        table,
        createTable: true,
        autopurge: false,
        maxSize: 4096,
        secret: 'hono secret',
        cookie: { maxAge: 3600 },
      });
      const app = new Hono<SessionEnv<CartSession, CartFlash>>();
      app.onError((error, c) => {
        caught.push(error);
        return c.json({ error: error instanceof SessionStoreError ? error.code : error.message }, 500);
      });
      app.use(sessions.middleware);
      app.post('/cart/:item', (c) => {
        const session = c.var.session;
        const cart = session.get('cart') ?? {};
        const item = c.req.param('item');
        cart[item] = (cart[item] ?? 0) + 1;
        session.set('cart', cart);
        return c.json(cart);
      });
      app.get('/cart', (c) => c.json(c.var.session.get('cart') ?? {}));
      const nested = new Hono<SessionEnv<CartSession, CartFlash>>();
      nested.use(sessions.middleware);
      nested.post('/cart/:item', (c) => {
        const cart = c.var.session.get('cart') ?? {};
        cart[c.req.param('item')] = 1;
        c.var.session.set('cart', cart);
        return c.json(cart);
      });
      app.route('/nested', nested);
      app.post('/big', (c) => {
        c.var.session.set('big', 'x'.repeat(10_000));
        return c.json({ ok: true });
      });
      app.post('/throw', (c) => {
        c.var.session.set('thrown', true);
        throw new Error('handler failed');
      });
      app.get('/thrown', (c) => c.json({ thrown: c.var.session.get('thrown') ?? null }));
      app.post('/redirect', (c) => {
        c.var.session.set('user', 'ann');
        return Response.redirect(new URL('/cart', c.req.url), 303);
      });
      app.post('/flash/:name', (c) => {
        c.var.session.flash(c.req.param('name') as 'notice', 'hello');
        return c.json({ ok: true });
      });
      app.get('/flashes', (c) => {
        const session = c.var.session;
        const names = Object.keys(session.data)
          .filter((key) => key.startsWith('__flash_'))
          .map((key) => key.slice('__flash_'.length, -2) as 'notice');
        return c.json({ seen: names.filter((name) => session.get(name) !== undefined).sort() });
      });
      app.post('/login', async (c) => {
        await c.var.session.regenerate();
        c.var.session.set('user', 'ann');
        return c.json({ id: c.var.session.id });
      });
      app.post('/logout', async (c) => {
        await c.var.session.destroy();
        if (c.req.query('flash') !== undefined) c.var.session.flash('notice', 'bye');
        return c.json({ ok: true });
      });
      server = await listen(createServer(getRequestListener(app.fetch, { overrideGlobalObjects: false })));
    });
    after(async () => {
      await server.close();
      await sessions.close();
      await dropTable(backend, table);
    });

    const send = (path: string, cookie = '', method = 'POST') => fetch(server.base + path, { method, headers: { cookie }, redirect: 'manual' });
    const stored = async (id: string) => (await backend.rows(table).read(hashSessionId(id)))?.data;

    test('c.var.session: Set-Cookie only for a new stored session; no write and no cookie for a visitor who stores nothing', async () => {
      const visitor = await send('/cart', '', 'GET');
      assert.deepStrictEqual(await visitor.json(), {});
      assert.deepStrictEqual(visitor.headers.getSetCookie(), []);
      const first = await send('/cart/apple');
      const cookie = cookieOf(first);
      assert.match(first.headers.getSetCookie()[0] as string, /^sid=s%3A[^;]+; Path=\/; Max-Age=3600; Expires=[^;]+; HttpOnly; SameSite=Lax$/);
      assert.deepStrictEqual(await first.json(), { apple: 1 });
      const second = await send('/cart/apple', cookie);
      assert.deepStrictEqual(await second.json(), { apple: 2 });
      assert.deepStrictEqual(second.headers.getSetCookie(), []);
      assert.deepStrictEqual(await stored(idOf(cookie)), { cart: { apple: 2 } });
      const read = await send('/cart', cookie, 'GET');
      assert.deepStrictEqual(read.headers.getSetCookie(), []);
    });

    test('the middleware used again on a sub-app opens and commits the session once', async () => {
      const cookie = cookieOf(await send('/cart/fig'));
      const { store } = sessions;
      const open = store.open;
      let loads = 0;
      store.open = function counted(this: typeof store, ...args: Parameters<typeof open>) {
        loads++;
        return open.apply(this, args);
      };
      try {
        const answer = await send('/nested/cart/date', cookie);
        assert.deepStrictEqual(await answer.json(), { fig: 1, date: 1 });
        assert.deepStrictEqual(answer.headers.getSetCookie(), []);
      } finally {
        store.open = open;
      }
      assert.equal(loads, 1);
      assert.deepStrictEqual(await stored(idOf(cookie)), { cart: { fig: 1, date: 1 } });
    });

    test('an answer means a committed change: the response waits for the write', async () => {
      const cookie = cookieOf(await send('/cart/pear'));
      const held = holdSaves(sessions.store);
      let answered = false;
      const answer = send('/cart/pear', cookie).then((response) => {
        answered = true;
        return response;
      });
      await held.arrived;
      await delay(100);
      assert.equal(answered, false, 'no answer while the write is held');
      held.release();
      assert.equal((await answer).status, 200);
      assert.deepStrictEqual(await stored(idOf(cookie)), { cart: { pear: 2 } }, 'committed when the answer arrives');
    });

    test("a failing write is an error response (app.onError), never the handler's 200", async () => {
      const cookie = cookieOf(await send('/cart/fig'));
      caught.length = 0;
      const failed = await send('/big', cookie);
      assert.equal(failed.status, 500);
      assert.deepStrictEqual(await failed.json(), { error: 'ERR_SESSION_TOO_LARGE' });
      assert.deepStrictEqual(failed.headers.getSetCookie(), []);
      assert.ok(caught[0] instanceof SessionStoreError);
      assert.deepStrictEqual(await stored(idOf(cookie)), { cart: { fig: 1 } });
      const fresh = await send('/big');
      assert.equal(fresh.status, 500);
      assert.deepStrictEqual(fresh.headers.getSetCookie(), [], 'no cookie for a session that could not be stored');
    });

    test('a handler that throws gets the error response; what it changed is committed (as express-session and koa-session do)', async () => {
      const cookie = cookieOf(await send('/cart/kiwi'));
      const failed = await send('/throw', cookie);
      assert.equal(failed.status, 500);
      assert.deepStrictEqual(await failed.json(), { error: 'handler failed' });
      assert.deepStrictEqual(await (await send('/thrown', cookie, 'GET')).json(), { thrown: true });
    });

    test('an immutable response (Response.redirect) still gets the cookie', async () => {
      const response = await send('/redirect');
      assert.equal(response.status, 303);
      assert.equal(response.headers.get('location'), `${server.base}/cart`);
      const cookie = cookieOf(response);
      assert.equal((await stored(idOf(cookie)))?.['user'], 'ann');
    });

    test('flashes: each set by one of many concurrent requests, each seen exactly once', async () => {
      const cookie = cookieOf(await send('/cart/plum'));
      const names = Array.from({ length: 10 }, (_, i) => `n${i}`);
      await Promise.all(names.map((name) => send(`/flash/${name}`, cookie)));
      const [first, second] = await Promise.all([send('/flashes', cookie, 'GET'), send('/cart/plum', cookie)]);
      assert.deepStrictEqual(((await first.json()) as { seen: string[] }).seen, names.sort());
      assert.equal(second.status, 200);
      assert.deepStrictEqual(((await (await send('/flashes', cookie, 'GET')).json()) as { seen: string[] }).seen, []);
      assert.deepStrictEqual(await (await send('/cart', cookie, 'GET')).json(), { plum: 2 });
    });

    test('login regenerates: a new cookie, the old session gone and not brought back by its stale cookie', async () => {
      const oldCookie = cookieOf(await send('/cart/lime'));
      const login = await send('/login', oldCookie);
      const newCookie = cookieOf(login);
      assert.equal(((await login.json()) as { id: string }).id, idOf(newCookie));
      assert.notEqual(newCookie, oldCookie);
      assert.equal(await stored(idOf(oldCookie)), undefined);
      const stale = await send('/cart/lime', oldCookie);
      assert.deepStrictEqual(await stale.json(), { lime: 1 }, 'the stale cookie starts a new session');
      assert.notEqual(cookieOf(stale), oldCookie);
      assert.equal(await stored(idOf(oldCookie)), undefined);
      assert.deepStrictEqual(await stored(idOf(newCookie)), { user: 'ann' });
    });

    test('logout clears the cookie; logout with a flash starts a new session holding it', async () => {
      const cookie = cookieOf(await send('/cart/date'));
      const logout = await send('/logout', cookie);
      assert.match(logout.headers.getSetCookie()[0] as string, /^sid=; Path=\/; Max-Age=0; Expires=Thu, 01 Jan 1970 00:00:00 GMT/);
      assert.equal(await stored(idOf(cookie)), undefined);
      const other = cookieOf(await send('/cart/date'));
      const withFlash = await send('/logout?flash', other);
      const flashCookie = cookieOf(withFlash);
      assert.notEqual(idOf(flashCookie), idOf(other));
      assert.deepStrictEqual(await stored(idOf(flashCookie)), { __flash_notice__: 'bye' });
    });

    test('cookie.maxAge is in seconds, at most 400 days: a day in milliseconds is refused, naming the unit; 400 days is served as it is', async () => {
      // A day in milliseconds, as express users write it: in seconds, a cookie of 1000 days.
      assert.throws(
        () => new HonoSessionStore({ url: backend.url, table, secret: 'hono secret', cookie: { maxAge: 24 * 3600 * 1000 } }),
        isStoreError(
          'ERR_INVALID_OPTION',
          'option "cookie.maxAge" is in seconds, and 86400000 s (1000 days) is more than the 34560000 s (400 days) browsers keep a cookie; if 86400000 is milliseconds (as express counts), divide by 1000: cookie.maxAge: 86400 (1 day)',
        ),
      );
      const longest = new HonoSessionStore({
        url: backend.url,
        table,
        createTable: true,
        autopurge: false,
        secret: 'hono secret',
        cookie: { maxAge: 400 * 24 * 3600 },
      });
      const app = new Hono().use(longest.middleware);
      app.post('/start', (c) => {
        c.var.session.set('started', true);
        return c.json({ id: c.var.session.id });
      });
      const longServer = await listen(createServer(getRequestListener(app.fetch, { overrideGlobalObjects: false })));
      try {
        const response = await fetch(`${longServer.base}/start`, { method: 'POST' });
        const { id } = (await response.json()) as { id: string };
        assert.match(response.headers.getSetCookie()[0] ?? '', /; Max-Age=34560000; /);
        const expiresAt = (await longest.store.load(id))?.state.expiresAt ?? 0;
        assert.ok(Math.abs(expiresAt - (Date.now() + 400 * 24 * 3600_000)) < 10_000, `stored expiry ${new Date(expiresAt).toISOString()}`);
      } finally {
        await longServer.close();
        await longest.close();
      }
    });

    test('a tampered cookie names no session', async () => {
      const cookie = cookieOf(await send('/cart/yuzu'));
      const tampered = cookie.slice(0, -2) + (cookie.endsWith('AA') ? 'BB' : 'AA');
      const response = await send('/cart', tampered, 'GET');
      assert.deepStrictEqual(await response.json(), {});
      assert.deepStrictEqual(response.headers.getSetCookie(), []);
    });
  });
}
