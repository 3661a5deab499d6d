/**
 * smart-session-store/express's own session middleware, through real express
 * apps and HTTP on every backend: its cookie (options, signature, secret
 * rotation, forged and malformed values), rolling and saveUninitialized,
 * regenerate/destroy/reload/save, store errors reaching the error handler,
 * sessions moving between it and express-session (with this package's
 * store) in both directions, passport's login and logout, and the import
 * without express-session installed. Parallel requests, regenerate and
 * logout races, and what a request costs are in frameworks.test.ts (its
 * `express-middleware` harness).
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { after, before, describe, test } from 'node:test';
import express from 'express';
import expressSession from 'express-session';
import passport from 'passport';
import { Strategy as LocalStrategy } from 'passport-local';
import { type SessionOptions, SmartSessionStore, session } from '../src/adapters/express.js';
import { hashSessionId, SessionStoreError } from '../src/index.js';
import { backendsForThisFile, dropTable } from './support/backends.js';
import { listen, type RunningServer } from './support/http.js';

declare global {
  namespace Express {
    interface User {
      name: string;
    }
  }
}

const root = join(import.meta.dirname, '..');
const SECRET = 'test secret';

/** One answer: status, its Set-Cookie headers, its body as JSON (or text). */
interface Answer {
  readonly status: number;
  readonly setCookies: string[];
  readonly body: unknown;
  /** `name=value` of the first Set-Cookie, to send back. */
  readonly cookie: string | undefined;
}

async function call(
  base: string,
  path: string,
  { method = 'GET', cookie, headers = {}, json }: { method?: string; cookie?: string | undefined; headers?: Record<string, string>; json?: unknown } = {},
): Promise<Answer> {
  const response = await fetch(base + path, {
    method,
    headers: { ...headers, ...(cookie === undefined ? {} : { cookie }), ...(json === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(json === undefined ? {} : { body: JSON.stringify(json) }),
  });
  const text = await response.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // Not JSON: the text.
  }
  const setCookies = response.headers.getSetCookie();
  return { status: response.status, setCookies, body, cookie: setCookies[0]?.split(';')[0] };
}

/** The session id a `name=s%3A<id>.<signature>` cookie carries. */
function idOf(cookie: string | undefined): string {
  assert.ok(cookie !== undefined, 'a cookie');
  const value = decodeURIComponent(cookie.slice(cookie.indexOf('=') + 1));
  return value.slice(2, value.lastIndexOf('.'));
}

/** The cookie value express-session (cookie-signature) writes for `id` with `secret`. */
function signed(id: string, secret: string): string {
  return `s:${id}.${createHmac('sha256', secret).update(id).digest('base64').replace(/=+$/, '')}`;
}

/** The routes every app of this file has, after its session middleware. */
function routes(app: express.Express): express.Express {
  app.use(express.json());
  app.get('/read', (req, res) => {
    res.json({ id: req.sessionID, data: { ...req.session, cookie: undefined }, maxAge: req.session.cookie.maxAge ?? null });
  });
  app.post('/set/:key', (req, res) => {
    req.session[req.params['key'] as string] = req.body?.value ?? true;
    res.json({ id: req.sessionID });
  });
  app.get('/inspect', (req, res) => {
    res.type('text').send(inspect(req.session, { depth: 6 }));
  });
  app.post('/map', (req, res) => {
    req.session['prefs'] = new Map([['theme', 'dark']]);
    res.json({ unreachable: true });
  });
  app.post('/regenerate', (req, res, next) => {
    const before = req.sessionID;
    req.session.regenerate((error) => {
      if (error) return next(error);
      req.session['fresh'] = true;
      res.json({ before, after: req.sessionID });
    });
  });
  app.post('/destroy', (req, res, next) => {
    req.session.destroy((error) => (error ? next(error) : res.json({ session: typeof req.session })));
  });
  app.post('/unset', (req, res) => {
    (req as { session: unknown }).session = null;
    res.json({ ok: true });
  });
  app.get('/stream', (req, res) => {
    req.session['streamed'] = true;
    res.write('part one, ');
    setTimeout(() => res.end('part two'), 20);
  });
  app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
    const code = error instanceof SessionStoreError ? error.code : 'OTHER';
    res.status(code === 'ERR_VALUE_NOT_STORABLE' ? 400 : 500).json({ error: code, message: error instanceof Error ? error.message : String(error) });
  });
  return app;
}

const backends = await backendsForThisFile();

for (const backend of backends) {
  describe(`express middleware on ${backend.name}`, () => {
    const table = 'ssn_exmw_main';
    const servers: RunningServer[] = [];
    const stores: SmartSessionStore[] = [];

    /** An app with the middleware; its store (this file's table) and server are closed after the file's tests. */
    async function start(options: Partial<SessionOptions> = {}, setup?: (app: express.Express) => void): Promise<string> {
      const middleware = session({ url: backend.url, table, secret: SECRET, cookie: { maxAge: 60_000 }, ...options } as SessionOptions);
      stores.push(middleware.store);
      const app = express();
      app.use(middleware);
      setup?.(app);
      const server = await listen(createServer(routes(app)));
      servers.push(server);
      return server.base;
    }

    const row = (id: string) => backend.rows(table).read(hashSessionId(id));

    before(async () => {
      await dropTable(backend, table);
      const store = new SmartSessionStore({ url: backend.url, table });
      await store.createTable();
      await store.close();
    });
    after(async () => {
      for (const server of servers) await server.close();
      for (const store of stores) await store.close();
      await dropTable(backend, table);
    });

    test('the cookie: express-session signed value and every attribute of its options', async () => {
      const base = await start({
        name: 'sid',
        cookie: { maxAge: 60_000, domain: 'example.com', path: '/', sameSite: 'strict', partitioned: true, priority: 'high', httpOnly: true },
      });
      const answer = await call(base, '/set/user', { method: 'POST' });
      assert.equal(answer.setCookies.length, 1);
      const [pair = '', ...attributes] = (answer.setCookies[0] as string).split('; ');
      assert.match(pair, /^sid=s%3A[\w-]{32}\.[\w%]+$/);
      const id = idOf(pair);
      assert.equal(decodeURIComponent(pair.slice(4)), signed(id, SECRET));
      const expires = attributes.find((attribute) => attribute.startsWith('Expires='));
      assert.deepStrictEqual(
        attributes.filter((attribute) => attribute !== expires),
        ['Domain=example.com', 'Path=/', 'HttpOnly', 'Partitioned', 'Priority=High', 'SameSite=Strict'],
      );
      const lifetime = Date.parse((expires as string).slice(8)) - Date.now();
      assert.ok(lifetime > 55_000 && lifetime <= 60_000, `Expires ${lifetime} ms ahead`);
      // Stored as express-session stores it: the data, and the cookie as its bookkeeping.
      const stored = await row(id);
      assert.equal(stored?.data?.['user'], true);
      const storedCookie = (stored?.data?.['cookie'] ?? {}) as { originalMaxAge?: number };
      assert.deepStrictEqual(Object.keys(storedCookie).sort(), [
        'domain',
        'expires',
        'httpOnly',
        'originalMaxAge',
        'partitioned',
        'path',
        'priority',
        'sameSite',
      ]);
      assert.equal(storedCookie.originalMaxAge, 60_000);
    });

    test('secure cookies: set over HTTPS only (proxy trusts X-Forwarded-Proto); "auto" follows the request', async () => {
      const secure = await start({ proxy: true, cookie: { maxAge: 60_000, secure: true } });
      const plain = await call(secure, '/set/a', { method: 'POST' });
      assert.deepStrictEqual(plain.setCookies, [], 'no Secure cookie on plain HTTP');
      const https = await call(secure, '/set/a', { method: 'POST', headers: { 'x-forwarded-proto': 'https' } });
      assert.match(https.setCookies[0] ?? '', /; Secure/);
      const untrusted = await start({ proxy: false, cookie: { maxAge: 60_000, secure: 'auto', sameSite: 'auto' } });
      const ignored = await call(untrusted, '/set/a', { method: 'POST', headers: { 'x-forwarded-proto': 'https' } });
      assert.doesNotMatch(ignored.setCookies[0] ?? '', /; Secure/);
      assert.match(ignored.setCookies[0] ?? '', /; SameSite=Lax/);
      const auto = await start({ proxy: true, cookie: { maxAge: 60_000, secure: 'auto', sameSite: 'auto' } });
      const trusted = await call(auto, '/set/a', { method: 'POST', headers: { 'x-forwarded-proto': 'https' } });
      assert.match(trusted.setCookies[0] ?? '', /; Secure; SameSite=None$/);
    });

    test('a cookie as a function of the request, and a path outside the cookie: no session there', async () => {
      const base = await start({ cookie: (req) => ({ maxAge: req.headers['x-short'] === '1' ? 5_000 : 60_000, path: '/set' }) });
      const short = await call(base, '/set/a', { method: 'POST', headers: { 'x-short': '1' } });
      const lifetime = Date.parse(/Expires=([^;]+)/.exec(short.setCookies[0] ?? '')?.[1] ?? '') - Date.now();
      assert.ok(lifetime > 0 && lifetime <= 5_000, `Expires ${lifetime} ms ahead`);
      assert.match(short.setCookies[0] ?? '', /; Path=\/set;/);
      const outside = await call(base, '/read', { cookie: short.cookie });
      assert.equal(outside.status, 500, 'no req.session outside the cookie path (the route then fails, as with express-session)');
    });

    test('saveUninitialized: false stores nothing and sends no cookie for an untouched session; true does', async () => {
      const lazy = await start();
      const untouched = await call(lazy, '/read');
      assert.deepStrictEqual(untouched.setCookies, []);
      assert.equal(await row((untouched.body as { id: string }).id), undefined);
      const eager = await start({ saveUninitialized: true });
      const stored = await call(eager, '/read');
      assert.equal(stored.setCookies.length, 1);
      assert.equal(idOf(stored.cookie), (stored.body as { id: string }).id);
      assert.ok(await row((stored.body as { id: string }).id));
    });

    test('the cookie is sent again when the session changed (its expiry moves), not for a read; rolling sends it always', async () => {
      const base = await start();
      const { cookie } = await call(base, '/set/a', { method: 'POST' });
      assert.deepStrictEqual((await call(base, '/read', { cookie })).setCookies, []);
      const changed = await call(base, '/set/b', { method: 'POST', cookie });
      assert.equal(changed.cookie, cookie, 'the same id, its expiry moved');
      const rolling = await start({ rolling: true });
      const first = await call(rolling, '/set/a', { method: 'POST' });
      const read = await call(rolling, '/read', { cookie: first.cookie });
      assert.equal(read.cookie, first.cookie);
      assert.equal((read.body as { maxAge: number }).maxAge > 59_000, true);
    });

    test('a response whose headers go out before its end (a streamed body) still gets its cookie, and the session is stored', async () => {
      const base = await start();
      const answer = await call(base, '/stream');
      assert.equal(answer.body, 'part one, part two');
      const stored = await row(idOf(answer.cookie));
      assert.equal(stored?.data?.['streamed'], true);
    });

    test('regenerate: a new id with nothing of the old session, the old one deleted; destroy deletes it', async () => {
      const base = await start();
      const { cookie } = await call(base, '/set/a', { method: 'POST' });
      const oldId = idOf(cookie);
      const regenerated = await call(base, '/regenerate', { method: 'POST', cookie });
      const { before: was, after: now } = regenerated.body as { before: string; after: string };
      assert.equal(was, oldId);
      assert.notEqual(now, oldId);
      assert.equal(idOf(regenerated.cookie), now);
      assert.equal(await row(oldId), undefined);
      assert.deepStrictEqual((await row(now))?.data?.['fresh'], true);
      assert.equal((await row(now))?.data?.['a'], undefined);
      const destroyed = await call(base, '/destroy', { method: 'POST', cookie: regenerated.cookie });
      assert.deepStrictEqual(destroyed.body, { session: 'undefined' });
      assert.deepStrictEqual(destroyed.setCookies, []);
      assert.equal(await row(now), undefined);
    });

    test('the id header (header option): a new session sends its id in both; a header request is answered in the header alone; 20 parallel changes kept', async () => {
      const base = await start({ header: 'X-Session-Id' });
      const send = (path: string, headers: Record<string, string> = {}) => fetch(base + path, { method: 'POST', headers });
      const first = await send('/set/a');
      const id = first.headers.get('x-session-id') ?? '';
      assert.equal(decodeURIComponent((first.headers.getSetCookie()[0] ?? '').split(';')[0]?.split('=')[1] ?? ''), id);
      const sid = idOf(`x=${id}`);
      assert.equal(id, signed(sid, SECRET));

      const parallel = await Promise.all(Array.from({ length: 20 }, (_, i) => send(`/set/k${i}`, { 'x-session-id': id })));
      for (const response of parallel) {
        assert.equal(response.status, 200);
        assert.deepStrictEqual(response.headers.getSetCookie(), []);
        assert.equal(response.headers.get('x-session-id'), null);
      }
      const data = (await row(sid))?.data ?? {};
      assert.deepStrictEqual(Object.keys(data).filter((key) => key.startsWith('k')).length, 20);
      assert.equal(data['a'], true);

      // A cookie beside the header is not looked at; a forged header names no session and is answered in the header.
      const other = await call(base, '/set/other', { method: 'POST' });
      const both = (await (await fetch(`${base}/read`, { headers: { 'x-session-id': id, cookie: other.cookie ?? '' } })).json()) as { id: string };
      assert.equal(both.id, sid);
      const forged = await send('/set/visitor', { 'x-session-id': signed(sid, 'another secret') });
      const forgedId = forged.headers.get('x-session-id') ?? '';
      assert.ok(forgedId.startsWith('s:') && forgedId !== id, forgedId);
      assert.deepStrictEqual(forged.headers.getSetCookie(), []);
      assert.equal((await row(sid))?.data?.['visitor'], undefined);

      // Regenerated through the header: the new id comes back in the header.
      const regenerated = await send('/regenerate', { 'x-session-id': id });
      const renewed = regenerated.headers.get('x-session-id') ?? '';
      assert.deepStrictEqual(regenerated.headers.getSetCookie(), []);
      assert.equal(idOf(`x=${renewed}`), ((await regenerated.json()) as { after: string }).after);
      assert.equal(await row(sid), undefined);
    });

    test('unset: "destroy" deletes the session when req.session is set to null; "keep" keeps it', async () => {
      for (const unset of ['destroy', 'keep'] as const) {
        const base = await start({ unset });
        const { cookie } = await call(base, '/set/a', { method: 'POST' });
        await call(base, '/unset', { method: 'POST', cookie });
        assert.equal((await row(idOf(cookie))) === undefined, unset === 'destroy', unset);
      }
    });

    test('save() writes at once, reload() reads what another request stored meanwhile; the end of the request writes only the delta', async () => {
      const base = await start({}, (app) => {
        app.post('/save-then-reload', (req, res, next) => {
          req.session['saved'] = 'early';
          req.session.save((error) => {
            if (error) return next(error);
            const store = (req.sessionStore as unknown as SmartSessionStore).store;
            // Another request changes the stored session meanwhile, through the store.
            store.open(req.sessionID).then(async (other) => {
              assert.ok(other);
              assert.equal(other.data['saved'], 'early', 'save() wrote before answering');
              other.data['meanwhile'] = 1;
              await other.commit();
              req.session['dropped by the reload'] = true;
              req.session.reload((failure) => {
                if (failure) return next(failure);
                req.session['after'] = 'reload';
                res.json({ meanwhile: req.session['meanwhile'], dropped: req.session['dropped by the reload'] ?? null });
              });
            }, next);
          });
        });
      });
      const { cookie } = await call(base, '/set/a', { method: 'POST' });
      const answer = await call(base, '/save-then-reload', { method: 'POST', cookie });
      assert.deepStrictEqual(answer.body, { meanwhile: 1, dropped: null });
      const stored = await row(idOf(cookie));
      assert.deepStrictEqual({ ...stored?.data, cookie: undefined }, { cookie: undefined, a: true, saved: 'early', meanwhile: 1, after: 'reload' });
    });

    test('secret rotation: the first secret signs, every one verifies, and an older secret’s cookie is signed again with the first', async () => {
      const before = await start({ secret: 'old secret' });
      const { cookie } = await call(before, '/set/user', { method: 'POST', json: { value: 'ann' } });
      const rotated = await start({ secret: ['new secret', 'old secret'] });
      const read = await call(rotated, '/read', { cookie });
      assert.equal((read.body as { data: { user: string } }).data.user, 'ann');
      assert.equal(decodeURIComponent((read.cookie ?? '').slice('connect.sid='.length)), signed(idOf(cookie), 'new secret'));
      const after = await start({ secret: 'new secret' });
      assert.equal(((await call(after, '/read', { cookie: read.cookie })).body as { data: { user: string } }).data.user, 'ann');
      const forgotten = await call(after, '/read', { cookie });
      assert.notEqual((forgotten.body as { id: string }).id, idOf(cookie), 'a cookie of a secret no longer listed names no session');
    });

    test('malformed and forged cookies give a new session, never an error nor another session', async () => {
      const base = await start();
      const { cookie } = await call(base, '/set/user', { method: 'POST', json: { value: 'ann' } });
      const id = idOf(cookie);
      for (const value of [
        'garbage',
        's:',
        's:.',
        `s:${id}`,
        `s:${id}.`,
        encodeURIComponent(signed(id, 'another secret')),
        encodeURIComponent(`${signed(id, SECRET)}x`),
        '%E0%A4%A',
        encodeURIComponent(signed('x'.repeat(300), SECRET)),
        encodeURIComponent(signed('bad\u0001id', SECRET)),
        encodeURIComponent(signed(id, SECRET)).toLowerCase(),
      ]) {
        const answer = await call(base, '/read', { cookie: `connect.sid=${value}` });
        assert.equal(answer.status, 200, value);
        const { id: given, data } = answer.body as { id: string; data: Record<string, unknown> };
        assert.notEqual(given, id, value);
        assert.equal(data['user'], undefined, value);
      }
      // The genuine cookie still works, and so does one among others.
      const genuine = await call(base, '/read', { cookie: `other=1; connect.sid=garbage; ${cookie}` });
      assert.equal((genuine.body as { data: { user: string } }).data.user, 'ann');
    });

    test('console.log(req.session) shows the stored values, not getters, and reading them changes nothing', async () => {
      const base = await start();
      const first = await call(base, '/set/profile', { method: 'POST', json: { value: { user: { name: 'Ann', tags: ['a'] } } } });
      const shown = await call(base, '/inspect', { cookie: first.cookie });
      assert.match(String(shown.body), /name: 'Ann'/);
      assert.match(String(shown.body), /tags: \[ 'a' \]/);
      assert.doesNotMatch(String(shown.body), /Getter|Setter/);
      assert.deepStrictEqual(shown.setCookies, []);
      const read = (await call(base, '/read', { cookie: first.cookie })).body as { id: string; data: unknown };
      assert.equal(read.id, idOf(first.cookie));
      assert.deepStrictEqual(read.data, { profile: { user: { name: 'Ann', tags: ['a'] } } });
    });

    test('a value the store refuses reaches the error handler before anything is sent: no cookie, nothing stored', async () => {
      const base = await start();
      const answer = await call(base, '/map', { method: 'POST' });
      assert.equal(answer.status, 400);
      assert.equal((answer.body as { error: string }).error, 'ERR_VALUE_NOT_STORABLE');
      assert.deepStrictEqual(answer.setCookies, []);
      // The app still serves.
      assert.equal((await call(base, '/set/a', { method: 'POST' })).status, 200);
    });

    test('sessions move between express-session (with SmartSessionStore) and the middleware, both ways, users staying logged in', async () => {
      const store = new SmartSessionStore({ url: backend.url, table });
      stores.push(store);
      const classic = express();
      classic.use(expressSession({ secret: SECRET, resave: false, saveUninitialized: false, store, cookie: { maxAge: 60_000 } }));
      const classicServer = await listen(createServer(routes(classic)));
      servers.push(classicServer);
      const ours = await start();
      // Made by express-session, read and changed by the middleware, read again by express-session.
      const made = await call(classicServer.base, '/set/user', { method: 'POST', json: { value: 'ann' } });
      const read = await call(ours, '/read', { cookie: made.cookie });
      assert.equal((read.body as { id: string }).id, idOf(made.cookie));
      assert.equal((read.body as { data: { user: string } }).data.user, 'ann');
      assert.ok(((read.body as { maxAge: number }).maxAge ?? 0) > 50_000, 'the cookie’s maxAge carries over');
      await call(ours, '/set/cart', { method: 'POST', cookie: made.cookie, json: { value: ['apple'] } });
      const back = await call(classicServer.base, '/read', { cookie: made.cookie });
      assert.deepStrictEqual({ ...(back.body as { data: object }).data }, { user: 'ann', cart: ['apple'] });
      // Made by the middleware, read by express-session.
      const mine = await call(ours, '/set/user', { method: 'POST', json: { value: 'bob' } });
      const theirs = await call(classicServer.base, '/read', { cookie: mine.cookie });
      assert.equal((theirs.body as { id: string }).id, idOf(mine.cookie));
      assert.equal((theirs.body as { data: { user: string } }).data.user, 'bob');
    });

    test('passport: req.login regenerates and saves the session, req.logout ends it, through passport-local', async () => {
      const base = await start();
      // passport on a second app over the same table: its own strategy and routes.
      const authenticator = new passport.Passport();
      authenticator.use(
        new LocalStrategy((username, password, done) =>
          password === 'secret' ? done(null, { name: username }) : done(null, false, { message: 'wrong password' }),
        ),
      );
      authenticator.serializeUser((user, done) => done(null, user.name));
      authenticator.deserializeUser((name: string, done) => done(null, { name }));
      const middleware = session({ url: backend.url, table, secret: SECRET, cookie: { maxAge: 60_000 } });
      stores.push(middleware.store);
      const app = express();
      app.use(express.json(), middleware, authenticator.session());
      app.post('/login', authenticator.authenticate('local', { failWithError: true }), (req, res) => res.json({ user: req.user?.name, id: req.sessionID }));
      app.get('/me', (req, res) => res.json({ user: req.user?.name ?? null, id: req.sessionID }));
      app.post('/logout', (req, res, next) => req.logout((error) => (error ? next(error) : res.json({ user: req.user?.name ?? null }))));
      app.use((error: unknown, _req: express.Request, res: express.Response, _next: express.NextFunction) => {
        res.status((error as { status?: number }).status ?? 500).json({ error: String(error) });
      });
      const server = await listen(createServer(app));
      servers.push(server);
      assert.ok(base);
      // A visitor with a session before logging in: login must give it a new id (no session fixation).
      const visitor = await call(base, '/set/cart', { method: 'POST', json: { value: ['apple'] } });
      const refused = await call(server.base, '/login', { method: 'POST', cookie: visitor.cookie, json: { username: 'ann', password: 'nope' } });
      assert.equal(refused.status, 401);
      const login = await call(server.base, '/login', { method: 'POST', cookie: visitor.cookie, json: { username: 'ann', password: 'secret' } });
      assert.equal(login.status, 200);
      assert.equal((login.body as { user: string }).user, 'ann');
      assert.notEqual(idOf(login.cookie), idOf(visitor.cookie));
      assert.equal(await row(idOf(visitor.cookie)), undefined, 'the session from before the login is gone');
      assert.deepStrictEqual((await row(idOf(login.cookie)))?.data?.['passport'], { user: 'ann' });
      assert.equal(((await call(server.base, '/me', { cookie: login.cookie })).body as { user: string }).user, 'ann');
      // Logged in on a second tab: both stay logged in while requests overlap.
      const overlapping = await Promise.all(Array.from({ length: 10 }, () => call(server.base, '/me', { cookie: login.cookie })));
      assert.ok(overlapping.every((answer) => (answer.body as { user: string }).user === 'ann'));
      const logout = await call(server.base, '/logout', { method: 'POST', cookie: login.cookie });
      assert.deepStrictEqual(logout.body, { user: null });
      assert.equal(await row(idOf(login.cookie)), undefined, 'logout regenerated the session: the logged-in one is gone');
      const after = await call(server.base, '/me', { cookie: login.cookie });
      assert.equal((after.body as { user: string | null }).user, null);
      assert.notEqual((after.body as { id: string }).id, idOf(login.cookie));
    });

    test('options are checked when the middleware is made', () => {
      const base = { url: backend.url, table, secret: SECRET };
      const refused = (options: object, option: string) =>
        assert.throws(
          () => session({ ...base, ...options } as SessionOptions),
          (error: unknown) => error instanceof SessionStoreError && error.code === 'ERR_INVALID_OPTION' && error.message.includes(`"${option}"`),
        );
      refused({ secret: undefined }, 'secret');
      refused({ secret: [] }, 'secret');
      refused({ unset: 'bogus' }, 'unset');
      refused({ genid: 42 }, 'genid');
      refused({ name: 'a b' }, 'name');
      refused({ cookie: { maxAge: '1 day' } }, 'cookie.maxAge');
      refused({ cookie: { sameSite: 'sometimes' } }, 'cookie.sameSite');
      refused({ store: { url: backend.url } }, 'store');
      refused({ tabel: 'x' }, 'tabel');
      refused({ header: 'set-cookie' }, 'header');
      refused({ header: 'x y' }, 'header');
    });
  });
}

describe('a database that cannot be reached', () => {
  test('a store error goes to the error handler (new visitors and returning ones alike); the process serves on', async () => {
    const middleware = session({ url: 'postgres://postgres@127.0.0.1:1/nothing', secret: SECRET, connectTimeout: 1 });
    const app = express();
    app.use(middleware);
    const server = await listen(createServer(routes(app)));
    try {
      // A visitor without a cookie is only a write at the end, which fails before anything is sent.
      const write = await call(server.base, '/set/a', { method: 'POST' });
      assert.equal(write.status, 500);
      assert.match((write.body as { error: string }).error, /^ERR_(UNAVAILABLE|DATABASE)$/);
      assert.deepStrictEqual(write.setCookies, []);
      // A returning visitor's session cannot be loaded: next(error).
      const read = await call(server.base, '/read', { cookie: `connect.sid=${encodeURIComponent(signed('x'.repeat(32), SECRET))}` });
      assert.equal(read.status, 500);
      assert.equal((read.body as { error: string }).error, 'ERR_UNAVAILABLE');
      // A read-only new visitor needs no database at all.
      assert.equal((await call(server.base, '/read')).status, 200);
    } finally {
      await server.close();
      await middleware.store.close();
    }
  });
});

describe('without express-session installed', () => {
  test('session() of smart-session-store/express works (ESM and CommonJS builds); SmartSessionStore says what is missing when express-session calls it', () => {
    const hook = join(root, 'test/support/without-express-session.mjs');
    const script = `
      import { createRequire } from 'node:module';
      import express from 'express';
      const require = createRequire(import.meta.url);
      assert(() => require('express-session'), /Cannot find module 'express-session'/);
      const esm = await import(${JSON.stringify(join(root, 'dist/esm/adapters/express.js'))});
      const cjs = require(${JSON.stringify(join(root, 'dist/cjs/adapters/express.js'))});
      for (const { session, SmartSessionStore } of [esm, cjs]) {
        const middleware = session({ url: 'sqlite::memory:', createTable: true, secret: 's' });
        const app = express().use(middleware).post('/', (req, res) => { req.session.n = (req.session.n ?? 0) + 1; res.json(req.session.n); });
        const server = app.listen(0, '127.0.0.1');
        await new Promise((resolve) => server.once('listening', resolve));
        const base = 'http://127.0.0.1:' + server.address().port;
        const first = await fetch(base, { method: 'POST' });
        const cookie = first.headers.getSetCookie()[0].split(';')[0];
        const second = await fetch(base, { method: 'POST', headers: { cookie } });
        if ((await second.json()) !== 2) throw new Error('the session was not kept');
        server.close();
        await middleware.store.close();
        const store = new SmartSessionStore({ url: 'sqlite::memory:' });
        assert(() => store.createSession({}, {}), /express-session is not installed/);
        await store.close();
      }
      console.log('ok');
      function assert(run, pattern) {
        try { run(); } catch (error) { if (pattern.test(error.message)) return; throw error; }
        throw new Error('expected ' + pattern);
      }
    `;
    const result = spawnSync(process.execPath, ['--import', hook, '--input-type=module', '-e', script], { cwd: root, encoding: 'utf8' });
    assert.equal(result.status, 0, result.stderr);
    assert.equal(result.stdout.trim(), 'ok');
  });
});
