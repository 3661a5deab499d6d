/**
 * What is React Router's own (`smart-session-store/react-router`), on every
 * backend: the `SessionStorage` (React Router's own sessions and cookies,
 * tied to their load by object), flash messages as React Router defines
 * them under overlapping requests, a destroyed session that a concurrent
 * commit cannot bring back (remix-run/remix#4778), secret rotation and
 * tampered cookies; and the middleware through a real request handler over
 * HTTP: one load per request, `Set-Cookie` only when needed, commits after
 * redirects and errors, the awaited write. Parallel requests, logout races
 * and statement counts are in frameworks.test.ts.
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { createRequestListener } from '@react-router/node';
import { createCookie, createSession, redirect, type RouterContextProvider, type Session } from 'react-router';
import { createSmartSessionStorage, SessionStoreError, type SmartSessionStorage, type SmartSessionStorageOptions } from '../src/adapters/react-router.js';
import { hashSessionId } from '../src/index.js';
import { backendsForThisFile, delay, dropTable, isStoreError, type Backend } from './support/backends.js';
import { holdSaves } from './support/frameworks/fetch.js';
import { serverBuild, type RouteModule } from './support/frameworks/react-router.js';
import { listen, type RunningServer } from './support/http.js';

const backends = await backendsForThisFile();

/** Warnings the process emitted, by code. */
const warnings: string[] = [];
process.on('warning', (warning: Error & { code?: string }) => {
  if (warning.code !== undefined) warnings.push(warning.code);
});

/** The `name=value` pair of a `Set-Cookie`, as a browser sends it back. */
function pairOf(setCookie: string | undefined): string {
  assert.ok(setCookie !== undefined && setCookie !== '', `expected a Set-Cookie, got ${JSON.stringify(setCookie)}`);
  return setCookie.split(';')[0] as string;
}

async function storedData(backend: Backend, table: string, id: string): Promise<Record<string, unknown> | undefined> {
  return (await backend.rows(table).read(hashSessionId(id)))?.data;
}

const SECRETS = ['rr secret'];

for (const [index, backend] of backends.entries()) {
  describe(`react-router on ${backend.name}`, () => {
    const table = 'ssn_react_router';
    const made: SmartSessionStorage[] = [];
    const storageWith = (options: Partial<SmartSessionStorageOptions> = {}): SmartSessionStorage => {
      const storage = createSmartSessionStorage({ url: backend.url, table, autopurge: false, cookie: { secrets: SECRETS, maxAge: 3600 }, ...options });
      made.push(storage);
      return storage;
    };

    before(async () => {
      await dropTable(backend, table);
      const creator = createSmartSessionStorage({ url: backend.url, table, cookie: { secrets: SECRETS } });
      await creator.createTable();
      await creator.close();
    });
    after(async () => {
      for (const storage of made) await storage.close();
      await dropTable(backend, table);
    });

    describe('SessionStorage', () => {
      test("getSession, commitSession, destroySession: React Router's sessions and cookie; a new session has its id at once, stored only holding something", async () => {
        const storage = storageWith();
        const { getSession, commitSession, destroySession } = storage;
        const fresh = await getSession(null);
        assert.match(fresh.id, /^[A-Za-z0-9_-]{32}$/);
        assert.equal(await commitSession(fresh), '', 'a new, empty session writes nothing and sets no cookie');
        assert.equal(await storedData(backend, table, fresh.id), undefined);
        fresh.set('user', 'ann');
        const setCookie = await commitSession(fresh);
        assert.equal(await createCookie('__session', { secrets: SECRETS }).parse(pairOf(setCookie)), fresh.id, "React Router's own cookie format");
        assert.match(setCookie, /; Max-Age=3600; Path=\/; HttpOnly; SameSite=Lax$/);
        assert.deepStrictEqual(await storedData(backend, table, fresh.id), { user: 'ann' });
        const loaded = await getSession(pairOf(setCookie));
        assert.equal(loaded.id, fresh.id);
        assert.equal(loaded.get('user'), 'ann');
        assert.equal(pairOf(await commitSession(loaded)), pairOf(setCookie), "a stored session's commit gives its cookie, as React Router's storages do");
        const cleared = await destroySession(loaded);
        assert.match(cleared, /^__session=; Max-Age=0|^__session=; .*Expires=Thu, 01 Jan 1970/);
        assert.equal(await storedData(backend, table, fresh.id), undefined);
        const after = await getSession(pairOf(setCookie));
        assert.notEqual(after.id, fresh.id, 'a cookie naming a destroyed session gets a new id');
        assert.equal(after.get('user'), undefined);
      });

      test("each commit writes only its request's change: two overlapping requests both keep theirs", async () => {
        const storage = storageWith();
        const start = await storage.getSession();
        start.set('cart', { apple: 1 });
        const cookie = pairOf(await storage.commitSession(start));
        const [first, second] = await Promise.all([storage.getSession(cookie), storage.getSession(cookie)]);
        first.set('cart', { ...first.get('cart'), pear: 1 });
        second.set('coupon', 'TEN');
        const nested = second.get('cart') as Record<string, number>;
        nested['apple'] = 2;
        await storage.commitSession(first);
        await storage.commitSession(second);
        assert.deepStrictEqual(await storedData(backend, table, start.id), { cart: { apple: 2, pear: 1 }, coupon: 'TEN' });
      });

      test('flash: read once and gone; a flash set meanwhile survives a request that did not read it, and is not brought back by one that saved its stale copy', async () => {
        const storage = storageWith();
        const start = await storage.getSession();
        start.set('user', 'ann');
        const cookie = pairOf(await storage.commitSession(start));
        const early = await storage.getSession(cookie);
        const action = await storage.getSession(cookie);
        action.flash('notice', 'saved');
        await storage.commitSession(action);
        early.set('visits', 1);
        await storage.commitSession(early);
        // Two requests that loaded the flash: one reads it, the other commits without reading it (remix-run/remix#5647).
        const [reader, bystander] = await Promise.all([storage.getSession(cookie), storage.getSession(cookie)]);
        assert.equal(reader.get('notice'), 'saved');
        assert.equal(reader.get('notice'), undefined);
        await storage.commitSession(reader);
        bystander.set('visits', 2);
        await storage.commitSession(bystander);
        const later = await storage.getSession(cookie);
        assert.equal(later.has('notice'), false, 'seen exactly once');
        assert.equal(later.get('visits'), 2);
      });

      test('a destroyed session is not brought back by a concurrent commit (remix-run/remix#4778)', async () => {
        const storage = storageWith();
        const start = await storage.getSession();
        start.set('user', 'ann');
        const cookie = pairOf(await storage.commitSession(start));
        const [slow, logout] = await Promise.all([storage.getSession(cookie), storage.getSession(cookie)]);
        await storage.destroySession(logout);
        slow.set('late', true);
        await storage.commitSession(slow);
        assert.equal(await storedData(backend, table, start.id), undefined);
        const next = await storage.getSession(cookie);
        assert.notEqual(next.id, start.id);
        assert.deepStrictEqual(next.data, {});
      });

      test('regenerateSession: a new id and nothing of the old; the old is deleted at once and commits of it clear the cookie', async () => {
        const storage = storageWith();
        const start = await storage.getSession();
        start.set('cart', ['apple']);
        const cookie = pairOf(await storage.commitSession(start));
        const old = await storage.getSession(cookie);
        const renewed = await storage.regenerateSession(old);
        assert.notEqual(renewed.id, old.id);
        assert.deepStrictEqual(renewed.data, {});
        assert.equal(await storedData(backend, table, old.id), undefined);
        renewed.set('user', 'ann');
        assert.notEqual(pairOf(await storage.commitSession(renewed)), cookie);
        assert.match(await storage.commitSession(old), /^__session=;/);
        assert.equal(await storedData(backend, table, old.id), undefined);
        assert.deepStrictEqual(await storedData(backend, table, renewed.id), { user: 'ann' });
      });

      test('secret rotation: the first secret signs, every one verifies; tampered and foreign cookies name no session', async () => {
        const before = storageWith({ cookie: { secrets: ['old secret'], maxAge: 3600 } });
        const start = await before.getSession();
        start.set('kept', true);
        const oldCookie = pairOf(await before.commitSession(start));
        const rotated = storageWith({ cookie: { secrets: ['new secret', 'old secret'], maxAge: 3600 } });
        const loaded = await rotated.getSession(oldCookie);
        assert.equal(loaded.get('kept'), true);
        const renewed = pairOf(await rotated.commitSession(loaded));
        assert.equal(await createCookie('__session', { secrets: ['new secret'] }).parse(renewed), start.id);
        const retired = storageWith({ cookie: { secrets: ['new secret'], maxAge: 3600 } });
        assert.equal((await retired.getSession(oldCookie)).get('kept'), undefined);
        const value = oldCookie.slice('__session='.length);
        const unsigned = await createCookie('__session').serialize(start.id);
        for (const cookie of [`__session=${value.slice(0, -3)}abc`, `__session=x${value}`, pairOf(unsigned), '__session=', '__session=%%%', 'other=1']) {
          const session = await before.getSession(cookie);
          assert.notEqual(session.id, start.id, cookie);
          assert.equal(session.get('kept'), undefined, cookie);
        }
      });

      test('saveUninitialized stores an empty session; values JSON cannot hold are refused and nothing is written', async () => {
        const eager = storageWith({ saveUninitialized: true });
        const empty = await eager.getSession();
        const cookie = pairOf(await eager.commitSession(empty));
        assert.deepStrictEqual(await storedData(backend, table, empty.id), {});
        const live = await eager.getSession(cookie);
        live.set('when', new Date(0));
        live.set('big', 10n);
        await assert.rejects(eager.commitSession(live), isStoreError('ERR_VALUE_NOT_STORABLE'));
        assert.deepStrictEqual(await storedData(backend, table, empty.id), {});
        live.unset('big');
        await eager.commitSession(live);
        assert.deepStrictEqual(await storedData(backend, table, empty.id), { when: '1970-01-01T00:00:00.000Z' });
      });

      test("the storage's own cookie and methods: a user-given Cookie, options checked, the store methods", async () => {
        const cookie = createCookie('custom', { secrets: SECRETS, path: '/app', maxAge: 60 });
        const storage = storageWith({ cookie });
        assert.equal(storage.cookie, cookie);
        const session = await storage.getSession();
        session.set('a', 1);
        assert.match(await storage.commitSession(session), /^custom=.*; Max-Age=60; Path=\/app; SameSite=Lax$/);
        assert.ok((await storage.stats()).live >= 1);
        assert.throws(
          () => createSmartSessionStorage({ url: backend.url, table, rolling: 'yes' as unknown as boolean }),
          isStoreError('ERR_INVALID_OPTION', '"rolling"'),
        );
        assert.throws(
          () => createSmartSessionStorage({ url: backend.url, table, ['cookies' as 'cookie']: {} }),
          isStoreError('ERR_INVALID_OPTION', '"cookies"'),
        );
      });

      test('cookie.maxAge given as options is in seconds, at most 400 days: a day in milliseconds is refused, naming the unit; 400 days is kept as it is', async () => {
        // A day in milliseconds, as express users write it: in seconds, a cookie of 1000 days.
        assert.throws(
          () => storageWith({ cookie: { secrets: SECRETS, maxAge: 24 * 3600 * 1000 } }),
          isStoreError(
            'ERR_INVALID_OPTION',
            'option "cookie.maxAge" is in seconds, and 86400000 s (1000 days) is more than the 34560000 s (400 days) browsers keep a cookie; if 86400000 is milliseconds (as express counts), divide by 1000: cookie.maxAge: 86400 (1 day)',
          ),
        );
        const storage = storageWith({ cookie: { secrets: SECRETS, maxAge: 400 * 24 * 3600 } });
        const session = await storage.getSession();
        session.set('a', 1);
        assert.match(await storage.commitSession(session), /; Max-Age=34560000; /);
        const expiresAt = (await storage.store.load(session.id))?.state.expiresAt ?? 0;
        assert.ok(Math.abs(expiresAt - (Date.now() + 400 * 24 * 3600_000)) < 10_000, `stored expiry ${new Date(expiresAt).toISOString()}`);
      });

      if (index === 0) {
        test('a session the storage did not give out is stored whole, with a warning; an unsigned cookie gets a warning', async () => {
          const storage = storageWith();
          const foreign: Session = createSession({ made: 'by hand' });
          const setCookie = await storage.commitSession(foreign);
          const id = (await storage.cookie.parse(pairOf(setCookie))) as string;
          assert.deepStrictEqual(await storedData(backend, table, id), { made: 'by hand' });
          storageWith({ cookie: { name: 'plain' } });
          await delay(10);
          assert.ok(warnings.includes('SMART_SESSION_STORE_UNTIED_SESSION'), warnings.join());
          assert.ok(warnings.includes('SMART_SESSION_STORE_UNSIGNED_COOKIE'), warnings.join());
        });
      }
    });

    describe('middleware, through a request handler over HTTP', () => {
      let storage: SmartSessionStorage;
      let server: RunningServer;

      before(async () => {
        storage = storageWith({ maxSize: 4096 });
        const sessionOf = (context: Readonly<RouterContextProvider>): Session => context.get(storage.context);
        const routes: Record<string, RouteModule> = {
          set: {
            action: ({ context, request }) => {
              sessionOf(context).set('value', new URL(request.url).searchParams.get('v'));
              return Response.json({ ok: true });
            },
          },
          read: { loader: ({ context }) => Response.json({ value: sessionOf(context).get('value') ?? null, data: sessionOf(context).data }) },
          page: {
            loader: ({ context }) => ({ page: sessionOf(context).get('notice') ?? null }),
            action: ({ context }) => {
              sessionOf(context).flash('notice', 'saved');
              return redirect('/page');
            },
            default: () => null,
          },
          flashes: {
            loader: ({ context }) => {
              sessionOf(context).flash('second', 'from the child');
              return { child: true };
            },
            default: () => null,
          },
          'flash/:name': {
            action: ({ context, params }) => {
              sessionOf(context).flash(params['name'] as string, 'hello');
              return Response.json({ ok: true });
            },
          },
          'redirect-after-set': {
            action: ({ context }) => {
              sessionOf(context).set('redirected', true);
              throw redirect('/read');
            },
          },
          fail: {
            loader: ({ context }) => {
              sessionOf(context).set('failed', true);
              throw new Error('loader failed');
            },
          },
          big: {
            action: ({ context }) => {
              sessionOf(context).set('big', 'x'.repeat(10_000));
              return Response.json({ ok: true });
            },
          },
          'big-page': {
            action: ({ context }) => {
              sessionOf(context).set('big', 'x'.repeat(10_000));
              return { ok: true };
            },
            loader: () => ({}),
            default: () => null,
          },
          'own-commit': {
            action: async ({ context }) => {
              const session = sessionOf(context);
              session.set('own', true);
              return Response.json({ ok: true }, { headers: { 'Set-Cookie': await storage.commitSession(session) } });
            },
          },
          login: {
            action: async ({ context }) => {
              const renewed = await storage.regenerateSession(sessionOf(context));
              renewed.set('user', 'ann');
              return Response.json({ id: renewed.id });
            },
          },
          nested: { middleware: [storage.middleware], loader: ({ context }) => Response.json({ value: sessionOf(context).get('value') ?? null }) },
        };
        const root: RouteModule = {
          middleware: [storage.middleware],
          loader: ({ context, request }) => {
            const { pathname } = new URL(request.url);
            if (pathname === '/flashes') sessionOf(context).flash('first', 'from the root');
            return { root: pathname === '/page' ? (sessionOf(context).get('notice') ?? null) : null };
          },
          default: () => null,
        };
        server = await listen(createServer(createRequestListener({ build: serverBuild(root, routes), mode: 'production' })));
      });
      after(() => server.close());

      const send = (path: string, cookie = '', method = 'POST') => fetch(server.base + path, { method, headers: { cookie }, redirect: 'manual' });
      const idOf = async (cookie: string) => (await storage.cookie.parse(cookie)) as string;

      test('Set-Cookie only when needed: a new stored session; nothing for a visitor who stores nothing, nor for a change to a stored one', async () => {
        const visitor = await send('/read', '', 'GET');
        assert.equal(visitor.status, 200);
        assert.deepStrictEqual(visitor.headers.getSetCookie(), []);
        const document = await send('/page', '', 'GET');
        assert.equal(document.status, 200);
        assert.deepStrictEqual(document.headers.getSetCookie(), []);
        const first = await send('/set?v=1');
        const cookie = pairOf(first.headers.getSetCookie()[0]);
        assert.deepStrictEqual((await send('/set?v=2', cookie)).headers.getSetCookie(), []);
        const read = await send('/read', cookie, 'GET');
        assert.deepStrictEqual(read.headers.getSetCookie(), []);
        assert.equal(((await read.json()) as { value: string }).value, '2');
        assert.deepStrictEqual((await send('/page.data', cookie, 'GET')).headers.getSetCookie(), [], 'a single-fetch data request');
      });

      test('a flash set by an action is seen by the page once, across requests and single fetch', async () => {
        const cookie = pairOf((await send('/set?v=f')).headers.getSetCookie()[0]);
        const posted = await send('/page', cookie);
        assert.equal(posted.status, 302);
        assert.deepStrictEqual(posted.headers.getSetCookie(), []);
        // Root and page loaders both read the flash in one request: one of them gets it.
        const page = (await (await send('/page', cookie, 'GET')).json()) as { loaderData: Record<string, Record<string, unknown>> };
        assert.deepStrictEqual(
          [page.loaderData['root']?.['root'], page.loaderData['page']?.['page']].filter((seen) => seen !== null),
          ['saved'],
        );
        const again = (await (await send('/page', cookie, 'GET')).json()) as { loaderData: Record<string, Record<string, unknown>> };
        assert.deepStrictEqual([again.loaderData['root']?.['root'], again.loaderData['page']?.['page']], [null, null]);
      });

      test('two loaders of one request each set a flash, and flashes of concurrent actions: all seen exactly once', async () => {
        const cookie = pairOf((await send('/set?v=g')).headers.getSetCookie()[0]);
        assert.equal((await send('/flashes', cookie, 'GET')).status, 200);
        const names = Array.from({ length: 8 }, (_, i) => `concurrent${i}`);
        await Promise.all(names.map((name) => send(`/flash/${name}`, cookie)));
        const stored = await storedData(backend, table, await idOf(cookie));
        const flashes = Object.keys(stored ?? {})
          .filter((key) => key.startsWith('__flash_'))
          .sort();
        assert.deepStrictEqual(flashes, ['first', 'second', ...names].map((name) => `__flash_${name}__`).sort());
        const session = await storage.getSession(cookie);
        for (const name of ['first', 'second', ...names]) assert.equal(typeof session.get(name), 'string', name);
        await storage.commitSession(session);
        const later = await storage.getSession(cookie);
        assert.deepStrictEqual(
          Object.keys(later.data).filter((key) => key.startsWith('__flash_')),
          [],
        );
      });

      test('a thrown redirect and a failing loader still commit; a failing write answers 500, never 200', async () => {
        const cookie = pairOf((await send('/set?v=r')).headers.getSetCookie()[0]);
        const redirected = await send('/redirect-after-set', cookie);
        assert.equal(redirected.status, 302);
        assert.equal(redirected.headers.get('location'), '/read');
        const failed = await send('/fail', cookie, 'GET');
        assert.equal(failed.status, 500);
        const id = await idOf(cookie);
        assert.deepStrictEqual(await storedData(backend, table, id), { value: 'r', redirected: true, failed: true });
        for (const path of ['/big', '/big-page']) {
          const tooBig = await send(path, cookie);
          assert.equal(tooBig.status, 500, path);
          assert.deepStrictEqual(tooBig.headers.getSetCookie(), [], path);
        }
        const fresh = await send('/big');
        assert.equal(fresh.status, 500);
        assert.deepStrictEqual(fresh.headers.getSetCookie(), []);
        assert.equal((await storedData(backend, table, id))?.['big'], undefined);
      });

      test('an answer means a committed change: the response waits for the write', async () => {
        const cookie = pairOf((await send('/set?v=before')).headers.getSetCookie()[0]);
        const held = holdSaves(storage.store);
        let answered = false;
        const answer = send('/set?v=after', cookie).then((response) => {
          answered = true;
          return response;
        });
        await held.arrived;
        await delay(100);
        assert.equal(answered, false, 'no answer while the write is held');
        held.release();
        assert.equal((await answer).status, 200);
        assert.equal((await storedData(backend, table, await idOf(cookie)))?.['value'], 'after');
      });

      test("a loader's own commitSession is not doubled; regenerateSession without the context still commits the new session", async () => {
        const own = await send('/own-commit');
        assert.equal(own.headers.getSetCookie().length, 1);
        const cookie = pairOf(own.headers.getSetCookie()[0]);
        assert.deepStrictEqual(await storedData(backend, table, await idOf(cookie)), { own: true });
        const login = await send('/login', cookie);
        const renewed = pairOf(login.headers.getSetCookie()[0]);
        const { id } = (await login.json()) as { id: string };
        assert.equal(await idOf(renewed), id);
        assert.deepStrictEqual(await storedData(backend, table, id), { user: 'ann' });
        assert.equal(await storedData(backend, table, await idOf(cookie)), undefined);
      });

      test('the middleware on a nested route as well loads the session once', async () => {
        const cookie = pairOf((await send('/set?v=n')).headers.getSetCookie()[0]);
        const { store } = storage;
        const open = store.open;
        let loads = 0;
        store.open = function counted(this: typeof store, ...args: Parameters<typeof open>) {
          loads++;
          return open.apply(this, args);
        };
        try {
          const answer = await send('/nested', cookie, 'GET');
          assert.deepStrictEqual(await answer.json(), { value: 'n' });
          assert.deepStrictEqual(answer.headers.getSetCookie(), []);
        } finally {
          store.open = open;
        }
        assert.equal(loads, 1);
      });

      test('rolling, and a cookie signed with an older secret, get the cookie again from the middleware', async () => {
        const rolling = storageWith({ rolling: true, cookie: { secrets: ['newer', ...SECRETS], maxAge: 3600 } });
        const build = serverBuild(
          { middleware: [rolling.middleware], default: () => null },
          {
            set: {
              action: ({ context }) => {
                context.get(rolling.context).set('value', 'rolled');
                return Response.json({ ok: true });
              },
            },
            read: { loader: ({ context }) => Response.json({ value: context.get(rolling.context).get('value') ?? null }) },
          },
        );
        const rollingServer = await listen(createServer(createRequestListener({ build, mode: 'production' })));
        try {
          const oldCookie = pairOf((await send('/set?v=old')).headers.getSetCookie()[0]);
          const renewedAnswer = await fetch(`${rollingServer.base}/read`, { headers: { cookie: oldCookie } });
          assert.deepStrictEqual(await renewedAnswer.json(), { value: 'old' });
          const renewed = pairOf(renewedAnswer.headers.getSetCookie()[0]);
          assert.notEqual(renewed, oldCookie);
          assert.equal(await createCookie('__session', { secrets: ['newer'] }).parse(renewed), await idOf(oldCookie));
          const rolled = await fetch(`${rollingServer.base}/read`, { headers: { cookie: renewed } });
          assert.equal(pairOf(rolled.headers.getSetCookie()[0]), renewed);
          assert.match(rolled.headers.getSetCookie()[0] as string, /Max-Age=3600/);
        } finally {
          await rollingServer.close();
        }
      });
    });
  });
}

test('errors are SessionStoreErrors with a code', () => {
  assert.throws(
    () => createSmartSessionStorage(null as unknown as SmartSessionStorageOptions),
    (error: unknown) => error instanceof SessionStoreError && error.code === 'ERR_INVALID_OPTION',
  );
});
