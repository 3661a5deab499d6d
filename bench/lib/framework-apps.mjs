/**
 * The apps of the frameworks section: one small app per framework and
 * session layer, every one with the same three routes:
 *
 *   GET  /init?i=   puts a profile of about `bytes` bytes in a new session, answers its cookie(s)
 *   GET  /read      reads one key of the session, changes nothing (404 if there is no session)
 *   POST /write     changes one small key (`hits`) (404 if there is no session)
 *
 * Variants per framework (`none` is the ceiling: the same app with no session
 * layer, the session an object in a Map, found by the cookie read from the
 * header):
 *
 *   express  ours: session() of smart-session-store/express; compat: express-session with SmartSessionStore;
 *            peer: express-session with the backend's peer store; none
 *   fastify  ours: the smartSession plugin of smart-session-store/fastify; peer: @fastify/session (+ @fastify/cookie)
 *            with the peer store; none
 *   koa      ours: smartSession(options, app) of smart-session-store/koa; compat: koa-session with SmartSessionStore
 *            (its external store); peer: koa-session with the peer store behind a minimal wrapper; none
 *   hono     ours: HonoSessionStore of smart-session-store/hono; peer: @hono/session with the peer store behind a
 *            minimal wrapper (its useSessionStorage); none
 */
import { randomUUID } from 'node:crypto';
import { rmSync } from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import fastifyCookie from '@fastify/cookie';
import fastifySession from '@fastify/session';
import { serve } from '@hono/node-server';
import { useSession as honoUseSession, useSessionStorage as honoUseSessionStorage } from '@hono/session';
import betterSqlite3SessionStore from 'better-sqlite3-session-store';
import connectPgSimple from 'connect-pg-simple';
import { RedisStore } from 'connect-redis';
import express from 'express';
import expressMysqlSession from 'express-mysql-session';
import expressSession from 'express-session';
import Fastify from 'fastify';
import { Hono } from 'hono';
import Koa from 'koa';
import koaSession from 'koa-session';
import { createClient } from 'redis';
import { SmartSessionStore as SmartExpressStore, session as smartExpressSession } from 'smart-session-store/express';
import { SmartSessionStore as SmartFastifyStore, smartSession as smartFastifySession } from 'smart-session-store/fastify';
import { HonoSessionStore } from 'smart-session-store/hono';
import { SmartSessionStore as SmartKoaStore, smartSession as smartKoaSession } from 'smart-session-store/koa';
import { makeProfile } from './app.mjs';
import { countRedisClient, counts } from './counters.mjs';
import { drivers } from './drivers.mjs';
import { createPgSimpleTable, FRAMEWORK_TABLES, PEER_OF, POOL_SIZE, REDIS_PREFIX, smartOptions } from './stores.mjs';

export const FRAMEWORK_COOKIE = 'bench.sid';
const SECRET = 'smart-session-store benchmark secret, 32 characters or more';
const DAY_MS = 24 * 3600 * 1000;

/** The variants of each framework, in the order the report lists them. */
export const FRAMEWORK_VARIANTS = {
  express: ['ours', 'compat', 'peer', 'none'],
  fastify: ['ours', 'peer', 'none'],
  koa: ['ours', 'compat', 'peer', 'none'],
  hono: ['ours', 'peer', 'none'],
};

export const FRAMEWORK_LABEL = { express: 'express', fastify: 'Fastify', koa: 'Koa', hono: 'Hono' };

/** What a variant is, in words (the peer's name filled in per backend). */
export function variantLabel(framework, variant, backend) {
  const peer = backend === null || backend === undefined ? 'the peer store' : PEER_OF[backend];
  const labels = {
    express: {
      ours: 'smart-session-store session()',
      compat: 'express-session + SmartSessionStore',
      peer: `express-session + ${peer}`,
      none: 'express, no session layer',
    },
    fastify: {
      ours: 'smart-session-store plugin',
      peer: `@fastify/session + ${peer}`,
      none: 'Fastify, no session layer',
    },
    koa: {
      ours: 'smart-session-store smartSession()',
      compat: 'koa-session + SmartSessionStore',
      peer: `koa-session + ${peer} (wrapped)`,
      none: 'Koa, no session layer',
    },
    hono: {
      ours: 'smart-session-store HonoSessionStore',
      peer: `@hono/session + ${peer} (wrapped)`,
      none: 'Hono, no session layer',
    },
  };
  return labels[framework][variant];
}

const callback = (fn) => new Promise((resolve, reject) => fn((error, value) => (error ? reject(error) : resolve(value))));

function mysqlOptions(url) {
  const u = new URL(url);
  return {
    host: u.hostname,
    port: Number(u.port || 3306),
    user: decodeURIComponent(u.username),
    password: decodeURIComponent(u.password),
    database: u.pathname.replace(/^\//, ''),
  };
}

/**
 * The peer store of `backend` (an express-session Store: @fastify/session takes
 * the same stores), built as stores.mjs builds it for the other sections, on
 * the frameworks section's own table, file or key prefix. `tag` names the
 * SQLite file. Resolves to { store, close } (close empties what it stored).
 */
async function openPeer(ctx, backend, tag) {
  const { urls } = ctx.config;
  switch (backend) {
    case 'postgres': {
      const PGStore = connectPgSimple(expressSession);
      const pool = new drivers.bench.pg.Pool({ connectionString: urls.postgres, max: POOL_SIZE });
      pool.on('error', () => undefined);
      await createPgSimpleTable(pool, FRAMEWORK_TABLES.postgres);
      const store = new PGStore({ pool, tableName: FRAMEWORK_TABLES.postgres, createTableIfMissing: true, pruneSessionInterval: false });
      await callback((cb) => store.get('bench-warm-up', cb)); // creates the table
      return {
        store,
        close: async () => {
          await store.close();
          await pool.end();
        },
      };
    }
    case 'mysql': {
      const MySQLStore = expressMysqlSession(expressSession);
      const store = new MySQLStore({
        ...mysqlOptions(urls.mysql),
        connectionLimit: POOL_SIZE,
        clearExpired: false,
        createDatabaseTable: true,
        schema: { tableName: FRAMEWORK_TABLES.mysql },
      });
      await store.onReady();
      return { store, close: () => store.close() };
    }
    case 'sqlite': {
      const SqliteStore = betterSqlite3SessionStore(expressSession);
      const file = path.join(ctx.sqliteDir, `fw-peer-${tag}.db`);
      const db = new drivers.bench.Database(file);
      db.pragma('journal_mode = WAL');
      db.pragma('busy_timeout = 5000');
      const store = new SqliteStore({ client: db, expired: { clear: true, intervalMs: 2 ** 31 - 1 } });
      return {
        store,
        close: async () => {
          db.close();
          for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
        },
      };
    }
    case 'redis': {
      const client = createClient({ url: urls.redis });
      client.on('error', () => undefined);
      await client.connect();
      countRedisClient(client);
      const store = new RedisStore({ client, prefix: `${REDIS_PREFIX}fw:` });
      await callback((cb) => store.clear(cb));
      return {
        store,
        close: async () => {
          await callback((cb) => store.clear(cb));
          await (typeof client.close === 'function' ? client.close() : client.quit());
        },
      };
    }
    default:
      throw new Error(`no peer store for ${backend}`);
  }
}

/**
 * smart-session-store's options for `backend`, on the frameworks section's
 * table `table` (its own SQLite file per `tag`), in the backend's default
 * locking mode; a node-redis client (the bench's copy, its commands counted)
 * on Redis. Resolves to { options, release } (release closes that client).
 */
async function smartStoreOptions(ctx, backend, table, tag) {
  if (backend === 'redis') {
    const client = createClient({ url: ctx.config.urls.redis });
    client.on('error', () => undefined);
    await client.connect();
    const send = client.sendCommand.bind(client);
    client.sendCommand = (...args) => {
      counts.redis++;
      return send(...args);
    };
    return { options: smartOptions({ connection: client, table }), release: () => client.close() };
  }
  if (backend === 'sqlite') {
    const file = path.join(ctx.sqliteDir, `fw-smart-${tag}.db`);
    return {
      options: smartOptions({ url: `sqlite:${file}`, table }),
      release: async () => {
        for (const suffix of ['', '-wal', '-shm']) rmSync(`${file}${suffix}`, { force: true });
      },
    };
  }
  return { options: smartOptions({ url: ctx.config.urls[backend], table }), release: async () => undefined };
}

/** Opens a smart-session-store adapter store (`Store` one of the adapters' classes), its table created and emptied. */
async function openSmart(ctx, Store, backend, table, tag, extra = {}) {
  const { options, release } = await smartStoreOptions(ctx, backend, table, tag);
  const store = new Store({ ...options, ...extra });
  await store.createTable();
  await store.store.clear();
  return {
    store,
    close: async () => {
      await store.store.clear().catch(() => undefined);
      await store.close();
      await release();
    },
  };
}

/** The ceiling's "session layer": the cookie read from the header, the session an object in a Map. */
function ceiling() {
  const sessions = new Map();
  const pattern = new RegExp(`(?:^|;\\s*)${FRAMEWORK_COOKIE.replace('.', '\\.')}=([^;]+)`);
  return {
    /** The session of `cookieHeader`, or a new one (whose cookie `setCookie` is given). */
    open(cookieHeader, setCookie) {
      const id = cookieHeader === undefined ? undefined : pattern.exec(cookieHeader)?.[1];
      const found = id === undefined ? undefined : sessions.get(id);
      if (found !== undefined) return found;
      const fresh = {};
      const newId = randomUUID();
      sessions.set(newId, fresh);
      setCookie(`${FRAMEWORK_COOKIE}=${newId}; Path=/; HttpOnly`);
      return fresh;
    },
  };
}

/**
 * koa-session's external store (`get`, `set`, `destroy`, promises) over a
 * connect-style peer store (callbacks): nothing more. koa-session's session
 * carries its own expiry (`_expire`); the peer keeps the row its default
 * lifetime (one day, as the cookie's `maxAge`).
 */
function koaStoreOver(peer) {
  return {
    get: (key) => callback((cb) => peer.get(key, cb)),
    set: (key, sess) => callback((cb) => peer.set(key, sess, cb)),
    destroy: (key) => callback((cb) => peer.destroy(key, cb)),
  };
}

/**
 * @hono/session's storage (`get`, `set`, `delete`) over a connect-style peer
 * store. @hono/session does not await `set` (the response leaves before the
 * write): so that a writing request's change is there for the next request of
 * that session, and writes cannot pile up behind the responses, `get` waits
 * for the session's write in flight first.
 */
function honoStorageOver(peer, stats) {
  const pending = new Map();
  return {
    async get(sid) {
      const inFlight = pending.get(sid);
      if (inFlight !== undefined) await inFlight;
      return (await callback((cb) => peer.get(sid, cb))) ?? null;
    },
    set(sid, value) {
      const write = callback((cb) => peer.set(sid, value, cb))
        .catch((error) => {
          stats.errors++;
          stats.firstError ??= String(error?.message ?? error);
        })
        .finally(() => {
          if (pending.get(sid) === write) pending.delete(sid);
        });
      pending.set(sid, write);
    },
    delete(sid) {
      peer.destroy(sid, () => undefined);
    },
  };
}

async function listen(handler) {
  const server = http.createServer({ keepAliveTimeout: 30_000 }, handler);
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function closeServer(server) {
  const closed = new Promise((resolve) => server.close(() => resolve()));
  server.closeAllConnections?.();
  await closed;
}

function newStats() {
  return { missing: 0, errors: 0, firstError: undefined };
}

function noteError(stats, error) {
  stats.errors++;
  stats.firstError ??= String(error?.message ?? error);
}

// ---- express ------------------------------------------------------------------------------------------------------

function startExpress(layer, bytes, stats) {
  const app = express();
  app.disable('x-powered-by');
  app.disable('etag');
  app.use(layer);
  app.get('/init', (req, res) => {
    req.session.profile = makeProfile(Number(req.query.i ?? 0), bytes);
    res.type('text').send('ok');
  });
  app.get('/read', (req, res) => {
    const profile = req.session.profile;
    if (profile === undefined) {
      stats.missing++;
      res.status(404).type('text').send('no session');
      return;
    }
    res.type('text').send(profile.user.name);
  });
  app.post('/write', (req, res) => {
    if (req.session.profile === undefined) {
      stats.missing++;
      res.status(404).type('text').send('no session');
      return;
    }
    req.session.hits = (req.session.hits ?? 0) + 1;
    res.type('text').send('ok');
  });
  app.use((error, _req, res, _next) => {
    noteError(stats, error);
    if (res.headersSent) res.end();
    else
      res
        .status(500)
        .type('text')
        .send(String(error?.message ?? error));
  });
  return listen(app);
}

async function expressVariant(ctx, variant, backend, bytes, tag, stats) {
  const expressSessionOptions = { name: FRAMEWORK_COOKIE, secret: SECRET, resave: false, saveUninitialized: false, cookie: { maxAge: DAY_MS } };
  if (variant === 'none') {
    const layer = ceiling();
    const server = await startExpress(
      (req, res, next) => {
        req.session = layer.open(req.headers.cookie, (cookie) => res.setHeader('set-cookie', cookie));
        next();
      },
      bytes,
      stats,
    );
    return { server, close: async () => undefined };
  }
  if (variant === 'peer') {
    const peer = await openPeer(ctx, backend, tag);
    const server = await startExpress(expressSession({ ...expressSessionOptions, store: peer.store }), bytes, stats);
    return { server, close: peer.close };
  }
  const smart = await openSmart(ctx, SmartExpressStore, backend, FRAMEWORK_TABLES[variant], tag);
  const layer =
    variant === 'ours'
      ? smartExpressSession({ ...expressSessionOptions, store: smart.store })
      : expressSession({ ...expressSessionOptions, store: smart.store });
  const server = await startExpress(layer, bytes, stats);
  return { server, close: smart.close, mode: smart.store.lockingMode?.() ?? null };
}

// ---- Fastify ------------------------------------------------------------------------------------------------------

async function fastifyVariant(ctx, variant, backend, bytes, tag, stats) {
  const app = Fastify({ logger: false });
  const options = {
    secret: SECRET,
    cookieName: FRAMEWORK_COOKIE,
    cookie: { maxAge: DAY_MS, secure: false },
    saveUninitialized: false,
    rolling: ctx.config.frameworks.fastifyRolling,
  };
  let close = async () => undefined;
  let mode = null;
  if (variant === 'none') {
    const layer = ceiling();
    app.decorateRequest('session', null);
    app.addHook('onRequest', (request, reply, done) => {
      request.session = layer.open(request.headers.cookie, (cookie) => reply.header('set-cookie', cookie));
      done();
    });
  } else if (variant === 'peer') {
    const peer = await openPeer(ctx, backend, tag);
    close = peer.close;
    await app.register(fastifyCookie);
    await app.register(fastifySession, { ...options, store: peer.store });
  } else {
    const smart = await openSmart(ctx, SmartFastifyStore, backend, FRAMEWORK_TABLES.ours, tag);
    close = smart.close;
    mode = smart.store.lockingMode?.() ?? null;
    await app.register(smartFastifySession, { ...options, store: smart.store });
  }
  app.get('/init', (request, reply) => {
    request.session.profile = makeProfile(Number(request.query.i ?? 0), bytes);
    reply.type('text/plain').send('ok');
  });
  app.get('/read', (request, reply) => {
    const profile = request.session.profile;
    if (profile === undefined || profile === null) {
      stats.missing++;
      reply.code(404).type('text/plain').send('no session');
      return;
    }
    reply.type('text/plain').send(profile.user.name);
  });
  app.post('/write', (request, reply) => {
    const profile = request.session.profile;
    if (profile === undefined || profile === null) {
      stats.missing++;
      reply.code(404).type('text/plain').send('no session');
      return;
    }
    request.session.hits = (request.session.hits ?? 0) + 1;
    reply.type('text/plain').send('ok');
  });
  app.setErrorHandler((error, _request, reply) => {
    noteError(stats, error);
    reply
      .code(500)
      .type('text/plain')
      .send(String(error?.message ?? error));
  });
  await app.listen({ port: 0, host: '127.0.0.1' });
  return {
    server: app.server,
    close: async () => {
      await app.close();
      await close();
    },
    closesServer: true,
    mode,
  };
}

// ---- Koa ----------------------------------------------------------------------------------------------------------

async function koaVariant(ctx, variant, backend, bytes, tag, stats) {
  const app = new Koa();
  app.keys = [SECRET];
  app.silent = true;
  app.on('error', (error) => noteError(stats, error));
  const options = { key: FRAMEWORK_COOKIE, maxAge: DAY_MS };
  let close = async () => undefined;
  let mode = null;
  if (variant === 'none') {
    const layer = ceiling();
    app.use((koaCtx, next) => {
      koaCtx.session = layer.open(koaCtx.get('cookie') || undefined, (cookie) => koaCtx.set('set-cookie', cookie));
      return next();
    });
  } else if (variant === 'peer') {
    const peer = await openPeer(ctx, backend, tag);
    close = peer.close;
    app.use(koaSession({ ...options, store: koaStoreOver(peer.store) }, app));
  } else {
    const smart = await openSmart(ctx, SmartKoaStore, backend, FRAMEWORK_TABLES[variant], tag);
    close = smart.close;
    mode = smart.store.lockingMode?.() ?? null;
    app.use(variant === 'ours' ? smartKoaSession({ ...options, store: smart.store }, app) : koaSession({ ...options, store: smart.store }, app));
  }
  app.use((koaCtx) => {
    const { session } = koaCtx;
    if (koaCtx.path === '/init' && koaCtx.method === 'GET') {
      session.profile = makeProfile(Number(koaCtx.query.i ?? 0), bytes);
      koaCtx.type = 'text/plain';
      koaCtx.body = 'ok';
      return;
    }
    const reading = koaCtx.path === '/read' && koaCtx.method === 'GET';
    const writing = koaCtx.path === '/write' && koaCtx.method === 'POST';
    if (!reading && !writing) return; // 404
    const profile = session?.profile;
    if (profile === undefined || profile === null) {
      stats.missing++;
      koaCtx.status = 404;
      koaCtx.body = 'no session';
      return;
    }
    koaCtx.type = 'text/plain';
    if (reading) {
      koaCtx.body = profile.user.name;
      return;
    }
    session.hits = (session.hits ?? 0) + 1;
    koaCtx.body = 'ok';
  });
  const server = await listen(app.callback());
  return { server, close, mode };
}

// ---- Hono ---------------------------------------------------------------------------------------------------------

async function honoVariant(ctx, variant, backend, bytes, tag, stats) {
  const app = new Hono();
  let close = async () => undefined;
  let mode = null;
  const missing = (c) => {
    stats.missing++;
    return c.text('no session', 404);
  };
  if (variant === 'ours') {
    const smart = await openSmart(ctx, HonoSessionStore, backend, FRAMEWORK_TABLES.ours, tag, {
      secret: SECRET,
      cookie: { name: FRAMEWORK_COOKIE, maxAge: DAY_MS / 1000 },
    });
    close = smart.close;
    mode = smart.store.lockingMode?.() ?? null;
    app.use(smart.store.middleware);
    app.get('/init', (c) => {
      c.var.session.data.profile = makeProfile(Number(c.req.query('i') ?? 0), bytes);
      return c.text('ok');
    });
    app.get('/read', (c) => {
      const profile = c.var.session.data.profile;
      return profile === undefined ? missing(c) : c.text(profile.user.name);
    });
    app.post('/write', (c) => {
      const { data } = c.var.session;
      if (data.profile === undefined) return missing(c);
      data.hits = (data.hits ?? 0) + 1;
      return c.text('ok');
    });
  } else if (variant === 'peer') {
    const peer = await openPeer(ctx, backend, tag);
    close = peer.close;
    // An absolute lifetime (the README's advice) of one day: the cookie is encrypted once, when the session starts.
    app.use(honoUseSessionStorage(honoStorageOver(peer.store, stats)), honoUseSession({ secret: SECRET, duration: { absolute: DAY_MS / 1000 } }));
    app.get('/init', async (c) => {
      await c.var.session.update({ profile: makeProfile(Number(c.req.query('i') ?? 0), bytes) });
      return c.text('ok');
    });
    app.get('/read', async (c) => {
      const data = await c.var.session.get();
      return data?.profile === undefined ? missing(c) : c.text(data.profile.user.name);
    });
    app.post('/write', async (c) => {
      let found = true;
      await c.var.session.update((data) => {
        if (data?.profile === undefined) {
          found = false;
          return data;
        }
        data.hits = (data.hits ?? 0) + 1;
        return data;
      });
      return found ? c.text('ok') : missing(c);
    });
  } else {
    const layer = ceiling();
    app.use((c, next) => {
      c.set(
        'session',
        layer.open(c.req.header('cookie'), (cookie) => c.header('set-cookie', cookie)),
      );
      return next();
    });
    app.get('/init', (c) => {
      c.var.session.profile = makeProfile(Number(c.req.query('i') ?? 0), bytes);
      return c.text('ok');
    });
    app.get('/read', (c) => {
      const profile = c.var.session.profile;
      return profile === undefined ? missing(c) : c.text(profile.user.name);
    });
    app.post('/write', (c) => {
      const session = c.var.session;
      if (session.profile === undefined) return missing(c);
      session.hits = (session.hits ?? 0) + 1;
      return c.text('ok');
    });
  }
  app.onError((error, c) => {
    noteError(stats, error);
    return c.text(String(error?.message ?? error), 500);
  });
  const server = serve({ fetch: app.fetch, port: 0, hostname: '127.0.0.1', serverOptions: { keepAliveTimeout: 30_000 } });
  if (!server.listening) await new Promise((resolve) => server.once('listening', resolve));
  return { server, close, mode };
}

const STARTERS = { express: expressVariant, fastify: fastifyVariant, koa: koaVariant, hono: honoVariant };

/**
 * Starts one variant's app on 127.0.0.1 (a free port). `backend` is null for
 * `none`. Resolves to { origin, stats, mode, close }.
 */
export async function startFrameworkVariant(ctx, { framework, variant, backend, bytes }) {
  const stats = newStats();
  const tag = `${framework}-${variant}-${backend ?? 'none'}-${bytes}`;
  const started = await STARTERS[framework](ctx, variant, backend, bytes, tag, stats);
  const { port } = started.server.address();
  return {
    origin: `http://127.0.0.1:${port}`,
    stats,
    mode: started.mode ?? null,
    close: async () => {
      if (!started.closesServer) await closeServer(started.server);
      await started.close();
    },
  };
}

/**
 * Creates `count` sessions through the variant's own layer (GET /init, its
 * own cookie format); resolves to the Cookie header of each (every cookie the
 * layer set: koa-session's signature is a second one). Checks that the first
 * one reads back.
 */
export async function createFrameworkSessions(origin, count) {
  const cookies = [];
  for (let i = 0; i < count; i++) {
    const response = await fetch(`${origin}/init?i=${i}`);
    const body = await response.text();
    const cookie = response.headers
      .getSetCookie()
      .map((c) => c.split(';')[0])
      .join('; ');
    if (response.status !== 200 || cookie === '') throw new Error(`creating a session failed: ${response.status} ${body.slice(0, 200)}`);
    cookies.push(cookie);
  }
  for (const [method, route] of [
    ['GET', '/read'],
    ['POST', '/write'],
  ]) {
    const check = await fetch(`${origin}${route}`, { method, headers: { cookie: cookies[0] } });
    const body = await check.text();
    if (check.status !== 200) throw new Error(`${method} ${route} on a new session answered ${check.status}: ${body.slice(0, 200)}`);
  }
  return cookies;
}
