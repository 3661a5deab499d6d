/**
 * What is koa-session's own, through a real Koa app and HTTP, with
 * `smart-session-store/koa` as its store: its bookkeeping (`_expire`,
 * `_maxAge`, `_session`) never stored as a data change, `rolling` and its
 * `changed: false` saves, `ctx.session = null`, a whole-object replacement,
 * a forced `save()`, `regenerate()`, `maxAge`, requests kept apart whatever
 * middleware surrounds koa-session, the `smartSession` helper, and the
 * warning of a store handed a session it cannot tie to a load. The
 * scenarios every framework shares (parallel requests, regenerate, logout,
 * statements per request) are in frameworks.test.ts.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import Koa from 'koa';
import session from 'koa-session';
import { KOA_SESSION_FORMAT, SmartSessionStore, smartSession } from '../src/adapters/koa.js';
import { UNTIED_SESSION_WARNING } from '../src/adapters/shared/untied.js';
import { hashSessionId, SessionStore, type SessionStoreOptions } from '../src/index.js';
import { backendsForThisFile, delay, dropTable, isStoreError, type CountedConnection } from './support/backends.js';
import { handlerDelay, keysOf } from './support/frameworks/harness.js';
import { Client, listen } from './support/http.js';

const backends = await backendsForThisFile();

/** A point a handler waits at until the test opens it: makes a request overlap a write, deterministically. */
class Gate {
  #arrive: () => void = () => undefined;
  #open: () => void = () => undefined;
  /** Resolves once a handler waits here. */
  readonly reached = new Promise<void>((resolve) => (this.#arrive = resolve));
  readonly #opened = new Promise<void>((resolve) => (this.#open = resolve));
  /** The handler's side: wait here. */
  pass(): Promise<void> {
    this.#arrive();
    return this.#opened;
  }
  open(): void {
    this.#open();
  }
}

/** Jobs run by a timer made before any request: a callback-style library that loses the async context. */
const legacyJobs: (() => void)[] = [];
const legacyTimer = setInterval(() => {
  for (const job of legacyJobs.splice(0)) job();
}, 1);
after(() => clearInterval(legacyTimer));

/** koa-session's session object, as the routes use it. */
type KoaSession = Record<string, unknown> & { maxAge: number | 'session' | undefined; save(): Promise<void>; regenerate(): Promise<void> };

/** koa-session's options the tests vary (its own, minus the store). */
type SessionOptions = Omit<NonNullable<Parameters<typeof session>[0]>, 'store'>;

interface AppOptions {
  session?: SessionOptions;
  /** Middleware before koa-session, and after it (before the routes). */
  before?: Koa.Middleware[];
  after?: Koa.Middleware[];
}

interface RunningApp {
  readonly base: string;
  readonly store: SmartSessionStore;
  readonly gates: Map<string, Gate>;
  close(): Promise<void>;
}

/** The session id of the request: the one koa-session generated last for it (new, regenerated), else the one it loaded. */
function sessionIdOf(ctx: Koa.Context): string | undefined {
  return (ctx.state['sessionId'] as string | undefined) ?? (ctx['session'] as { externalKey?: string }).externalKey;
}

/** The routes of every test app. */
function routes(gates: Map<string, Gate>): Koa.Middleware {
  const gate = (name: string): Promise<void> => gates.get(name)?.pass() ?? Promise.resolve();
  return async (ctx) => {
    const [, route = '', name = ''] = /^\/([^/]+)(?:\/([^/]+))?$/.exec(ctx.path) ?? [];
    const sess = (): KoaSession => ctx['session'] as KoaSession;
    switch (`${ctx.method} ${route}`) {
      case 'POST start':
        sess()['started'] = true;
        ctx.body = { id: sessionIdOf(ctx) };
        break;
      case 'POST set':
        await handlerDelay();
        sess()[`k_${name}`] = name;
        ctx.body = { ok: true };
        break;
      case 'GET keys':
        ctx.body = { id: sessionIdOf(ctx), keys: keysOf(sess()) };
        break;
      case 'GET read':
        ctx.body = { started: sess()['started'] ?? null };
        break;
      case 'GET nothing':
        ctx.body = { ok: true };
        break;
      case 'GET gated-read': {
        const started = sess()['started'] ?? null;
        await gate(name);
        ctx.body = { started };
        break;
      }
      case 'POST replace':
        await gate(name);
        ctx['session'] = { k_a: 'A' };
        ctx.body = { ok: true };
        break;
      case 'POST save-forced':
        sess()[`k_${name}_1`] = name;
        await sess().save();
        await gate(name);
        sess()[`k_${name}_2`] = name;
        ctx.body = { ok: true };
        break;
      case 'POST regenerate':
        await sess().regenerate();
        ctx.body = { id: sessionIdOf(ctx) };
        break;
      case 'POST logout':
        ctx['session'] = null;
        ctx.body = { ok: true };
        break;
      case 'POST max-age':
        sess().maxAge = Number(name);
        ctx.body = { ok: true };
        break;
      case 'POST private':
        sess()['_private'] = name;
        sess()['isNew'] = name;
        ctx.body = { ok: true };
        break;
      default:
        ctx.status = 404;
    }
  };
}

async function startApp(storeOptions: SessionStoreOptions | SmartSessionStore, options: AppOptions = {}): Promise<RunningApp> {
  const store = storeOptions instanceof SmartSessionStore ? storeOptions : new SmartSessionStore(storeOptions);
  const gates = new Map<string, Gate>();
  const app = new Koa();
  app.keys = ['a test secret'];
  const genid = (ctx: Koa.Context): string => {
    // koa-session 7 keeps `ctx.session.externalKey` at the loaded key after a regenerate: note the new one.
    const id = randomUUID();
    ctx.state['sessionId'] = id;
    return id;
  };
  for (const middleware of options.before ?? []) app.use(middleware);
  app.use(session({ maxAge: 3_600_000, genid, ...options.session, store }, app));
  for (const middleware of options.after ?? []) app.use(middleware);
  app.use(routes(gates));
  const server = await listen(createServer(app.callback()));
  return {
    base: server.base,
    store,
    gates,
    close: async () => {
      await server.close();
      await store.close();
    },
  };
}

/** A request answering 200, with the Set-Cookie headers of the answer. */
async function raw(base: string, method: string, path: string, cookie = ''): Promise<{ body: Record<string, unknown>; setCookie: string[] }> {
  const response = await fetch(base + path, { method, headers: cookie === '' ? {} : { cookie } });
  const text = await response.text();
  assert.equal(response.status, 200, `${method} ${path}: ${response.status} ${text}`);
  return { body: JSON.parse(text) as Record<string, unknown>, setCookie: response.headers.getSetCookie() };
}

/** Collects the process warnings from now on. */
function collectWarnings(): { readonly warnings: (Error & { code?: string })[]; stop(): void } {
  const warnings: (Error & { code?: string })[] = [];
  const listener = (warning: Error & { code?: string }): void => {
    warnings.push(warning);
  };
  process.on('warning', listener);
  return { warnings, stop: () => process.off('warning', listener) };
}

/** The warnings emitted so far reach their listeners on a later turn of the event loop. */
const warningsDelivered = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

for (const backend of backends) {
  describe(`koa-session on ${backend.name}`, () => {
    const table = 'ssn_koa';
    const apps: (RunningApp & { counted: CountedConnection })[] = [];
    /** An app whose store talks through a connection of its own that writes down every statement. */
    const open = async (options: AppOptions = {}, store: Partial<SessionStoreOptions> = {}): Promise<RunningApp & { counted: CountedConnection }> => {
      const counted = await backend.counted();
      const running = { ...(await startApp({ connection: counted.connection, table, autopurge: false, ...store }, options)), counted };
      apps.push(running);
      // The table is inspected once, before the first session call: not part of what a request costs.
      await running.store.ready();
      counted.statements.length = 0;
      return running;
    };
    const row = (id: unknown) => backend.rows(table).read(hashSessionId(String(id)));

    before(async () => {
      await dropTable(backend, table);
      const setup = new SmartSessionStore({ url: backend.url, table, autopurge: false });
      await setup.createTable();
      await setup.close();
    });
    after(async () => {
      for (const running of apps) {
        await running.close();
        await running.counted.close();
      }
      await dropTable(backend, table);
    });

    test('a request that puts nothing in its session inserts nothing and sends no cookie', async () => {
      const { base, counted } = await open();
      const read = await raw(base, 'GET', '/read');
      const nothing = await raw(base, 'GET', '/nothing');
      assert.deepStrictEqual(read.body, { started: null });
      assert.deepStrictEqual([...read.setCookie, ...nothing.setCookie], []);
      assert.deepStrictEqual(counted.statements, []);
    });

    test('rolling: koa-session saves every request with a new _expire (changed: false), and only the lookup reaches the database', async () => {
      const { base, counted } = await open({ session: { rolling: true } });
      const client = new Client(base);
      await client.request('POST', '/start');
      counted.statements.length = 0;
      const read = await raw(base, 'GET', '/read', client.cookie);
      assert.deepStrictEqual(read.body, { started: true });
      assert.ok(
        read.setCookie.some((cookie) => /^koa\.sess=[^;]+;.*expires=/i.test(cookie)),
        'the rolled cookie is sent',
      );
      assert.equal(counted.statements.length, 1, counted.statements.join(' | '));
    });

    test('rolling: a request that changed nothing keeps a write made by another request meanwhile', async () => {
      const running = await open({ session: { rolling: true } });
      const client = new Client(running.base);
      const { id } = await client.request('POST', '/start');
      const gate = new Gate();
      running.gates.set('slow-read', gate);
      const reading = client.request('GET', '/gated-read/slow-read');
      await gate.reached;
      const stored = (await row(id))?.data ?? {};
      await backend.rows(table).rewrite(hashSessionId(String(id)), JSON.stringify({ ...stored, k_meanwhile: 'x' }));
      gate.open();
      await reading;
      assert.deepStrictEqual((await client.request('GET', '/keys'))['keys'], ['k_meanwhile']);
    });

    test('with touchAfter: 0, a rolling save of an unchanged session moves the expiry only: _expire is no data change', async () => {
      const { base, counted, store } = await open({ session: { rolling: true } }, { touchAfter: 0 });
      const client = new Client(base);
      const { id } = await client.request('POST', '/start');
      const text = (await row(id))?.text;
      const expiry = (await store.store.load(String(id)))?.state.expiresAt ?? 0;
      await delay(20);
      counted.statements.length = 0;
      await client.request('GET', '/read');
      assert.equal(counted.statements.length, 2, counted.statements.join(' | '));
      if (backend.sql) assert.match(counted.statements[1] ?? '', /^UPDATE/);
      assert.ok(((await store.store.load(String(id)))?.state.expiresAt ?? 0) > expiry, 'the expiry moved');
      assert.equal((await row(id))?.text, text, 'the stored document is untouched');
    });

    test('_expire is the stored expiry; _maxAge and _session are bookkeeping, written when they change', async () => {
      const { base, store } = await open();
      const client = new Client(base);
      const { id } = await client.request('POST', '/start');
      const stored = (await row(id))?.data ?? {};
      assert.equal(stored['_maxAge'], 3_600_000);
      assert.equal((await store.store.load(String(id)))?.state.expiresAt, stored['_expire']);
      await client.request('POST', '/max-age/7200000');
      const longer = (await row(id))?.data ?? {};
      assert.equal(longer['_maxAge'], 7_200_000);
      assert.equal((await store.store.load(String(id)))?.state.expiresAt, longer['_expire']);
      assert.ok(Number(longer['_expire']) - Date.now() > 3_600_000);
      const format = KOA_SESSION_FORMAT;
      assert.equal(format.bookkeepingChanged({ a: 1, _expire: 1, _maxAge: 5 }, { a: 1, _expire: 2, _maxAge: 5 }), false);
      assert.equal(format.bookkeepingChanged({ a: 1, _expire: 1, _maxAge: 5 }, { a: 1, _expire: 2, _maxAge: 6 }), true);
      assert.equal(format.bookkeepingChanged({ a: 1, _expire: 1, _maxAge: 5 }, { a: 1, _session: true }), true);
      assert.equal(format.expiresAt({ _expire: 1234 }, 0), 1234);
      assert.equal(format.expiresAt({ _session: true }, 0), undefined);
    });

    test('keys koa-session keeps private (_*) or for itself (isNew) are never stored', async () => {
      const { base } = await open();
      const client = new Client(base);
      const { id } = await client.request('POST', '/start');
      await client.request('POST', '/private/x');
      const stored = (await row(id))?.data ?? {};
      assert.deepStrictEqual(Object.keys(stored).sort(), ['_expire', '_maxAge', 'started']);
    });

    test('maxAge: "session": stored with _session and no _expire, living ttl seconds; the cookie has no expiry', async () => {
      const { base, store } = await open({ session: { maxAge: 'session' } }, { ttl: 600 });
      const before = Date.now();
      const start = await raw(base, 'POST', '/start');
      const after = Date.now();
      assert.ok(
        start.setCookie.every((cookie) => !/expires=/i.test(cookie)),
        start.setCookie.join(' | '),
      );
      const stored = (await row(start.body['id']))?.data ?? {};
      assert.equal(stored['_session'], true);
      assert.equal(stored['_expire'], undefined);
      const expiresAt = (await store.store.load(String(start.body['id'])))?.state.expiresAt ?? 0;
      assert.ok(expiresAt >= before + 600_000 && expiresAt <= after + 600_000, `expires at ${expiresAt}`);
    });

    test('a live session whose stored _expire has passed (only its expiry was touched since) is not dropped', async () => {
      const { base } = await open();
      const client = new Client(base);
      const { id } = await client.request('POST', '/start');
      await client.request('POST', '/set/kept');
      const stored = (await row(id))?.data ?? {};
      await backend.rows(table).rewrite(hashSessionId(String(id)), JSON.stringify({ ...stored, _expire: Date.now() - 60_000 }));
      assert.deepStrictEqual(await client.request('GET', '/keys'), { id, keys: ['k_kept'] });
    });

    test('an expired session is never returned: the request gets a new, empty one', async () => {
      const { base, store } = await open();
      const client = new Client(base);
      const { id } = await client.request('POST', '/start');
      await client.request('POST', '/set/gone');
      const loaded = await store.store.load(String(id));
      assert.ok(loaded !== null);
      await store.store.save(String(id), loaded.session, undefined, { expiresAt: Date.now() - 1000 });
      const { id: newId, keys } = await client.request('GET', '/keys');
      assert.notEqual(newId, id);
      assert.deepStrictEqual(keys, []);
    });

    test('ctx.session = null destroys: the row is gone, the cookie cleared, and the old cookie finds nothing', async () => {
      const { base } = await open();
      const client = new Client(base);
      const { id } = await client.request('POST', '/start');
      const oldCookie = client.cookie;
      const logout = await raw(base, 'POST', '/logout', oldCookie);
      assert.ok(
        logout.setCookie.some((cookie) => /^koa\.sess=;/.test(cookie) && /expires=Thu, 01 Jan 1970/i.test(cookie)),
        logout.setCookie.join(' | '),
      );
      assert.equal(await row(id), undefined);
      const later = await raw(base, 'GET', '/keys', oldCookie);
      assert.notEqual(later.body['id'], id);
      assert.deepStrictEqual(later.body['keys'], []);
      assert.equal(await row(id), undefined);
    });

    test('ctx.session = {...} replaces the session: keys it lacks are deleted, keys another request added meanwhile are kept', async () => {
      const running = await open();
      const client = new Client(running.base);
      const { id } = await client.request('POST', '/start');
      await client.request('POST', '/set/a');
      await client.request('POST', '/set/b');
      const gate = new Gate();
      running.gates.set('r', gate);
      const replacing = client.request('POST', '/replace/r');
      await gate.reached;
      await client.request('POST', '/set/meanwhile');
      gate.open();
      await replacing;
      const stored = (await row(id))?.data ?? {};
      const { _expire: _e, _maxAge: _m, ...data } = stored;
      assert.deepStrictEqual(data, { k_a: 'A', k_meanwhile: 'meanwhile' });
    });

    test('ctx.session.save() (koa-session says changed: false) writes the change, and the later one as a delta', async () => {
      const running = await open();
      const client = new Client(running.base);
      const { id } = await client.request('POST', '/start');
      const gate = new Gate();
      running.gates.set('forced', gate);
      const saving = client.request('POST', '/save-forced/forced');
      await gate.reached;
      assert.equal((await row(id))?.data?.['k_forced_1'], 'forced', 'the forced save is written');
      await client.request('POST', '/set/meanwhile');
      gate.open();
      await saving;
      assert.deepStrictEqual((await client.request('GET', '/keys'))['keys'], ['k_forced_1', 'k_forced_2', 'k_meanwhile']);
    });

    test('regenerate(): a new key holding the data (koa-session keeps it), the old key gone for good', async () => {
      const { base } = await open();
      const client = new Client(base);
      const { id: oldId } = await client.request('POST', '/start');
      const oldCookie = client.cookie;
      await client.request('POST', '/set/carried');
      const { id: newId } = await client.request('POST', '/regenerate');
      assert.notEqual(newId, oldId);
      assert.equal(await row(oldId), undefined);
      assert.deepStrictEqual(await client.request('GET', '/keys'), { id: newId, keys: ['k_carried'] });
      await raw(base, 'POST', '/set/stale', oldCookie);
      assert.equal(await row(oldId), undefined);
    });
  });

  describe(`koa-session on ${backend.name}: requests kept apart whatever middleware surrounds koa-session`, () => {
    const table = 'ssn_koa_middleware';
    let running: RunningApp;
    const watch = collectWarnings();

    before(async () => {
      await dropTable(backend, table);
      const randomPause: Koa.Middleware = async (_ctx, next) => {
        await delay(Math.random() * 5);
        await next();
        await delay(Math.random() * 5);
      };
      // Resumes the request from a timer made before it: the async context is lost from there on.
      const outsideContext: Koa.Middleware = async (_ctx, next) => {
        await new Promise<void>((resolve) => legacyJobs.push(resolve));
        await next();
      };
      const errorBoundary: Koa.Middleware = async (ctx, next) => {
        try {
          await next();
        } catch (error) {
          ctx.status = 500;
          ctx.body = { error: String(error) };
        }
      };
      running = await startApp(
        { url: backend.url, table, createTable: true, autopurge: false },
        { before: [errorBoundary, randomPause, outsideContext], after: [randomPause, outsideContext, randomPause] },
      );
    });
    after(async () => {
      watch.stop();
      await running.close();
      await dropTable(backend, table);
    });

    test("10 users in parallel, 10 requests each: every session holds its own keys and no other's", async () => {
      const users = await Promise.all(
        Array.from({ length: 10 }, async (_, user) => {
          const client = new Client(running.base);
          await client.request('POST', '/start');
          return { client, user };
        }),
      );
      await Promise.all(users.flatMap(({ client, user }) => Array.from({ length: 10 }, (_, i) => client.request('POST', `/set/u${user}_${i}`))));
      for (const { client, user } of users) {
        const expected = Array.from({ length: 10 }, (_, i) => `k_u${user}_${i}`).sort();
        assert.deepStrictEqual((await client.request('GET', '/keys'))['keys'], expected, `user ${user}`);
      }
      await warningsDelivered();
      assert.deepStrictEqual(
        watch.warnings.filter((warning) => warning.code === UNTIED_SESSION_WARNING),
        [],
      );
    });

    test('20 parallel requests on one session: all 20 keys kept', async () => {
      const client = new Client(running.base);
      await client.request('POST', '/start');
      const keys = Array.from({ length: 20 }, (_, i) => `p${i}`);
      await Promise.all(keys.map((key) => client.request('POST', `/set/${key}`)));
      assert.deepStrictEqual((await client.request('GET', '/keys'))['keys'], keys.map((key) => `k_${key}`).sort());
    });
  });
}

describe('smartSession(options, app)', () => {
  test("koa-session's middleware over a store made from the options, exposed as .store", async () => {
    const app = new Koa();
    app.keys = ['a test secret'];
    const middleware = smartSession({ store: { url: 'sqlite::memory:', createTable: true }, maxAge: 60_000, key: 'sid' }, app);
    assert.ok(middleware.store instanceof SmartSessionStore);
    app.use(middleware);
    app.use(async (ctx) => {
      const sess = ctx['session'] as Record<string, number>;
      sess['n'] = (sess['n'] ?? 0) + 1;
      ctx.body = { n: sess['n'] };
    });
    const server = await listen(createServer(app.callback()));
    try {
      const client = new Client(server.base);
      await client.request('POST', '/');
      assert.deepStrictEqual(await client.request('POST', '/'), { n: 2 });
      assert.match(client.cookie, /sid=/);
      assert.equal((await middleware.store.stats()).live, 1);
    } finally {
      await server.close();
      await middleware.store.close();
    }
    await assert.rejects(middleware.store.stats(), isStoreError('ERR_STORE_CLOSED'));
  });

  test('a store given as such is used as it is; bad store options are refused at once', async () => {
    const store = new SmartSessionStore({ url: 'sqlite::memory:' });
    const app = new Koa();
    assert.equal(smartSession({ store }, app).store, store);
    await store.close();
    assert.throws(() => smartSession({ store: { url: 'sqlite::memory:', ttl: -1 } }, new Koa()), isStoreError('ERR_INVALID_OPTION'));
  });

  test('a store of another kind (the framework-neutral SessionStore) is refused, naming what to pass instead', async () => {
    const neutral = new SessionStore({ url: 'sqlite::memory:' });
    try {
      // As JavaScript would pass it: the types refuse it already.
      assert.throws(
        () => smartSession({ store: neutral as never }, new Koa()),
        isStoreError(
          'ERR_INVALID_OPTION',
          'option "store" must be the store\'s options ({ url, ... }) or a new SmartSessionStore({ url, ... }) of smart-session-store/koa',
        ),
      );
    } finally {
      await neutral.close();
    }
  });
});

describe('untied sessions are warned about', () => {
  test('a key loaded without a ctx (not koa-session 7), then saved: SMART_SESSION_STORE_UNTIED_SESSION, once', async () => {
    const watch = collectWarnings();
    const store = new SmartSessionStore({ url: 'sqlite::memory:', createTable: true });
    try {
      const ctx = {};
      // A new session saved by a request: nothing was loaded, nothing to tie, nothing said.
      await store.set('k1', { n: 1, _expire: Date.now() + 60_000, _maxAge: 60_000 }, 70_000, { ctx, changed: true });
      // Loaded and saved by the same ctx: tied.
      const other = {};
      assert.equal((await store.get('k1', 60_000, { ctx: other }))?.['n'], 1);
      await store.set('k1', { n: 2, _expire: Date.now() + 60_000, _maxAge: 60_000 }, 70_000, { ctx: other, changed: true });
      await warningsDelivered();
      assert.deepStrictEqual(
        watch.warnings.filter((warning) => warning.code === UNTIED_SESSION_WARNING),
        [],
      );
      // Loaded with no ctx to file it under: saved whole, and said.
      assert.equal((await store.get('k1'))?.['n'], 2);
      await store.set('k1', { n: 3, _expire: Date.now() + 60_000, _maxAge: 60_000 });
      assert.equal((await store.get('k1'))?.['n'], 3);
      await store.set('k1', { n: 4, _expire: Date.now() + 60_000, _maxAge: 60_000 });
      await warningsDelivered();
      const untied = watch.warnings.filter((warning) => warning.code === UNTIED_SESSION_WARNING);
      assert.equal(untied.length, 1);
      assert.match(untied[0]?.message ?? '', /smart-session-store\/koa was handed a session it did not load/);
      assert.match(untied[0]?.message ?? '', /koa-session 7's store/);
    } finally {
      watch.stop();
      await store.close();
    }
  });
});
