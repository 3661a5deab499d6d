/**
 * `smart-session-store/fastify`'s own session layer (no @fastify/session),
 * through a real Fastify app and HTTP on the real databases: 20 parallel
 * requests on one session, the cookie options, `rolling`,
 * `saveUninitialized`, `regenerate`/`destroy`/`reload`/`save`, secret
 * rotation, forged cookies, a store that goes away, and moving between
 * @fastify/session with the store and the plugin without logging anyone out.
 */
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { after, before, describe, test } from 'node:test';
import Fastify, { type FastifyInstance } from 'fastify';
import { type SmartSessionOptions, SmartSessionStore, smartSession, withFastifySession } from '../src/adapters/fastify.js';
import { hashSessionId, type SessionStoreOptions } from '../src/index.js';
import { backendsForThisFile, dropTable, isStoreError } from './support/backends.js';
import { handlerDelay, keysOf } from './support/frameworks/harness.js';
import { Client } from './support/http.js';

const backends = await backendsForThisFile();
const SECRET = 'a test secret of at least thirty-two characters';
const OLDER = 'an older secret, also thirty-two characters or more';

type Plugin = typeof smartSession | typeof withFastifySession;

/** An app on `plugin` with the shared routes. */
async function startApp(
  store: SessionStoreOptions | SmartSessionStore,
  session: Partial<Omit<SmartSessionOptions, 'store'>> = {},
  plugin: Plugin = smartSession,
): Promise<{ app: FastifyInstance; base: string; close(): Promise<void> }> {
  const app = Fastify();
  await app.register(plugin, { secret: SECRET, cookie: { secure: false, maxAge: 3_600_000 }, ...session, store });
  const data = (request: { session: object }) => request.session as Record<string, unknown>;
  app.post('/start', async (request) => {
    data(request)['started'] = true;
    return { id: request.session.sessionId };
  });
  app.post<{ Params: { key: string } }>('/set/:key', async (request) => {
    await handlerDelay();
    data(request)[`k_${request.params.key}`] = request.params.key;
    return { ok: true };
  });
  app.get('/keys', async (request) => ({ id: request.session.sessionId, keys: keysOf(request.session) }));
  app.get('/nothing', async () => ({ ok: true }));
  app.post('/login', async (request) => {
    data(request)['keep'] = 'kept';
    await request.session.regenerate(['keep']);
    data(request)['user'] = 'ann';
    return { id: request.session.sessionId };
  });
  app.post('/logout', (request, reply) => {
    request.session.destroy((error) => (error ? reply.send(error) : reply.send({ session: request.session })));
  });
  app.post('/save-reload', async (request) => {
    data(request)['saved'] = 1;
    assert.equal(request.session.isModified(), true);
    await request.session.save();
    assert.equal(request.session.isModified(), false);
    assert.equal(request.session.isSaved(), true);
    await request.session.reload();
    return { saved: data(request)['saved'] ?? null, id: request.session.sessionId };
  });
  app.get('/inspect', async (request) => ({ shown: inspect(request.session, { depth: 6 }) }));
  app.post('/modified', async (request) => {
    // Reading a key, even changing inside it, is no top-level change (as @fastify/session's isModified says); replacing one is.
    const start = data(request)['profile'] === undefined;
    if (start) data(request)['profile'] = { tags: ['a'] };
    else {
      const before = request.session.isModified();
      const profile = data(request)['profile'] as { tags: string[] };
      profile.tags.push('b');
      const afterRead = request.session.isModified();
      data(request)['profile'] = profile;
      const afterSameValue = request.session.isModified();
      data(request)['profile'] = { tags: [...profile.tags, 'c'] };
      return { before, afterRead, afterSameValue, afterReplace: request.session.isModified() };
    }
    return { started: true };
  });
  app.post('/options', async (request) => {
    data(request)['x'] = 1;
    request.session.options({ maxAge: 60_000, sameSite: 'strict', priority: 'high' });
    return { ok: true };
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('no TCP port');
  return { app, base: `http://127.0.0.1:${address.port}`, close: () => app.close() };
}

/** A request and its answer: status, JSON body, Set-Cookie headers. */
async function call(base: string, method: string, path: string, cookie = '') {
  const response = await fetch(base + path, { method, headers: cookie === '' ? {} : { cookie } });
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>), setCookie: response.headers.getSetCookie() };
}

/** `name=value` of a Set-Cookie. */
const pair = (setCookie: string | undefined): string => (setCookie ?? '').split(';')[0] ?? '';

for (const backend of backends) {
  describe(`smartSession (own layer) on ${backend.name}`, () => {
    const table = 'ssn_fastify_plugin';
    const running: { close(): Promise<void> }[] = [];
    const open = async (session: Partial<Omit<SmartSessionOptions, 'store'>> = {}, plugin: Plugin = smartSession) => {
      const started = await startApp({ url: backend.url, table, autopurge: false }, session, plugin);
      running.push(started);
      return started;
    };
    const row = (id: unknown) => backend.rows(table).read(hashSessionId(String(id)));

    before(async () => {
      await dropTable(backend, table);
      const store = new SmartSessionStore({ url: backend.url, table });
      await store.createTable();
      await store.close();
    });
    after(async () => {
      for (const app of running) await app.close();
      await dropTable(backend, table);
    });

    test('20 parallel requests each changing a different key of one session: all 20 kept', async () => {
      const { base } = await open();
      const client = new Client(base);
      const { id } = await client.request('POST', '/start');
      const keys = Array.from({ length: 20 }, (_, i) => `p${i}`);
      await Promise.all(keys.map((key) => client.request('POST', `/set/${key}`)));
      assert.deepStrictEqual(await client.request('GET', '/keys'), { id, keys: keys.map((key) => `k_${key}`).sort() });
    });

    test("the cookie: @fastify/session's signed value and attributes, from the options", async () => {
      const { base } = await open({
        cookieName: 'sid',
        cookiePrefix: 'p:',
        cookie: { secure: false, maxAge: 60_000, sameSite: 'lax', path: '/', domain: 'localhost', partitioned: true, priority: 'low', httpOnly: false },
      });
      const { setCookie, body } = await call(base, 'POST', '/start');
      assert.equal(setCookie.length, 1);
      const [first = ''] = setCookie;
      assert.match(
        first,
        /^sid=p%3A[\w-]{32}\.[A-Za-z0-9%]+; Max-Age|^sid=p%3A[\w-]{32}\.[A-Za-z0-9%]+; Domain=localhost; Path=\/; Expires=[^;]+; Partitioned; Priority=Low; SameSite=Lax$/,
      );
      assert.doesNotMatch(first, /HttpOnly|Secure/);
      const value = decodeURIComponent(pair(first).slice('sid='.length));
      const { createHmac } = await import('node:crypto');
      const id = String(body['id']);
      assert.equal(value, `p:${id}.${createHmac('sha256', SECRET).update(id).digest('base64').replace(/=/g, '')}`);
      assert.ok(Math.abs(Date.parse(/Expires=([^;]+)/.exec(first)?.[1] ?? '') - (Date.now() + 60_000)) < 2_000);
    });

    test("secure: true (the default) sends no cookie over plain HTTP and stores nothing; 'auto' follows the protocol", async () => {
      const strict = await open({ cookie: { maxAge: 60_000 } });
      const plain = await call(strict.base, 'POST', '/start');
      assert.deepStrictEqual(plain.setCookie, []);
      assert.equal(await row(plain.body['id']), undefined);
      const auto = await open({ cookie: { secure: 'auto' } });
      const viaHttp = await call(auto.base, 'POST', '/start');
      assert.match(viaHttp.setCookie[0] ?? '', /SameSite=Lax$/);
      assert.doesNotMatch(viaHttp.setCookie[0] ?? '', /Secure/);
      const injected = await auto.app.inject({ method: 'POST', url: '/start', headers: { 'x-forwarded-proto': 'https' } });
      assert.equal(injected.statusCode, 200);
    });

    test('saveUninitialized: false (the default): an untouched new session stores nothing and sends no cookie; true stores it', async () => {
      const { base } = await open();
      const { setCookie, body } = await call(base, 'GET', '/keys');
      assert.deepStrictEqual(setCookie, []);
      assert.equal(await row(body['id']), undefined);
      const eager = await open({ saveUninitialized: true });
      const stored = await call(eager.base, 'GET', '/keys');
      assert.equal(stored.setCookie.length, 1);
      assert.ok((await row(stored.body['id'])) !== undefined);
    });

    test('rolling: true re-sends the cookie of an unchanged session; rolling: false does not, and sends it when the session changes', async () => {
      const rolling = await open();
      const client = new Client(rolling.base);
      await client.request('POST', '/start');
      assert.equal((await call(rolling.base, 'GET', '/keys', client.cookie)).setCookie.length, 1);
      const fixed = await open({ rolling: false });
      const other = new Client(fixed.base);
      await other.request('POST', '/start');
      assert.deepStrictEqual((await call(fixed.base, 'GET', '/keys', other.cookie)).setCookie, []);
      assert.equal((await call(fixed.base, 'POST', '/set/a', other.cookie)).setCookie.length, 1);
    });

    test('options() changes this session cookie and is stored with it', async () => {
      const { base } = await open();
      const { setCookie } = await call(base, 'POST', '/options');
      assert.match(setCookie[0] ?? '', /Priority=High; SameSite=Strict$/);
      const id = pair(setCookie[0]).split('=')[1]?.split('.')[0];
      const cookie = (await row(id))?.data?.['cookie'] as Record<string, unknown>;
      assert.equal(cookie['originalMaxAge'], 60_000);
      assert.equal(cookie['sameSite'], 'strict');
    });

    test('regenerate(keys) carries only those keys to a new id and deletes the old session; destroy() deletes it and empties request.session', async () => {
      const { base } = await open();
      const client = new Client(base);
      const { id: oldId } = await client.request('POST', '/start');
      const { id: newId } = await client.request('POST', '/login');
      assert.notEqual(newId, oldId);
      assert.equal(await row(oldId), undefined);
      const renewed = (await row(newId))?.data;
      assert.equal(renewed?.['keep'], 'kept');
      assert.equal(renewed?.['user'], 'ann');
      assert.equal(renewed?.['started'], undefined);
      assert.deepStrictEqual(await client.request('POST', '/logout'), { session: null });
      assert.equal(await row(newId), undefined);
      // The old cookie now names nothing: a new, empty session.
      assert.notEqual((await client.request('GET', '/keys'))['id'], newId);
    });

    test('the id header (header option): a new session sends its signed id in both; a header request is answered in the header alone; 20 parallel changes kept', async () => {
      const { base } = await open({ header: 'X-Session-Id', rolling: false });
      const send = (method: string, path: string, headers: Record<string, string> = {}) => fetch(base + path, { method, headers });
      const first = await send('POST', '/start');
      const { id } = (await first.json()) as { id: string };
      const signed = first.headers.get('x-session-id') ?? '';
      assert.ok(signed.startsWith(`${id}.`), signed);
      assert.equal(pair(first.headers.getSetCookie()[0]), `sessionId=${encodeURIComponent(signed)}`);

      const parallel = await Promise.all(Array.from({ length: 20 }, (_, i) => send('POST', `/set/h${i}`, { 'x-session-id': signed })));
      for (const response of parallel) {
        assert.equal(response.status, 200);
        assert.deepStrictEqual(response.headers.getSetCookie(), []);
        assert.equal(response.headers.get('x-session-id'), null);
      }
      const keys = (await (await send('GET', '/keys', { 'x-session-id': signed })).json()) as { id: string; keys: string[] };
      assert.equal(keys.id, id);
      assert.equal(keys.keys.filter((key) => key.startsWith('k_h')).length, 20);

      // A forged header names no session (no clearing cookie either); a cookie beside a good header is not looked at.
      const forged = await send('POST', '/start', { 'x-session-id': `${id}.forged`, cookie: `sessionId=${encodeURIComponent(signed)}` });
      const forgedSigned = forged.headers.get('x-session-id') ?? '';
      assert.ok(forgedSigned !== '' && !forgedSigned.startsWith(`${id}.`), forgedSigned);
      assert.deepStrictEqual(forged.headers.getSetCookie(), []);
      const other = await call(base, 'POST', '/start');
      const both = (await (await send('GET', '/keys', { 'x-session-id': signed, cookie: pair(other.setCookie[0]) })).json()) as { id: string };
      assert.equal(both.id, id);

      // Regenerated through the header: the new signed id comes back in the header.
      const login = await send('POST', '/login', { 'x-session-id': signed });
      const { id: newId } = (await login.json()) as { id: string };
      assert.ok((login.headers.get('x-session-id') ?? '').startsWith(`${newId}.`));
      assert.deepStrictEqual(login.headers.getSetCookie(), []);
      assert.equal(await row(id), undefined);
    });

    test('save() writes at once (isSaved, isModified follow), reload() reads the stored session back', async () => {
      const { base } = await open();
      const client = new Client(base);
      const { id } = await client.request('POST', '/start');
      assert.deepStrictEqual(await client.request('POST', '/save-reload'), { saved: 1, id });
      assert.equal((await row(id))?.data?.['saved'], 1);
    });

    test('console.log(request.session) shows the stored values, not getters, and leaves isModified() false', async () => {
      const { base } = await open();
      const client = new Client(base);
      await client.request('POST', '/start');
      await client.request('POST', '/modified');
      const shown = await call(base, 'GET', '/inspect', client.cookie);
      assert.match(String(shown.body['shown']), /tags: \[ 'a' \]/);
      assert.doesNotMatch(String(shown.body['shown']), /Getter|Setter/);
      assert.deepStrictEqual(await client.request('POST', '/modified'), { before: false, afterRead: false, afterSameValue: false, afterReplace: true });
    });

    test('isModified(): reading a key or changing inside it is no top-level change, replacing it is; all of it is saved', async () => {
      const { base } = await open();
      const client = new Client(base);
      const { id } = await client.request('POST', '/start');
      await client.request('POST', '/modified');
      assert.deepStrictEqual(await client.request('POST', '/modified'), { before: false, afterRead: false, afterSameValue: false, afterReplace: true });
      assert.deepStrictEqual((await row(id))?.data?.['profile'], { tags: ['a', 'b', 'c'] });
    });

    test('secret rotation: a cookie an older secret signed keeps its session and is re-signed with the first secret', async () => {
      const before = await open({ secret: OLDER });
      const client = new Client(before.base);
      const { id } = await client.request('POST', '/start');
      const rotated = await open({ secret: [SECRET, OLDER] });
      const reread = await call(rotated.base, 'GET', '/keys', client.cookie);
      assert.equal(reread.body['id'], id);
      assert.notEqual(pair(reread.setCookie[0]), client.cookie);
      const current = await open({ secret: SECRET });
      assert.equal((await call(current.base, 'GET', '/keys', pair(reread.setCookie[0]))).body['id'], id);
    });

    test('a forged, tampered or malformed cookie gets a new session, never the one it names', async () => {
      const { base } = await open();
      const client = new Client(base);
      const { id } = await client.request('POST', '/start');
      const [name, value = ''] = client.cookie.split('=');
      const forged = [
        `${name}=${id}.${'A'.repeat(43)}`,
        `${name}=${id}`,
        `${name}=${value.slice(0, -2)}xx`,
        `${name}=%E0%A4%A`,
        `${name}=.`,
        `${name}=${encodeURIComponent(`${id}.`)}`,
      ];
      for (const cookie of forged) {
        const answer = await call(base, 'GET', '/keys', cookie);
        assert.equal(answer.status, 200, cookie);
        assert.notEqual(answer.body['id'], id, cookie);
        assert.deepStrictEqual(answer.body['keys'], [], cookie);
      }
    });

    test('moving from @fastify/session with the store to the plugin, and back, keeps users logged in', async () => {
      const old = await open({}, withFastifySession);
      const client = new Client(old.base);
      const { id } = await client.request('POST', '/start');
      await client.request('POST', '/set/before');
      const ours = await open();
      const moved = new Client(ours.base);
      moved.cookie = client.cookie;
      assert.deepStrictEqual(await moved.request('GET', '/keys'), { id, keys: ['k_before'] });
      await moved.request('POST', '/set/during');
      const back = await open({}, withFastifySession);
      const returned = new Client(back.base);
      returned.cookie = moved.cookie;
      assert.deepStrictEqual(await returned.request('GET', '/keys'), { id, keys: ['k_before', 'k_during'] });
    });
  });
}

describe('smartSession: failures', () => {
  test('a store that fails when the session is committed: an error answer, the process goes on', async () => {
    const app = Fastify();
    await app.register(smartSession, { secret: SECRET, cookie: { secure: false }, store: { url: 'sqlite::memory:', createTable: true } });
    app.post('/close-then-set', async (request) => {
      await app.sessionStore.store.close();
      (request.session as Record<string, unknown>)['n'] = 1;
      return { ok: true };
    });
    try {
      const failed = await app.inject({ method: 'POST', url: '/close-then-set' });
      assert.equal(failed.statusCode, 500);
      assert.match(failed.body, /closed/);
      assert.equal(failed.headers['set-cookie'], undefined);
    } finally {
      await app.close();
    }
  });

  test('a store that fails on load: the error goes through Fastify, as a 500', async () => {
    const app = Fastify();
    await app.register(smartSession, { secret: SECRET, cookie: { secure: false }, store: { url: 'sqlite::memory:', createTable: true } });
    app.post('/n', async (request) => {
      (request.session as Record<string, unknown>)['n'] = 1;
      return { id: request.session.sessionId };
    });
    const first = await app.inject({ method: 'POST', url: '/n' });
    const cookie = pair(String(first.headers['set-cookie']));
    await app.sessionStore.store.close();
    const failed = await app.inject({ method: 'POST', url: '/n', headers: { cookie } });
    assert.equal(failed.statusCode, 500);
    await app.close();
  });

  test('bad options are refused at registration', async () => {
    for (const options of [
      { secret: 'short' },
      { secret: [] },
      { secret: SECRET, cookie: { secure: 'yes' } },
      { secret: SECRET, cookie: { maxAge: -1 } },
      { secret: SECRET, cookieName: 'bad name' },
      { secret: SECRET, rolling: 'yes' },
      { secret: SECRET, algorithm: 'nope' },
      { secret: SECRET, header: 'cookie' },
      { secret: SECRET, header: 'a b' },
    ]) {
      const app = Fastify();
      void app.register(smartSession, { ...(options as SmartSessionOptions), store: { url: 'sqlite::memory:' } });
      await assert.rejects(async () => app.ready(), isStoreError('ERR_INVALID_OPTION'), JSON.stringify(options));
      await app.close();
    }
  });
});
