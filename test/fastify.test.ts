/**
 * The compatibility path: @fastify/session itself with the store, registered
 * by `withFastifySession` of `smart-session-store/fastify`. What is
 * @fastify/session's own, through a real Fastify app and HTTP: `saveUninitialized` and `rolling`, the
 * stored cookie and its expiry, `save`/`reload`/`regenerate(keys)` in a
 * handler, requests kept apart whatever hooks the application adds (or when
 * it loses the async context), the decoration `fastify.sessionStore`, and the
 * warnings of a store that cannot tie a session to a load. The scenarios
 * every framework shares (parallel requests, regenerate, logout, statements
 * per request) are in frameworks.test.ts.
 */
import assert from 'node:assert/strict';
import { AsyncLocalStorage } from 'node:async_hooks';
import { after, before, describe, test } from 'node:test';
import fastifyCookie from '@fastify/cookie';
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { FASTIFY_SESSION_FORMAT, SmartSessionStore, type SmartSessionOptions, withFastifySession as smartSession } from '../src/adapters/fastify.js';
import { SmartSessionStore as ExpressStore } from '../src/adapters/express.js';
import { UNTIED_SESSION_WARNING } from '../src/adapters/shared/untied.js';

// @fastify/session registered by hand, its types left out: they declare request.session as @fastify/session's, where the
// rest of the suite compiles against the plugin's own (a program holds one; an application uses one path or the other).
const fastifySessionModule: string = '@fastify/session';
const { default: fastifySession } = (await import(fastifySessionModule)) as { default: FastifyPluginAsync<Record<string, unknown>> };
import { hashSessionId, SessionStore, type JsonObject, type SessionStoreOptions } from '../src/index.js';
import { backendsForThisFile, delay, dropTable, isStoreError, type CountedConnection } from './support/backends.js';
import { handlerDelay, keysOf } from './support/frameworks/harness.js';
import { Client } from './support/http.js';

const backends = await backendsForThisFile();
const SECRET = 'a test secret of at least thirty-two characters';

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

/** What the test app can be made with besides its store. */
interface AppOptions {
  session?: Partial<Omit<SmartSessionOptions, 'store'>>;
  /** Registers hooks (or plugins) before the session plugin. */
  before?: (app: FastifyInstance) => void | Promise<void>;
  /** Registers hooks after it. */
  after?: (app: FastifyInstance) => void | Promise<void>;
}

interface RunningApp {
  readonly app: FastifyInstance;
  readonly base: string;
  readonly gates: Map<string, Gate>;
  close(): Promise<void>;
}

/** Tells whether the application's own async context survived into a callback. */
const probe = new AsyncLocalStorage<true>();

async function startApp(store: SessionStoreOptions | SmartSessionStore, options: AppOptions = {}): Promise<RunningApp> {
  const app = Fastify();
  const gates = new Map<string, Gate>();
  const gate = (name: string): Promise<void> => gates.get(name)?.pass() ?? Promise.resolve();
  app.addHook('onRequest', (_request, _reply, done) => probe.run(true, done));
  await options.before?.(app);
  await app.register(smartSession, { secret: SECRET, cookie: { secure: false, maxAge: 3_600_000 }, ...options.session, store });
  await options.after?.(app);
  app.post('/start', async (request) => {
    request.session.set('started', true);
    return { id: request.session.sessionId };
  });
  app.post<{ Params: { key: string } }>('/set/:key', async (request) => {
    await handlerDelay();
    request.session.set(`k_${request.params.key}`, request.params.key);
    return { ok: true };
  });
  app.get('/keys', async (request) => ({ id: request.session.sessionId, keys: keysOf(request.session) }));
  app.get('/read', async (request) => ({ started: request.session.get('started') ?? null }));
  app.get('/nothing', async () => ({ ok: true }));
  app.get<{ Params: { name: string } }>('/gated-read/:name', async (request) => {
    const started = request.session.get('started') ?? null;
    await gate(request.params.name);
    return { started };
  });
  app.post<{ Params: { key: string } }>('/gated-set/:key', async (request) => {
    await gate(request.params.key);
    request.session.set(`k_${request.params.key}`, request.params.key);
    return { ok: true };
  });
  app.post<{ Params: { key: string } }>('/save-then-set/:key', async (request) => {
    const { key } = request.params;
    request.session.set(`k_${key}_1`, key);
    await request.session.save();
    await gate(key);
    request.session.set(`k_${key}_2`, key);
    return { ok: true };
  });
  app.post<{ Params: { key: string } }>('/reload-and-set/:key', async (request) => {
    await gate(request.params.key);
    await request.session.reload();
    request.session.set(`k_${request.params.key}`, request.params.key);
    return { ok: true };
  });
  app.post('/regenerate-keeping', async (request) => {
    await request.session.regenerate(['keep']);
    return { id: request.session.sessionId };
  });
  app.post<{ Params: { key: string } }>('/mark/:key', async (request) => {
    request.session.set('keep', request.params.key);
    request.session.set('drop', request.params.key);
    return { id: request.session.sessionId };
  });
  // A handler whose work is finished by a callback-style library: the async context is lost there.
  app.post<{ Params: { key: string } }>('/legacy/:key', (request, reply) => {
    void gate(request.params.key).then(() =>
      legacyJobs.push(() => {
        request.session.set(`k_${request.params.key}`, request.params.key);
        void reply.send({ contextLost: probe.getStore() === undefined });
      }),
    );
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP port');
  return { app, base: `http://127.0.0.1:${address.port}`, gates, close: () => app.close() };
}

/** A request answering 200, with the Set-Cookie headers of the answer. */
async function raw(base: string, method: string, path: string, cookie = ''): Promise<{ body: Record<string, unknown>; setCookie: string[] }> {
  const response = await fetch(base + path, { method, headers: cookie === '' ? {} : { cookie } });
  const text = await response.text();
  assert.equal(response.status, 200, `${method} ${path}: ${response.status} ${text}`);
  return { body: JSON.parse(text) as Record<string, unknown>, setCookie: response.headers.getSetCookie() };
}

/** Collects the process warnings with a code, from now on. */
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
  describe(`@fastify/session on ${backend.name}`, () => {
    const table = 'ssn_fastify';
    const apps: (RunningApp & { counted: CountedConnection })[] = [];
    /** An app whose store talks through a connection of its own that writes down every statement. */
    const open = async (options: AppOptions = {}, store: Partial<SessionStoreOptions> = {}): Promise<RunningApp & { counted: CountedConnection }> => {
      const counted = await backend.counted();
      const running = { ...(await startApp({ connection: counted.connection, table, autopurge: false, ...store }, options)), counted };
      apps.push(running);
      // The table is inspected once, before the first session call: not part of what a request costs.
      await running.app.sessionStore.ready();
      counted.statements.length = 0;
      return running;
    };
    const row = (id: unknown) => backend.rows(table).read(hashSessionId(String(id)));

    before(async () => {
      await dropTable(backend, table);
      const setup = await startApp({ url: backend.url, table, autopurge: false });
      await setup.app.sessionStore.createTable();
      await setup.close();
    });
    after(async () => {
      for (const running of apps) {
        await running.close();
        await running.counted.close();
      }
      await dropTable(backend, table);
    });

    test("saveUninitialized: false (the plugin's default): a request that puts nothing in its session inserts nothing and sends no cookie", async () => {
      const { base, counted } = await open();
      const read = await raw(base, 'GET', '/read');
      const nothing = await raw(base, 'GET', '/nothing');
      assert.deepStrictEqual(read.body, { started: null });
      assert.deepStrictEqual([...read.setCookie, ...nothing.setCookie], []);
      assert.deepStrictEqual(counted.statements, []);
    });

    test('saveUninitialized: true: a new, unchanged session is stored and gets its cookie, as @fastify/session documents; its next read writes nothing', async () => {
      const { base, counted } = await open({ session: { saveUninitialized: true } });
      const first = await raw(base, 'GET', '/keys');
      assert.equal(first.setCookie.length, 1);
      assert.equal(counted.statements.length, 1, counted.statements.join(' | '));
      assert.ok((await row(first.body['id'])) !== undefined, 'the new session is stored');
      const cookie = (first.setCookie[0] ?? '').split(';')[0] ?? '';
      counted.statements.length = 0;
      const second = await raw(base, 'GET', '/keys', cookie);
      assert.equal(second.body['id'], first.body['id']);
      assert.equal(counted.statements.length, 1, `read-only: ${counted.statements.join(' | ')}`);
    });

    test('rolling: true (the default): an unchanged session gets its cookie on every answer, and only the lookup reaches the database', async () => {
      const { base, counted } = await open();
      const client = new Client(base);
      await client.request('POST', '/start');
      counted.statements.length = 0;
      const read = await raw(base, 'GET', '/read', client.cookie);
      assert.deepStrictEqual(read.body, { started: true });
      assert.equal(read.setCookie.length, 1, 'the rolled cookie is sent');
      assert.match(read.setCookie[0] ?? '', /Expires=/);
      assert.equal(counted.statements.length, 1, counted.statements.join(' | '));
    });

    test('rolling: true and a request that changed nothing: a write by another request meanwhile is kept', async () => {
      const running = await open();
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

    test('with touchAfter: 0, an unchanged session has its expiry moved, and only its expiry', async () => {
      const { app, base, counted } = await open({}, { touchAfter: 0 });
      const client = new Client(base);
      const { id } = await client.request('POST', '/start');
      const text = (await row(id))?.text;
      const before = (await app.sessionStore.store.load(String(id)))?.state.expiresAt ?? 0;
      await delay(20);
      counted.statements.length = 0;
      await client.request('GET', '/read');
      assert.equal(counted.statements.length, 2, counted.statements.join(' | '));
      if (backend.sql) assert.match(counted.statements[1] ?? '', /^UPDATE/);
      assert.ok(((await app.sessionStore.store.load(String(id)))?.state.expiresAt ?? 0) > before, 'the expiry moved');
      assert.equal((await row(id))?.text, text, 'the stored document is untouched');
    });

    test('rolling: false: an unchanged session gets no cookie and no write; a changed one gets both', async () => {
      const { base, counted } = await open({ session: { rolling: false } });
      const client = new Client(base);
      await client.request('POST', '/start');
      counted.statements.length = 0;
      const read = await raw(base, 'GET', '/read', client.cookie);
      assert.deepStrictEqual(read.setCookie, []);
      assert.equal(counted.statements.length, 1);
      counted.statements.length = 0;
      const write = await raw(base, 'POST', '/set/one', client.cookie);
      assert.equal(write.setCookie.length, 1);
      assert.equal(counted.statements.length, 2, counted.statements.join(' | '));
    });

    test('after a secret rotation, a read-only request gets its cookie re-signed, not cleared (saveUninitialized: false)', async () => {
      const older = 'an older secret, also thirty-two characters or more';
      const before = await open({ session: { secret: older } });
      const client = new Client(before.base);
      const { id } = await client.request('POST', '/start');
      const rotated = await open({ session: { secret: [SECRET, older] } });
      const reader = new Client(rotated.base);
      reader.cookie = client.cookie;
      rotated.counted.statements.length = 0;
      assert.deepStrictEqual(await reader.request('GET', '/keys'), { id, keys: [] });
      assert.equal(rotated.counted.statements.length, 1, `only the lookup: ${rotated.counted.statements.join(' | ')}`);
      assert.match(reader.cookie, /^sessionId=[^;]+$/);
      assert.notEqual(reader.cookie, client.cookie);
      // The new cookie is signed with the current secret: an app that no longer knows the old one takes it.
      const current = await open({ session: { secret: SECRET } });
      const later = new Client(current.base);
      later.cookie = reader.cookie;
      assert.deepStrictEqual(await later.request('GET', '/keys'), { id, keys: [] });
    });

    test('the stored cookie is bookkeeping: kept whole, its rolled expiry alone is no change, and it follows the cookie options', async () => {
      const { base } = await open();
      const client = new Client(base);
      const { id } = await client.request('POST', '/start');
      const stored = (await row(id))?.data;
      assert.equal(stored?.['started'], true);
      const cookie = stored?.['cookie'] as JsonObject;
      assert.equal(cookie['originalMaxAge'], 3_600_000);
      assert.equal(typeof cookie['expires'], 'string');
      assert.equal(FASTIFY_SESSION_FORMAT.expiresAt({ cookie }, Date.now()), Date.parse(String(cookie['expires'])));
      assert.equal(FASTIFY_SESSION_FORMAT.bookkeepingChanged({ cookie: { ...cookie, expires: 'x', originalExpires: 'y' } }, { cookie }), false);
      assert.equal(FASTIFY_SESSION_FORMAT.bookkeepingChanged({ cookie: { ...cookie, httpOnly: false } }, { cookie }), true);
    });

    test('a live session whose stored cookie says it expired (only its expiry was touched since) is not dropped', async () => {
      const { base } = await open();
      const client = new Client(base);
      const { id } = await client.request('POST', '/start');
      await client.request('POST', '/set/kept');
      const stored = (await row(id))?.data ?? {};
      const past = new Date(Date.now() - 60_000).toISOString();
      const staleCookie = { ...(stored['cookie'] as object), expires: past, originalExpires: past };
      await backend.rows(table).rewrite(hashSessionId(String(id)), JSON.stringify({ ...stored, cookie: staleCookie }));
      assert.deepStrictEqual(await client.request('GET', '/keys'), { id, keys: ['k_kept'] });
    });

    test('an expired session is never returned: the request gets a new, empty one', async () => {
      const { app, base } = await open();
      const client = new Client(base);
      const { id } = await client.request('POST', '/start');
      await client.request('POST', '/set/gone');
      const loaded = await app.sessionStore.store.load(String(id));
      assert.ok(loaded !== null);
      await app.sessionStore.store.save(String(id), loaded.session, undefined, { expiresAt: Date.now() - 1000 });
      const { id: newId, keys } = await client.request('GET', '/keys');
      assert.notEqual(newId, id);
      assert.deepStrictEqual(keys, []);
    });

    test('session.save() in a handler, then more changes: both saved, the second as a delta over what others wrote', async () => {
      const running = await open();
      const client = new Client(running.base);
      const { id } = await client.request('POST', '/start');
      const gate = new Gate();
      running.gates.set('saved', gate);
      const saving = client.request('POST', '/save-then-set/saved');
      await gate.reached;
      assert.equal((await row(id))?.data?.['k_saved_1'], 'saved', 'the explicit save is written');
      await client.request('POST', '/set/meanwhile');
      gate.open();
      await saving;
      assert.deepStrictEqual((await client.request('GET', '/keys'))['keys'], ['k_meanwhile', 'k_saved_1', 'k_saved_2']);
    });

    test('reload in a handler, then a change: saved as a delta over the reloaded session', async () => {
      const running = await open();
      const client = new Client(running.base);
      await client.request('POST', '/start');
      const gate = new Gate();
      running.gates.set('reloaded', gate);
      const reloading = client.request('POST', '/reload-and-set/reloaded');
      await gate.reached;
      await client.request('POST', '/set/before-reload');
      gate.open();
      await reloading;
      await client.request('POST', '/set/after');
      assert.deepStrictEqual((await client.request('GET', '/keys'))['keys'], ['k_after', 'k_before-reload', 'k_reloaded']);
    });

    test('regenerate(keys) carries only those keys to the new id; the old id is gone', async () => {
      const { base } = await open();
      const client = new Client(base);
      const { id: oldId } = await client.request('POST', '/mark/x');
      const { id: newId } = await client.request('POST', '/regenerate-keeping');
      assert.notEqual(newId, oldId);
      assert.equal(await row(oldId), undefined);
      const renewed = (await row(newId))?.data;
      assert.equal(renewed?.['keep'], 'x');
      assert.equal(renewed?.['drop'], undefined);
    });

    test("fastify.sessionStore: the store's methods, and it closes with Fastify", async () => {
      const running = await startApp({ url: backend.url, table, autopurge: false });
      const { sessionStore } = running.app;
      assert.equal(typeof (await sessionStore.stats()).live, 'number');
      assert.equal(typeof (await sessionStore.purge()), 'number');
      assert.ok(['atomic', 'optimistic', 'pessimistic'].includes(await sessionStore.lockingMode()));
      await running.close();
      await assert.rejects(sessionStore.stats(), isStoreError('ERR_STORE_CLOSED'));
    });

    test('a store the application made, given as `store`: it serves sessions, 20 parallel requests keep all their changes, and it stays open after Fastify closes', async () => {
      const store = new SmartSessionStore({ url: backend.url, table, autopurge: false });
      const running = await startApp(store);
      let id: unknown;
      try {
        assert.equal(running.app.sessionStore, store);
        const client = new Client(running.base);
        ({ id } = await client.request('POST', '/start'));
        const keys = Array.from({ length: 20 }, (_, i) => `given${i}`);
        await Promise.all(keys.map((key) => client.request('POST', `/set/${key}`)));
        assert.deepStrictEqual(await client.request('GET', '/keys'), { id, keys: keys.map((key) => `k_${key}`).sort() });
      } finally {
        await running.close();
      }
      // The application made it, so the application closes it: it still answers after app.close().
      assert.equal(keysOf((await store.store.load(String(id)))?.session ?? {}).length, 20);
      await store.close();
      await assert.rejects(store.stats(), isStoreError('ERR_STORE_CLOSED'));
    });
  });

  describe(`@fastify/session on ${backend.name}: requests kept apart whatever the application does around them`, () => {
    const table = 'ssn_fastify_hooks';
    let running: RunningApp;
    const watch = collectWarnings();

    before(async () => {
      await dropTable(backend, table);
      const randomPause = async (): Promise<void> => delay(Math.random() * 5);
      running = await startApp(
        { url: backend.url, table, createTable: true, autopurge: false },
        {
          // Async hooks of every kind, before and after the plugin's: loads of concurrent requests interleave.
          before: (app) => {
            app.addHook('onRequest', randomPause);
            app.addHook('preParsing', async () => {
              await randomPause();
            });
          },
          after: (app) => {
            app.addHook('onRequest', randomPause);
            app.addHook('preHandler', randomPause);
            app.addHook('onSend', async () => {
              await randomPause();
            });
          },
        },
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
    });

    test('a handler finished by a callback that lost the async context still saves only its delta', async () => {
      const client = new Client(running.base);
      const { id } = await client.request('POST', '/start');
      const gate = new Gate();
      running.gates.set('legacy', gate);
      const legacy = client.request('POST', '/legacy/legacy');
      await gate.reached;
      const stored = (await backend.rows(table).read(hashSessionId(String(id))))?.data ?? {};
      await backend.rows(table).rewrite(hashSessionId(String(id)), JSON.stringify({ ...stored, k_meanwhile: 'x' }));
      gate.open();
      assert.deepStrictEqual(await legacy, { contextLost: true });
      assert.deepStrictEqual((await client.request('GET', '/keys'))['keys'], ['k_legacy', 'k_meanwhile']);
    });

    test('20 parallel requests, half of them finished outside the async context: all 20 keys kept, and no warning', async () => {
      const client = new Client(running.base);
      await client.request('POST', '/start');
      const keys = Array.from({ length: 20 }, (_, i) => `p${i}`);
      await Promise.all(keys.map((key, i) => client.request('POST', `/${i % 2 === 0 ? 'set' : 'legacy'}/${key}`)));
      assert.deepStrictEqual((await client.request('GET', '/keys'))['keys'], keys.map((key) => `k_${key}`).sort());
      await warningsDelivered();
      assert.deepStrictEqual(
        watch.warnings.filter((warning) => warning.code === UNTIED_SESSION_WARNING),
        [],
      );
    });
  });
}

describe('registering the plugin', () => {
  test('@fastify/cookie registered by the application first is kept, with its options', async () => {
    const app = Fastify();
    await app.register(fastifyCookie, { secret: 'cookie secret', parseOptions: {} });
    await app.register(smartSession, { secret: SECRET, cookie: { secure: false }, store: { url: 'sqlite::memory:', createTable: true } });
    app.post('/n', async (request) => {
      request.session.set('n', Number(request.session.get('n') ?? 0) + 1);
      return { n: request.session.get('n'), signed: request.unsignCookie(request.cookies['other'] ?? '').valid };
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const address = app.server.address();
      if (address === null || typeof address === 'string') throw new Error('no TCP port');
      const client = new Client(`http://127.0.0.1:${address.port}`);
      await client.request('POST', '/n');
      assert.deepStrictEqual(await client.request('POST', '/n'), { n: 2, signed: false });
    } finally {
      await app.close();
    }
  });

  test("bad options are refused at registration: ours and @fastify/session's", async () => {
    const ours = Fastify();
    void ours.register(smartSession, { secret: SECRET, store: { url: 'sqlite::memory:', ttl: -1 } });
    await assert.rejects(async () => ours.ready(), isStoreError('ERR_INVALID_OPTION'));
    await ours.close();
    const theirs = Fastify();
    void theirs.register(smartSession, { secret: 'short', store: { url: 'sqlite::memory:' } });
    await assert.rejects(async () => theirs.ready(), /32/);
    await theirs.close();
  });
});

describe('a store of another kind given as `store`', () => {
  test("the framework-neutral SessionStore and express's store are refused at registration, naming what to pass instead", async () => {
    const foreignStores = [new SessionStore({ url: 'sqlite::memory:' }), new ExpressStore({ url: 'sqlite::memory:' })];
    try {
      for (const foreign of foreignStores) {
        const app = Fastify();
        // As JavaScript would pass it: the types refuse it already.
        void app.register(smartSession, { secret: SECRET, store: foreign as never });
        await assert.rejects(
          async () => app.ready(),
          isStoreError(
            'ERR_INVALID_OPTION',
            'option "store" must be the store\'s options ({ url, ... }) or a new SmartSessionStore({ url, ... }) of smart-session-store/fastify',
          ),
        );
        await app.close();
      }
    } finally {
      for (const foreign of foreignStores) await foreign.close();
    }
  });
});

describe('untied sessions are warned about', () => {
  test('the express store under @fastify/session: SMART_SESSION_STORE_UNTIED_SESSION, naming smart-session-store/fastify', async () => {
    const watch = collectWarnings();
    const store = new ExpressStore({ url: 'sqlite::memory:', createTable: true });
    const app = Fastify();
    await app.register(fastifyCookie);
    await app.register(fastifySession, { secret: SECRET, cookie: { secure: false }, store: store as never });
    app.post('/n', async (request) => {
      request.session.set('n', Number(request.session.get('n') ?? 0) + 1);
      return { n: request.session.get('n') };
    });
    await app.listen({ port: 0, host: '127.0.0.1' });
    try {
      const address = app.server.address();
      if (address === null || typeof address === 'string') throw new Error('no TCP port');
      const client = new Client(`http://127.0.0.1:${address.port}`);
      await client.request('POST', '/n');
      assert.deepStrictEqual(await client.request('POST', '/n'), { n: 2 });
      await warningsDelivered();
      const untied = watch.warnings.filter((warning) => warning.code === UNTIED_SESSION_WARNING);
      assert.equal(untied.length, 1);
      assert.match(untied[0]?.message ?? '', /smart-session-store\/express was handed a session it did not load/);
      assert.match(untied[0]?.message ?? '', /Use smart-session-store\/fastify instead/);
    } finally {
      watch.stop();
      await app.close();
      await store.close();
    }
  });

  test("the plugin's store, loading outside a request and saving what it cannot tie: the same warning, once", async () => {
    const watch = collectWarnings();
    const app = Fastify();
    await app.register(smartSession, { secret: SECRET, cookie: { secure: false }, store: { url: 'sqlite::memory:', createTable: true } });
    await app.ready();
    try {
      const store = app.sessionStore;
      const call = <T>(run: (callback: (error: unknown, value?: T) => void) => void): Promise<T | undefined> =>
        new Promise((resolve, reject) => run((error, value) => (error ? reject(error as Error) : resolve(value))));
      const session = { cookie: { originalMaxAge: null, expires: null, path: '/', httpOnly: true }, n: 1 };
      // A new session saved outside a request is simply stored: nothing was loaded, nothing to tie.
      await call((done) => store.set('outside', session as never, done));
      await warningsDelivered();
      assert.deepStrictEqual(
        watch.warnings.filter((warning) => warning.code === UNTIED_SESSION_WARNING),
        [],
      );
      // Loaded outside a request, then saved as another object: it can only be saved whole, and that is said.
      const loaded = await call<Record<string, unknown> | null>((done) => store.get('outside', done as never));
      assert.equal(loaded?.['n'], 1);
      await call((done) => store.set('outside', { ...session, n: 2 } as never, done));
      await call((done) => store.get('outside', () => done(null)));
      await call((done) => store.set('outside', { ...session, n: 3 } as never, done));
      await warningsDelivered();
      const untied = watch.warnings.filter((warning) => warning.code === UNTIED_SESSION_WARNING);
      assert.equal(untied.length, 1);
      assert.match(untied[0]?.message ?? '', /smart-session-store\/fastify was handed a session it did not load/);
      assert.match(untied[0]?.message ?? '', /through the smartSession or withFastifySession plugin of smart-session-store\/fastify/);
    } finally {
      watch.stop();
      await app.close();
    }
  });
});
