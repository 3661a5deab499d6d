/**
 * `smartSession(options, app)`, smart-session-store's own Koa session layer
 * (no koa-session), through a real Koa app and HTTP: koa-session's
 * `ctx.session` (`= null`, `= { ... }`, `isNew`, `maxAge`, `length`,
 * `populated`, `save()`, `regenerate()`, `manuallyCommit()`,
 * `ctx.sessionOptions`), its cookie and options (signed with `app.keys` and
 * their rotation, `rolling`, `renew`, `maxAge: 'session'`, `externalKey`,
 * `valid`/`beforeSave`), what each request costs the database, a store that
 * fails, and moving between koa-session with `SmartSessionStore` and the
 * middleware without logging anyone out. The scenarios every framework
 * shares are in frameworks.test.ts (harness `koa`).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { after, before, describe, test } from 'node:test';
import Koa from 'koa';
import koaSession from 'koa-session';
import { type KoaSession, SmartSessionStore, type SmartKoaSessionOptions, smartSession } from '../src/adapters/koa.js';
import { hashSessionId, type SessionStoreOptions } from '../src/index.js';
import { backendsForThisFile, type CountedConnection, delay, dropTable, isStoreError } from './support/backends.js';
import { handlerDelay, keysOf } from './support/frameworks/harness.js';
import { Client, listen } from './support/http.js';

const backends = await backendsForThisFile();

/** A point a handler waits at until the test opens it. */
class Gate {
  #arrive: () => void = () => undefined;
  #open: () => void = () => undefined;
  readonly reached = new Promise<void>((resolve) => (this.#arrive = resolve));
  readonly #opened = new Promise<void>((resolve) => (this.#open = resolve));
  pass(): Promise<void> {
    this.#arrive();
    return this.#opened;
  }
  open(): void {
    this.#open();
  }
}

type Options = Omit<SmartKoaSessionOptions<Koa.Context>, 'store'>;

interface RunningApp {
  readonly base: string;
  readonly app: Koa;
  readonly store: SmartSessionStore;
  readonly gates: Map<string, Gate>;
  readonly errors: unknown[];
  close(): Promise<void>;
}

/** The routes of every test app. */
function routes(gates: Map<string, Gate>): Koa.Middleware {
  const gate = (name: string): Promise<void> => gates.get(name)?.pass() ?? Promise.resolve();
  return async (ctx) => {
    const [, route = '', name = ''] = /^\/([^/]+)(?:\/([^/]+))?$/.exec(ctx.path) ?? [];
    const session = (): KoaSession => ctx['session'] as KoaSession;
    switch (`${ctx.method} ${route}`) {
      case 'POST start':
        session()['started'] = true;
        ctx.body = { id: session().externalKey };
        break;
      case 'POST set':
        await handlerDelay();
        session()[`k_${name}`] = name;
        ctx.body = { ok: true };
        break;
      case 'GET keys':
        ctx.body = { id: session().externalKey, keys: keysOf(session()) };
        break;
      case 'GET read':
        ctx.body = { started: session()['started'] ?? null };
        break;
      case 'GET nothing':
        ctx.body = { ok: true };
        break;
      case 'GET info': {
        const { isNew, length, populated, maxAge } = session();
        ctx.body = { isNew, length, populated, maxAge: maxAge ?? null, optionsMaxAge: (ctx['sessionOptions'] as { maxAge?: unknown }).maxAge ?? null };
        break;
      }
      case 'POST replace':
        await gate(name);
        ctx['session'] = { k_a: 'A' };
        ctx.body = { ok: true };
        break;
      case 'POST save':
        session()[`k_${name}_1`] = name;
        await session().save();
        await gate(name);
        session()[`k_${name}_2`] = name;
        ctx.body = { ok: true };
        break;
      case 'POST manual':
        session()['k_manual'] = name;
        if (ctx.query['commit'] === '1') await session().manuallyCommit();
        ctx.body = { ok: true };
        break;
      case 'POST regenerate':
        await session().regenerate();
        ctx.body = { id: session().externalKey };
        break;
      case 'POST logout':
        ctx['session'] = null;
        ctx.body = { ok: true, after: ctx['session'] };
        break;
      case 'POST max-age':
        session().maxAge = name === 'session' ? 'session' : Number(name);
        ctx.body = { ok: true };
        break;
      case 'POST private':
        session()['_private'] = name;
        session()['isNew'] = true;
        session()['fn'] = () => name;
        ctx.body = { ok: true };
        break;
      default:
        ctx.status = 404;
    }
  };
}

async function startApp(store: SessionStoreOptions | SmartSessionStore, options: Options = {}, keys: string[] = ['a test secret']): Promise<RunningApp> {
  const gates = new Map<string, Gate>();
  const app = new Koa();
  app.keys = keys;
  const errors: unknown[] = [];
  app.silent = true;
  app.on('error', (error: unknown) => errors.push(error));
  const middleware = smartSession<Koa.Context>({ maxAge: 3_600_000, ...options, store }, app);
  app.use(middleware);
  app.use(routes(gates));
  const server = await listen(createServer(app.callback()));
  return {
    base: server.base,
    app,
    store: middleware.store,
    gates,
    errors,
    close: async () => {
      await server.close();
      if (!(store instanceof SmartSessionStore)) await middleware.store.close();
    },
  };
}

/** A request, with the answer's status, JSON body and `Set-Cookie` headers. */
async function raw(
  base: string,
  method: string,
  path: string,
  cookie = '',
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Record<string, unknown>; setCookie: string[]; headers: Headers }> {
  const response = await fetch(base + path, { method, headers: { ...headers, ...(cookie === '' ? {} : { cookie }) } });
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    body = { text };
  }
  return { status: response.status, body, setCookie: response.headers.getSetCookie(), headers: response.headers };
}

/** The `name=value` pairs of `Set-Cookie` headers, as a `Cookie` header. */
function cookieHeader(setCookie: string[]): string {
  return setCookie.map((cookie) => cookie.split(';')[0]).join('; ');
}

for (const backend of backends) {
  describe(`smartSession (Koa, no koa-session) on ${backend.name}`, () => {
    const table = 'ssn_koa_mw';
    const apps: (RunningApp & { counted?: CountedConnection })[] = [];
    /** An app whose store talks through a connection that writes down every statement. */
    const open = async (options: Options = {}, store: Partial<SessionStoreOptions> = {}): Promise<RunningApp & { counted: CountedConnection }> => {
      const counted = await backend.counted();
      const running = { ...(await startApp({ connection: counted.connection, table, autopurge: false, ...store }, options)), counted };
      apps.push(running);
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
        await running.counted?.close();
      }
      await dropTable(backend, table);
    });

    test('20 parallel requests each changing a different key of one session: all 20 kept', async () => {
      const { base } = await open();
      const client = new Client(base);
      await client.request('POST', '/start');
      const keys = Array.from({ length: 20 }, (_, i) => `p${i}`);
      await Promise.all(keys.map((key) => client.request('POST', `/set/${key}`)));
      assert.deepStrictEqual((await client.request('GET', '/keys'))['keys'], keys.map((key) => `k_${key}`).sort());
    });

    test('a new session left untouched, or read and left empty, stores nothing and sends no cookie', async () => {
      const { base, counted } = await open();
      const nothing = await raw(base, 'GET', '/nothing');
      const read = await raw(base, 'GET', '/read');
      const info = await raw(base, 'GET', '/info');
      assert.deepStrictEqual(read.body, { started: null });
      assert.deepStrictEqual(info.body, { isNew: true, length: 0, populated: false, maxAge: 3_600_000, optionsMaxAge: 3_600_000 });
      assert.deepStrictEqual([...nothing.setCookie, ...read.setCookie, ...info.setCookie], []);
      assert.deepStrictEqual(counted.statements, []);
    });

    test("koa-session's cookie: koa.sess=<id> signed in koa.sess.sig, its attributes from the options; the session stored with _expire and _maxAge", async () => {
      const { base } = await open({ key: 'app.sid', sameSite: 'lax', path: '/', domain: '127.0.0.1', httpOnly: true });
      const before = Date.now();
      const start = await raw(base, 'POST', '/start');
      const [cookie, signature] = start.setCookie;
      assert.match(cookie ?? '', /^app\.sid=[0-9a-f-]{36}; path=\/; expires=[^;]+; domain=127\.0\.0\.1; samesite=lax; httponly$/);
      assert.match(signature ?? '', /^app\.sid\.sig=[A-Za-z0-9_-]+; path=\/; expires=/);
      const expires = Date.parse(/expires=([^;]+)/.exec(cookie ?? '')?.[1] ?? '');
      assert.ok(Math.abs(expires - (before + 3_600_000)) < 2_000, `cookie expires ${new Date(expires).toISOString()}`);
      const stored = (await row(start.body['id']))?.data ?? {};
      assert.deepStrictEqual(Object.keys(stored).sort(), ['_expire', '_maxAge', 'started']);
      assert.equal(stored['_maxAge'], 3_600_000);
      // Unsigned: no .sig, the value as is.
      const unsigned = await open({ signed: false, key: 'plain' });
      const plain = await raw(unsigned.base, 'POST', '/start');
      assert.equal(plain.setCookie.length, 1);
      assert.match(plain.setCookie[0] ?? '', /^plain=[0-9a-f-]{36}; /);
    });

    test('keys starting with _, isNew and functions are never stored; length and populated count the data; ctx.session.maxAge and ctx.sessionOptions', async () => {
      const { base } = await open();
      const client = new Client(base);
      const { id } = await client.request('POST', '/start');
      await client.request('POST', '/private/x');
      assert.deepStrictEqual(Object.keys((await row(id))?.data ?? {}).sort(), ['_expire', '_maxAge', 'started']);
      assert.deepStrictEqual(await client.request('GET', '/info'), { isNew: false, length: 1, populated: true, maxAge: 3_600_000, optionsMaxAge: 3_600_000 });
    });

    test('a read-only request sends the lookup only, and no cookie; a change, one statement more, and the cookie', async () => {
      const { base, counted } = await open();
      const start = await raw(base, 'POST', '/start');
      const cookie = cookieHeader(start.setCookie);
      counted.statements.length = 0;
      const read = await raw(base, 'GET', '/read', cookie);
      assert.deepStrictEqual(read.body, { started: true });
      assert.deepStrictEqual(read.setCookie, []);
      assert.equal(counted.statements.length, 1, counted.statements.join(' | '));
      counted.statements.length = 0;
      const set = await raw(base, 'POST', '/set/one', cookie);
      assert.equal(counted.statements.length, 2, counted.statements.join(' | '));
      assert.equal(set.setCookie.length, 2, 'the cookie and its signature');
    });

    test('rolling: every response of a stored session sends the cookie, read-only ones with the lookup only', async () => {
      const { base, counted } = await open({ rolling: true });
      const start = await raw(base, 'POST', '/start');
      const cookie = cookieHeader(start.setCookie);
      counted.statements.length = 0;
      const read = await raw(base, 'GET', '/read', cookie);
      const untouched = await raw(base, 'GET', '/nothing', cookie);
      assert.ok(read.setCookie.some((value) => /^koa\.sess=[^;]+;.*expires=/.test(value)));
      assert.ok(untouched.setCookie.some((value) => /^koa\.sess=[^;]+;.*expires=/.test(value)));
      assert.equal(counted.statements.length, 2, counted.statements.join(' | '));
      // A visitor with no session gets none.
      assert.deepStrictEqual((await raw(base, 'GET', '/read')).setCookie, []);
    });

    test('renew: the cookie is sent again, and the stored expiry moved, once less than half of maxAge is left (reads in between touch the storage only)', async () => {
      const { base, store } = await open({ renew: true, maxAge: 1_000 });
      const start = await raw(base, 'POST', '/start');
      const cookie = cookieHeader(start.setCookie);
      const id = String(start.body['id']);
      await delay(200);
      assert.deepStrictEqual((await raw(base, 'GET', '/read', cookie)).setCookie, [], 'more than half left: no cookie');
      const expiry = (await store.store.load(id))?.state.expiresAt ?? 0;
      await delay(450);
      const renewed = await raw(base, 'GET', '/read', cookie);
      assert.deepStrictEqual(renewed.body, { started: true });
      assert.ok(
        renewed.setCookie.some((value) => value.startsWith('koa.sess=')),
        'renewed',
      );
      assert.ok(((await store.store.load(id))?.state.expiresAt ?? 0) > expiry + 400, 'the stored expiry moved');
      assert.ok(Number((await row(id))?.data?.['_expire']) > expiry + 400, "the stored _expire follows, as koa-session's renew save writes it");
      await delay(100);
      assert.deepStrictEqual((await raw(base, 'GET', '/read', cookie)).setCookie, [], 'renewed: not due again');
    });

    test("maxAge: 'session': a cookie without expires, the session stored with _session, living ttl seconds", async () => {
      const { base, store } = await open({ maxAge: 'session' }, { ttl: 600 });
      const before = Date.now();
      const start = await raw(base, 'POST', '/start');
      assert.ok(
        start.setCookie.every((value) => !/expires=/i.test(value)),
        start.setCookie.join(' | '),
      );
      const stored = (await row(start.body['id']))?.data ?? {};
      assert.equal(stored['_session'], true);
      assert.equal(stored['_expire'], undefined);
      const expiresAt = (await store.store.load(String(start.body['id'])))?.state.expiresAt ?? 0;
      assert.ok(expiresAt >= before + 600_000 && expiresAt <= Date.now() + 600_000);
      assert.equal((await raw(base, 'GET', '/info', cookieHeader(start.setCookie))).body['maxAge'], 'session');
    });

    test('ctx.session.maxAge = n: saved although nothing else changed, the cookie and the stored expiry follow', async () => {
      const { base, store } = await open();
      const start = await raw(base, 'POST', '/start');
      const cookie = cookieHeader(start.setCookie);
      const longer = await raw(base, 'POST', '/max-age/7200000', cookie);
      const expires = Date.parse(/expires=([^;]+)/.exec(longer.setCookie[0] ?? '')?.[1] ?? '');
      assert.ok(expires - Date.now() > 7_000_000);
      assert.equal((await row(start.body['id']))?.data?.['_maxAge'], 7_200_000);
      assert.ok(((await store.store.load(String(start.body['id'])))?.state.expiresAt ?? 0) - Date.now() > 7_000_000);
      assert.equal((await raw(base, 'GET', '/info', cookie)).body['maxAge'], 7_200_000, 'the loaded session keeps its maxAge');
    });

    test('ctx.session = null destroys: the row gone, both cookies cleared, the old cookie finds nothing', async () => {
      const { base } = await open();
      const start = await raw(base, 'POST', '/start');
      const cookie = cookieHeader(start.setCookie);
      const logout = await raw(base, 'POST', '/logout', cookie);
      assert.deepStrictEqual(logout.body, { ok: true, after: null });
      assert.ok(
        logout.setCookie.some((value) => /^koa\.sess=; path=\/; expires=Thu, 01 Jan 1970 00:00:00 GMT/.test(value)),
        logout.setCookie.join(' | '),
      );
      assert.ok(logout.setCookie.some((value) => /^koa\.sess\.sig=[^;]*; path=\/; expires=Thu, 01 Jan 1970/.test(value)));
      assert.equal(await row(start.body['id']), undefined);
      const later = await raw(base, 'GET', '/keys', cookie);
      assert.notEqual(later.body['id'], start.body['id']);
      assert.deepStrictEqual(later.body['keys'], []);
    });

    test('ctx.session = {...} replaces: keys it lacks are deleted, keys another request added meanwhile are kept', async () => {
      const running = await open();
      const client = new Client(running.base);
      const { id } = await client.request('POST', '/start');
      await client.request('POST', '/set/a');
      const gate = new Gate();
      running.gates.set('r', gate);
      const replacing = client.request('POST', '/replace/r');
      await gate.reached;
      await client.request('POST', '/set/meanwhile');
      gate.open();
      await replacing;
      const { _expire: _e, _maxAge: _m, ...data } = (await row(id))?.data ?? {};
      assert.deepStrictEqual(data, { k_a: 'A', k_meanwhile: 'meanwhile' });
    });

    test('ctx.session.save() writes at once, and the commit at the end writes the later change as a delta', async () => {
      const running = await open();
      const client = new Client(running.base);
      const { id } = await client.request('POST', '/start');
      const gate = new Gate();
      running.gates.set('forced', gate);
      const saving = client.request('POST', '/save/forced');
      await gate.reached;
      assert.equal((await row(id))?.data?.['k_forced_1'], 'forced');
      await client.request('POST', '/set/meanwhile');
      gate.open();
      await saving;
      assert.deepStrictEqual((await client.request('GET', '/keys'))['keys'], ['k_forced_1', 'k_forced_2', 'k_meanwhile']);
    });

    test('autoCommit: false commits only through ctx.session.manuallyCommit()', async () => {
      const { base } = await open({ autoCommit: false });
      const client = new Client(base);
      // Without manuallyCommit: nothing stored, no cookie.
      const skipped = await raw(base, 'POST', '/manual/skipped');
      assert.deepStrictEqual(skipped.setCookie, []);
      await client.request('POST', '/manual/kept?commit=1');
      assert.ok(client.cookie.includes('koa.sess='));
      const { id } = await client.request('GET', '/keys');
      assert.equal((await row(id))?.data?.['k_manual'], 'kept');
      await client.request('POST', '/manual/lost');
      assert.equal((await row(id))?.data?.['k_manual'], 'kept');
    });

    test('regenerate(): a new id holding the data, the old one gone for good, a request still carrying it gets a new session', async () => {
      const { base } = await open();
      const client = new Client(base);
      const { id: oldId } = await client.request('POST', '/start');
      const oldCookie = client.cookie;
      await client.request('POST', '/set/carried');
      const { id: newId } = await client.request('POST', '/regenerate');
      assert.notEqual(newId, oldId);
      assert.equal(await row(oldId), undefined);
      assert.deepStrictEqual(await client.request('GET', '/keys'), { id: newId, keys: ['k_carried'] });
      const stale = await raw(base, 'POST', '/set/stale', oldCookie);
      assert.equal(stale.status, 200);
      assert.equal(await row(oldId), undefined);
    });

    test('the id header (header option): signed with app.keys like an express-session cookie; a header request is answered in the header alone; 20 parallel changes kept', async () => {
      const { base } = await open({ header: 'X-Session-Id' });
      const start = await raw(base, 'POST', '/start');
      const id = String(start.body['id']);
      const signed = start.headers.get('x-session-id') ?? '';
      assert.equal(signed, `s:${id}.${createHmac('sha256', 'a test secret').update(id).digest('base64').replace(/=+$/, '')}`);
      assert.ok(start.setCookie.length > 0, 'a cookie request gets its cookie too');
      const viaHeader = { 'x-session-id': signed };
      const parallel = await Promise.all(Array.from({ length: 20 }, (_, i) => raw(base, 'POST', `/set/h${i}`, '', viaHeader)));
      for (const answer of parallel) {
        assert.equal(answer.status, 200);
        assert.deepStrictEqual(answer.setCookie, []);
        // As koa-session sends its cookie after every change (its expiry moves), the header comes again: the same id.
        assert.equal(answer.headers.get('x-session-id'), signed);
      }
      const keys = await raw(base, 'GET', '/keys', cookieHeader((await raw(base, 'POST', '/start')).setCookie), viaHeader);
      assert.equal(keys.body['id'], id, 'the header names the session, not the cookie beside it');
      assert.equal((keys.body['keys'] as string[]).filter((key) => key.startsWith('k_h')).length, 20);

      const forged = await raw(base, 'POST', '/start', '', { 'x-session-id': `s:${id}.forged` });
      assert.notEqual(forged.body['id'], id);
      assert.ok((forged.headers.get('x-session-id') ?? '').startsWith(`s:${String(forged.body['id'])}.`));
      assert.deepStrictEqual(forged.setCookie, []);

      const regenerated = await raw(base, 'POST', '/regenerate', '', viaHeader);
      const newId = String(regenerated.body['id']);
      assert.ok((regenerated.headers.get('x-session-id') ?? '').startsWith(`s:${newId}.`));
      assert.deepStrictEqual(regenerated.setCookie, []);
      assert.equal(await row(id), undefined);
      const logout = await raw(base, 'POST', '/logout', '', { 'x-session-id': regenerated.headers.get('x-session-id') ?? '' });
      assert.equal(logout.headers.get('x-session-id'), '');
      assert.deepStrictEqual(logout.setCookie, []);
      assert.equal(await row(newId), undefined);
    });

    test('the id header with signed: false carries the bare id', async () => {
      const { base } = await open({ header: 'x-session-id', signed: false });
      const start = await raw(base, 'POST', '/start');
      assert.equal(start.headers.get('x-session-id'), start.body['id']);
      const keys = await raw(base, 'GET', '/keys', '', { 'x-session-id': String(start.body['id']) });
      assert.equal(keys.body['id'], start.body['id']);
    });

    test('app.keys rotation: a cookie signed with an older key is accepted and signed again with the first; one no key signed is a new session', async () => {
      const store = new SmartSessionStore({ url: backend.url, table, autopurge: false });
      const before = await startApp(store, {}, ['old key']);
      const rotated = await startApp(store, {}, ['new key', 'old key']);
      const after = await startApp(store, {}, ['new key']);
      try {
        const start = await raw(before.base, 'POST', '/start');
        const cookie = cookieHeader(start.setCookie);
        const read = await raw(rotated.base, 'GET', '/keys', cookie);
        assert.equal(read.body['id'], start.body['id']);
        const resigned = read.setCookie.find((value) => value.startsWith('koa.sess.sig='));
        assert.ok(resigned, `the signature is sent again: ${read.setCookie.join(' | ')}`);
        assert.deepStrictEqual((await raw(after.base, 'GET', '/keys', cookie)).body['keys'], [], 'the old signature alone: not accepted');
        const renewed = `koa.sess=${start.body['id']}; ${resigned.split(';')[0]}`;
        assert.equal((await raw(after.base, 'GET', '/keys', renewed)).body['id'], start.body['id']);
      } finally {
        await before.close();
        await rotated.close();
        await after.close();
        await store.close();
      }
    });

    test('a forged, unsigned or garbled cookie gets a new, empty session and leaves the named one alone', async () => {
      const { base } = await open();
      const client = new Client(base);
      const { id } = await client.request('POST', '/start');
      await client.request('POST', '/set/secret');
      const forged = [
        `koa.sess=${id}; koa.sess.sig=AAAAAAAAAAAAAAAAAAAAAAAAAAA`,
        `koa.sess=${id}`,
        `koa.sess=${'x'.repeat(400)}; koa.sess.sig=abc`,
        'koa.sess=%E0%A4%A; koa.sess.sig=%%%',
      ];
      for (const cookie of forged) {
        const answer = await raw(base, 'GET', '/keys', cookie);
        assert.equal(answer.status, 200, cookie);
        assert.notEqual(answer.body['id'], id, cookie);
        assert.deepStrictEqual(answer.body['keys'], [], cookie);
      }
      const unsigned = await open({ signed: false });
      for (const cookie of ['koa.sess=not-a-session', `koa.sess=${'y'.repeat(300)}`, 'koa.sess=""']) {
        const answer = await raw(unsigned.base, 'GET', '/info', cookie);
        assert.equal(answer.status, 200, cookie);
        assert.equal(answer.body['isNew'], true, cookie);
      }
      assert.deepStrictEqual((await client.request('GET', '/keys'))['keys'], ['k_secret']);
    });

    test('externalKey: the id from a header and back in it; valid() and beforeSave() as koa-session calls them', async () => {
      const missed: unknown[] = [];
      const { base, app } = await open({
        externalKey: { get: (ctx) => ctx.get('x-session') || undefined, set: (ctx, key) => ctx.set('x-session', key) },
        valid: (ctx, data) => data['agent'] === ctx.get('user-agent'),
        beforeSave: (ctx, session) => {
          session['agent'] = ctx.get('user-agent');
        },
      });
      app.on('session:invalid', (event: unknown) => missed.push(event));
      const start = await raw(base, 'POST', '/start', '', { 'user-agent': 'one' });
      const key = start.headers.get('x-session') ?? '';
      assert.equal(key, start.body['id']);
      assert.deepStrictEqual(start.setCookie, []);
      assert.deepStrictEqual((await raw(base, 'GET', '/read', '', { 'x-session': key, 'user-agent': 'one' })).body, { started: true });
      assert.deepStrictEqual((await raw(base, 'GET', '/read', '', { 'x-session': key, 'user-agent': 'two' })).body, { started: null });
      await delay(5);
      assert.equal(missed.length, 1);
    });

    // The failure is a dropped table: Redis has none (its keys gone, a load finds no session). The layer's error path is
    // the same whatever the store's error.
    test('a store that fails: the request answers 500 through Koa, the process goes on, and the next requests are served', {
      skip: !backend.sql && 'Redis has no table to drop',
    }, async () => {
      const failing = 'ssn_koa_mw_failing';
      await dropTable(backend, failing);
      const running = await startApp({ url: backend.url, table: failing, createTable: true, autopurge: false });
      apps.push(running);
      try {
        const client = new Client(running.base);
        const start = await raw(running.base, 'POST', '/start');
        assert.equal(start.status, 200);
        client.cookie = cookieHeader(start.setCookie);
        await dropTable(backend, failing);
        const load = await raw(running.base, 'GET', '/read', client.cookie);
        const save = await raw(running.base, 'POST', '/start');
        assert.equal(load.status, 500);
        assert.equal(save.status, 500);
        assert.ok(running.errors.length >= 2);
        assert.ok(
          running.errors.every(
            (error) => isStoreError('ERR_DATABASE')(error) || isStoreError('ERR_UNAVAILABLE')(error) || isStoreError('ERR_TABLE_MISSING')(error),
          ),
          String(running.errors),
        );
        // The process is alive and serves what needs no stored session; the store back, sessions are served again.
        assert.equal((await raw(running.base, 'GET', '/nothing')).status, 200);
        await running.store.createTable();
        const again = await raw(running.base, 'POST', '/start');
        assert.equal(again.status, 200, JSON.stringify(again.body));
        assert.deepStrictEqual((await raw(running.base, 'GET', '/read', cookieHeader(again.setCookie))).body, { started: true });
      } finally {
        await dropTable(backend, failing);
      }
    });
  });

  describe(`moving between koa-session + SmartSessionStore and smartSession on ${backend.name}`, () => {
    const table = 'ssn_koa_switch';
    let store: SmartSessionStore;
    const servers: { base: string; close(): Promise<void> }[] = [];

    /** koa-session 7 with the external store: the compatibility path. */
    async function koaSessionApp(): Promise<string> {
      const app = new Koa();
      app.keys = ['the app secret'];
      app.use(koaSession({ store, maxAge: 3_600_000 }, app));
      app.use(routes(new Map()));
      const server = await listen(createServer(app.callback()));
      servers.push(server);
      return server.base;
    }

    before(async () => {
      await dropTable(backend, table);
      store = new SmartSessionStore({ url: backend.url, table, createTable: true, autopurge: false });
    });
    after(async () => {
      for (const server of servers) await server.close();
      await store.close();
      await dropTable(backend, table);
    });

    test("a session koa-session stored is the middleware's, and back: same id, same data, no one logged out", async () => {
      const oldApp = await koaSessionApp();
      const newApp = await startApp(store, {}, ['the app secret']);
      servers.push(newApp);
      const client = new Client(oldApp);
      // koa-session 7 leaves ctx.session.externalKey unset for a new session: the id is the cookie's.
      await client.request('POST', '/start');
      await client.request('POST', '/set/before');
      const id = /koa\.sess=([^;]+)/.exec(client.cookie)?.[1];
      assert.ok(id !== undefined);
      const moved = new Client(newApp.base);
      moved.cookie = client.cookie;
      assert.deepStrictEqual(await moved.request('GET', '/keys'), { id, keys: ['k_before'] });
      await moved.request('POST', '/set/after');
      const stored = (await backend.rows(table).read(hashSessionId(id)))?.data ?? {};
      assert.deepStrictEqual(Object.keys(stored).sort(), ['_expire', '_maxAge', 'k_after', 'k_before', 'started']);
      const back = new Client(oldApp);
      back.cookie = moved.cookie;
      assert.deepStrictEqual((await back.request('GET', '/keys'))['keys'], ['k_after', 'k_before']);
      assert.equal(/koa\.sess=([^;]+)/.exec(back.cookie)?.[1], id);
    });

    test("a session the middleware stored is koa-session's", async () => {
      const newApp = await startApp(store, {}, ['the app secret']);
      servers.push(newApp);
      const oldApp = await koaSessionApp();
      const client = new Client(newApp.base);
      const { id } = await client.request('POST', '/start');
      await client.request('POST', '/set/new');
      const moved = new Client(oldApp);
      moved.cookie = client.cookie;
      const { keys } = await moved.request('GET', '/keys');
      assert.deepStrictEqual(keys, ['k_new']);
      await moved.request('POST', '/set/old');
      assert.deepStrictEqual(await client.request('GET', '/keys'), { id, keys: ['k_new', 'k_old'] });
    });
  });
}

describe('smartSession(options, app): options', () => {
  test('refuses what it cannot take, naming the option, before it opens anything', () => {
    const app = new Koa();
    const store = { url: 'sqlite::memory:' };
    const refused: [Record<string, unknown>, string][] = [
      [{ maxAge: -1 }, 'option "maxAge"'],
      [{ maxAge: 'forever' }, 'option "maxAge"'],
      [{ key: 'a;b' }, 'option "key"'],
      [{ rolling: 'yes' }, 'option "rolling"'],
      [{ sameSite: 'sometimes' }, 'option "sameSite"'],
      [{ externalKey: {} }, 'option "externalKey"'],
      [{ header: 'cookie' }, 'option "header"'],
      [{ header: 'x y' }, 'option "header"'],
      [{ header: 'x-session-id', externalKey: { get: () => undefined, set: () => undefined } }, 'option "header"'],
      [{ genid: 'abc' }, 'option "genid"'],
      [{ encode: (value: unknown) => String(value) }, 'option "encode" is not taken'],
      [{ ContextStore: class {} }, 'option "ContextStore" is not taken'],
      [{ maxage: 1000 }, 'spelled "maxAge"'],
      [{ url: 'sqlite::memory:' }, 'option "url" is not an option of smartSession'],
    ];
    for (const [options, message] of refused)
      assert.throws(() => smartSession({ store, ...options } as never, app), isStoreError('ERR_INVALID_OPTION', message), JSON.stringify(options));
    assert.throws(() => smartSession({} as never, app), isStoreError('ERR_INVALID_OPTION', 'option "store" is required'));
    assert.throws(() => smartSession({ store } as never, undefined as never), /app instance required/);
  });

  test('importing smart-session-store/koa and serving sessions need no koa-session', () => {
    const script = `
      import { registerHooks } from 'node:module';
      registerHooks({
        resolve(specifier, context, next) {
          if (specifier === 'koa-session' || specifier.startsWith('koa-session/'))
            throw Object.assign(new Error("Cannot find package 'koa-session'"), { code: 'ERR_MODULE_NOT_FOUND' });
          return next(specifier, context);
        },
      });
      const assert = (await import('node:assert/strict')).default;
      await assert.rejects(import('koa-session'), { code: 'ERR_MODULE_NOT_FOUND' });
      const { default: Koa } = await import('koa');
      const { smartSession, SmartSessionStore } = await import(${JSON.stringify(new URL('../src/adapters/koa.ts', import.meta.url).href)});
      const app = new Koa();
      app.keys = ['k'];
      const sessions = smartSession({ store: { url: 'sqlite::memory:', createTable: true } }, app);
      assert.ok(sessions.store instanceof SmartSessionStore);
      app.use(sessions).use((ctx) => { ctx.session.n = (ctx.session.n ?? 0) + 1; ctx.body = { n: ctx.session.n }; });
      const server = app.listen(0, '127.0.0.1');
      await new Promise((resolve) => server.once('listening', resolve));
      const base = 'http://127.0.0.1:' + server.address().port;
      const first = await fetch(base);
      const cookie = first.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ');
      const second = await (await fetch(base, { headers: { cookie } })).json();
      assert.deepStrictEqual(second, { n: 2 });
      server.close();
      await sessions.store.close();
    `;
    const run = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      encoding: 'utf8',
      cwd: new URL('..', import.meta.url).pathname,
    });
    assert.equal(run.status, 0, run.stderr);
  });
});
