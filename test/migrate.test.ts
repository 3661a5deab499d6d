/**
 * Switching from another session store without logging anyone out
 * (docs/switching.md): sessions created by each of the five peer stores,
 * run by their own packages under express-session, are brought over into
 * each of our backends by the import and by read-through (`migrateFrom`),
 * and their users are still logged in with their old cookies, through
 * express-session with our Store and through our own middleware (and, for
 * sessions made under @fastify/session, through it with our Store and
 * through our own plugin).
 */
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { after, describe, test } from 'node:test';
import express from 'express';
import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import pg from 'pg';
import session from 'express-session';
import { session as ourSession, SmartSessionStore } from '../src/adapters/express.js';
import smartSession, { withFastifySession } from '../src/adapters/fastify.js';
import { main, type CliIo } from '../src/cli.js';
import { importSessions, SessionStore, type ImportSummary, type PeerStoreOptions, type SessionSource, type SessionStoreOptions } from '../src/index.js';
import { openPeer } from '../src/migrate/peers.js';
import { backendsForThisFile, isStoreError, type Backend } from './support/backends.js';
import { Client, listen } from './support/http.js';
import { peerSources, type PeerSource } from './support/peer-sources.js';

// express-session's SessionData takes any key: declared once for the tests, in test/support/frameworks/express.ts.

// @fastify/session and @fastify/cookie are loaded without their types: their declarations of `request.session`
// would clash with the plugin's own (src/adapters/fastify.ts), as the other test files never load them either.
const { default: fastifySession } = (await import('@fastify/session' as string)) as { default: FastifyPluginAsync<Record<string, unknown>> };
const { default: fastifyCookie } = (await import('@fastify/cookie' as string)) as { default: FastifyPluginAsync<Record<string, unknown>> };

const SECRET = 'migrate secret';
const HOUR = 3_600_000;
/** Our table (a key prefix on Redis). */
const TARGET = 'migrate27_sessions';
/** The users each peer's sessions belong to; a fourth session is aged past its expiry. */
const USERS = ['ann', 'bob', 'cid'] as const;

const backends = await backendsForThisFile();
// Registered after the file's last top-level await, as backendsForThisFile asks: an unreachable backend's
// placeholder test starts the file's run, and a file-level after registered before the await would run then.
const sources = peerSources();
after(async () => {
  for (const source of sources) await source.close();
});

/** The app routes both sides share: who is logged in, a change, a logout. */
function routes(app: express.Express): void {
  app.get('/me', (req, res) => {
    const keys = Object.keys(req.session)
      .filter((key) => key.startsWith('k_'))
      .sort();
    res.json({ id: req.sessionID, user: req.session['user'] ?? null, visits: req.session['visits'] ?? null, cart: req.session['cart'] ?? null, keys });
  });
  app.post('/set/:key', (req, res) => {
    req.session[`k_${req.params['key']}`] = true;
    res.json({ ok: true });
  });
  app.post('/logout', (req, res, next) => {
    req.session.destroy((error) => (error ? next(error) : res.json({ ok: true })));
  });
}

/** A user's session as the peer created it. */
interface PeerUser {
  readonly name: string;
  readonly sid: string;
  readonly cookie: string;
}

/** What a peer's storage holds once filled: the users' sessions, and how many sessions an import must leave out. */
interface Filled {
  readonly users: readonly PeerUser[];
  readonly expired: number;
  readonly unreadable: number;
}

/** Logs the users in through express-session with the peer's own Store, ages a fourth session, spoils a few. */
async function fill(source: PeerSource): Promise<Filled> {
  await source.reset();
  const peer = await source.open();
  const app = express();
  app.use(session({ secret: SECRET, store: peer.store, resave: false, saveUninitialized: false, cookie: { maxAge: HOUR } }));
  app.post('/login/:user', (req, res) => {
    req.session['user'] = req.params['user'];
    req.session['visits'] = 1;
    req.session['cart'] = { items: [req.params['user'], 42], total: 9.5 };
    res.json({ id: req.sessionID });
  });
  routes(app);
  const server = await listen(createServer(app));
  try {
    const users: PeerUser[] = [];
    for (const name of [...USERS, 'old']) {
      const client = new Client(server.base);
      const { id } = await client.request('POST', `/login/${name}`);
      // The peer itself serves it back: the session is in its storage.
      assert.equal((await client.request('GET', '/me'))['user'], name, `${source.label} serves ${name}`);
      users.push({ name, sid: String(id), cookie: client.cookie });
    }
    const old = users.pop() as PeerUser;
    const expired = (await source.age(old.sid)) ? 1 : 0;
    return { users, expired, unreadable: await source.spoil() };
  } finally {
    await server.close();
    await peer.close();
  }
}

/** Where a source is, as the import and `migrateFrom` take it. */
function whereFrom(source: PeerSource): PeerStoreOptions {
  return { store: source.from, url: source.url, table: source.table, prefix: source.prefix };
}

/** Our options on `backend`: our table, the user index. */
function ours(backend: Backend, extra: Partial<SessionStoreOptions> = {}): SessionStoreOptions {
  return { url: backend.url, table: TARGET, userIdKey: 'user', createTable: true, autopurge: false, ...extra };
}

/** An empty table of ours. */
async function emptyTarget(backend: Backend): Promise<void> {
  const store = new SessionStore(ours(backend));
  try {
    await store.createTable();
    await store.clear();
  } finally {
    await store.close();
  }
}

/** Both our session layers on `backend`: express-session with our Store, and our own middleware. */
async function ourApps(backend: Backend, extra: Partial<SessionStoreOptions> = {}): Promise<{ bases: [string, string]; close(): Promise<void> }> {
  const store = new SmartSessionStore(ours(backend, extra));
  const withExpressSession = express();
  withExpressSession.use(session({ secret: SECRET, store, resave: false, saveUninitialized: false, cookie: { maxAge: HOUR } }));
  routes(withExpressSession);
  const middleware = ourSession({ ...ours(backend, extra), secret: SECRET, cookie: { maxAge: HOUR } });
  const withOurs = express();
  withOurs.use(middleware);
  routes(withOurs);
  const servers = [await listen(createServer(withExpressSession)), await listen(createServer(withOurs))];
  return {
    bases: [servers[0]?.base as string, servers[1]?.base as string],
    async close() {
      for (const server of servers) await server.close();
      await store.close();
      await middleware.store.close();
    },
  };
}

/** A browser holding the user's old cookie. */
function browser(base: string, user: PeerUser): Client {
  const client = new Client(base);
  client.cookie = user.cookie;
  return client;
}

/** Each user's session and expiry as our store holds them, and how many it holds: compared across runs. */
async function snapshot(store: SessionStore, users: readonly PeerUser[]): Promise<unknown[]> {
  const sessions = await Promise.all(users.map(async ({ sid }) => (await store.load(sid)) ?? null));
  return [await store.length(), ...sessions.map((loaded) => (loaded === null ? null : { session: loaded.session, expiresAt: loaded.state.expiresAt }))];
}

/** Which of our backends each source is brought into: connect-redis's into Redis and PostgreSQL, the SQL peers' into every one. */
function targetsOf(source: PeerSource): Backend[] {
  return source.from === 'connect-redis' ? backends.filter((backend) => backend.dialect === 'redis' || backend.dialect === 'postgres') : backends;
}

for (const source of sources) {
  describe(source.label, () => {
    for (const backend of targetsOf(source)) {
      test(`import into ${backend.name}: every live session copied once, its users still logged in with their old cookies`, async () => {
        const { users, expired, unreadable } = await fill(source);
        await emptyTarget(backend);
        const store = new SessionStore(ours(backend));
        try {
          const progress: number[] = [];
          const first = await importSessions(store, whereFrom(source), { batchSize: 2, onProgress: (counts) => progress.push(counts.copied) });
          assert.deepStrictEqual(first, { copied: users.length, expired, present: 0, unreadable } satisfies ImportSummary);
          assert.ok(progress.length >= 2, `progress after each batch of 2: ${progress.join(', ')}`);
          const copied = await snapshot(store, users);
          assert.equal(copied[0], users.length);

          // The expiry is the one the peer stores (its touch moves it, not the cookie in the stored JSON: that is
          // only about right, and rounded up to the second by some peers); the user index is filled.
          const peer = await openPeer(whereFrom(source));
          try {
            for (const user of users) {
              const loaded = await store.load(user.sid);
              assert.ok(loaded !== null, `${user.name} copied`);
              const there = await peer.read(user.sid, Date.now());
              assert.ok(there !== null);
              // (Redis gives a TTL: now plus it, at two reads, differs by the time between them.)
              const slack = source.from === 'connect-redis' ? 1000 : 0;
              assert.ok(Math.abs(loaded.state.expiresAt - there.expiresAt) <= slack, `${user.name}: expiry ${loaded.state.expiresAt} vs ${there.expiresAt}`);
              const cookie = loaded.session['cookie'] as { expires: string };
              assert.ok(Math.abs(loaded.state.expiresAt - Date.parse(cookie.expires)) <= 5000, `${user.name}: expiry about the cookie's`);
              assert.equal((await store.listByUser(user.name)).length, 1, `${user.name}'s session is indexed by user`);
            }
          } finally {
            await peer.close();
          }

          // Run again: nothing copied, every session kept as it was; the source still holds every one.
          const second = await importSessions(store, whereFrom(source));
          assert.deepStrictEqual(second, { copied: 0, expired, present: users.length, unreadable } satisfies ImportSummary);
          assert.deepStrictEqual(await snapshot(store, users), copied);
        } finally {
          await store.close();
        }

        const apps = await ourApps(backend);
        try {
          for (const user of users) {
            for (const base of apps.bases) {
              const me = await browser(base, user).request('GET', '/me');
              assert.deepStrictEqual(
                { id: me['id'], user: me['user'], visits: me['visits'], cart: me['cart'] },
                { id: user.sid, user: user.name, visits: 1, cart: { items: [user.name, 42], total: 9.5 } },
                `${user.name} through ${base}`,
              );
            }
          }
        } finally {
          await apps.close();
        }
      });

      test(`read-through into ${backend.name}: copied once under 20 parallel first requests, every change kept; a logout stays`, async () => {
        const { users } = await fill(source);
        await emptyTarget(backend);
        const [ann, bob, cid] = users as [PeerUser, PeerUser, PeerUser];
        const apps = await ourApps(backend, { migrateFrom: whereFrom(source) });
        try {
          // 20 first requests of one user at once, through two stores (two processes' worth), none copied yet.
          await Promise.all(Array.from({ length: 20 }, (_, index) => browser(apps.bases[index % 2] as string, ann).request('POST', `/set/${index}`)));
          for (const base of apps.bases) {
            const me = await browser(base, ann).request('GET', '/me');
            assert.equal(me['user'], 'ann');
            assert.deepStrictEqual(me['cart'], { items: ['ann', 42], total: 9.5 });
            assert.deepStrictEqual(me['keys'], Array.from({ length: 20 }, (_, index) => `k_${index}`).sort());
          }
          // Another user, served from the old store by our own middleware.
          assert.equal((await browser(apps.bases[1], bob).request('GET', '/me'))['user'], 'bob');

          // A logout before any copy: gone here and there, not brought back by the next request.
          await browser(apps.bases[0], cid).request('POST', '/logout');
          for (const base of apps.bases) assert.equal((await browser(base, cid).request('GET', '/me'))['user'], null, `cid logged out, through ${base}`);

          // A logout of a copied session: deleted from the old store too, so nothing copies it back.
          await browser(apps.bases[1], ann).request('POST', '/logout');
          for (const base of apps.bases) assert.equal((await browser(base, ann).request('GET', '/me'))['user'], null, `ann logged out, through ${base}`);
        } finally {
          await apps.close();
        }
        // The old store lost exactly the two sessions logged out.
        const store = new SessionStore(ours(backend));
        try {
          const summary = await importSessions(store, whereFrom(source));
          assert.deepStrictEqual([summary.copied, summary.present], [0, 1], 'bob was copied by read-through; ann and cid are gone from the old store');
        } finally {
          await store.close();
        }
      });
    }
  });
}

/** The command line run in this process, its output kept. */
async function cli(interactive: boolean, ...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: CliIo = { out: (text) => void (out += text), err: (text) => void (err += text), interactive };
  const code = await main(argv, io);
  return { code, out, err };
}

describe('the import command, a run cut short, and what is refused', () => {
  const source = sources.find((candidate) => candidate.from === 'connect-pg-simple') as PeerSource;
  const sourceFlags = ['--from', source.from, '--source-url', source.url, '--source-table', source.table as string];

  for (const backend of backends) {
    test(`import --from connect-pg-simple into ${backend.name}: progress, a summary, the same on a second run; the source is left as it was`, async () => {
      const { users, expired, unreadable } = await fill(source);
      await emptyTarget(backend);
      const target = ['--url', backend.url, '--table', TARGET, '--user-id-key', 'user', '--batch-size', '1'];
      const sourceRows = async () => {
        const pool = new pg.Pool({ connectionString: source.url, max: 1 });
        try {
          return (await pool.query(`SELECT sid, sess::text AS sess, expire FROM ${source.table as string} ORDER BY sid`)).rows;
        } finally {
          await pool.end();
        }
      };
      const before = await sourceRows();
      const first = await cli(false, 'import', ...sourceFlags, ...target);
      assert.equal(first.code, 0, first.err);
      assert.match(
        first.out,
        new RegExp(
          `^imported from connect-pg-simple into .*: ${users.length} sessions copied, ${expired} skipped as expired, 0 skipped as already present, ${unreadable} unreadable\n$`,
        ),
      );
      const total = users.length + expired + unreadable;
      // Plain lines for a log: one per tenth at most, the last one at the end.
      const lines = first.err.trim().split('\n');
      assert.ok(lines.length >= 2 && lines.length <= 10, first.err);
      assert.equal(lines.at(-1), `read ${total} of ${total}, copied ${users.length}`);

      const second = await cli(true, 'import', ...sourceFlags, ...target, '--json');
      assert.equal(second.code, 0, second.err);
      assert.deepStrictEqual(JSON.parse(second.out), { from: source.from, table: TARGET, copied: 0, expired, present: users.length, unreadable });
      // On a terminal, a bar redrawn in place.
      assert.match(second.err, new RegExp(`\r\\[#+\\] 100%  ${total}/${total}\n$`));
      assert.deepStrictEqual(await sourceRows(), before, 'the source is only read');
    });

    test(`an import cut short on ${backend.name} goes on where it stopped when run again`, async () => {
      const { users } = await fill(source);
      await emptyTarget(backend);
      const store = new SessionStore(ours(backend));
      try {
        let batches = 0;
        let copiedBeforeTheCut = 0;
        await assert.rejects(
          importSessions(store, whereFrom(source), {
            batchSize: 2,
            onProgress: (counts) => {
              copiedBeforeTheCut = counts.copied;
              // The process is killed after its second batch.
              if (++batches === 2) throw new Error('killed');
            },
          }),
          /killed/,
        );
        const again = await importSessions(store, whereFrom(source), { batchSize: 2 });
        assert.equal(again.present, copiedBeforeTheCut);
        assert.equal(again.copied + copiedBeforeTheCut, users.length);
        for (const user of users) assert.equal((await store.load(user.sid))?.session['user'], user.name);
      } finally {
        await store.close();
      }
    });
  }

  test('wrong command lines and options are refused by name, before anything connects', async () => {
    const missing = await cli(false, 'import', '--source-url', source.url, '--url', 'sqlite::memory:');
    assert.equal(missing.code, 2);
    assert.match(missing.err, /--from is required/);
    const unknown = await cli(false, 'import', '--from', 'connect-mongo', '--source-url', source.url, '--url', 'sqlite::memory:');
    assert.equal(unknown.code, 2);
    assert.match(unknown.err, /--from must be one of connect-pg-simple/);
    const wrongDatabase = await cli(false, 'import', '--from', 'connect-redis', '--source-url', source.url, '--url', 'sqlite::memory:');
    assert.equal(wrongDatabase.code, 2);
    assert.match(wrongDatabase.err, /--source-url must be a redis:\/\/ URL for connect-redis/);
    const wrongFlag = await cli(false, 'import', ...sourceFlags, '--source-prefix', 'x:', '--url', 'sqlite::memory:');
    assert.equal(wrongFlag.code, 2);
    assert.match(wrongFlag.err, /--source-prefix is for connect-redis; connect-pg-simple takes --source-table/);

    for (const [migrateFrom, mentioning] of [
      [{ store: 'connect-mongo', url: source.url }, 'migrateFrom.store'],
      [{ store: 'express-mysql-session', url: source.url }, 'migrateFrom.url'],
      [{ store: 'connect-pg-simple', url: source.url, table: 'a;b' }, 'source table'],
      [{ store: 'connect-pg-simple', url: source.url, tables: 'x' }, 'migrateFrom.tables'],
    ] as const) {
      assert.throws(
        () => new SessionStore({ url: 'sqlite::memory:', migrateFrom: migrateFrom as unknown as PeerStoreOptions }),
        isStoreError('ERR_INVALID_OPTION', mentioning),
        JSON.stringify(migrateFrom),
      );
    }
  });
});

test('a session too large for this store is left behind by both paths; an old store out of reach fails the request, naming it', async () => {
  const source = sources.find((candidate) => candidate.from === 'better-sqlite3-session-store') as PeerSource;
  const { users, expired, unreadable } = await fill(source);
  const [ann] = users as [PeerUser];
  const small = new SessionStore({ url: 'sqlite::memory:', createTable: true, maxSize: 64, migrateFrom: whereFrom(source) });
  try {
    assert.equal(await small.load(ann.sid), null, 'a new session, not a failure on every request');
    assert.deepStrictEqual(await importSessions(small, whereFrom(source)), { copied: 0, expired, present: 0, unreadable: unreadable + users.length });
  } finally {
    await small.close();
  }
  const cutOff = new SessionStore({
    url: 'sqlite::memory:',
    createTable: true,
    migrateFrom: { store: 'connect-pg-simple', url: 'postgres://postgres@127.0.0.1:1/nowhere' },
  });
  try {
    await assert.rejects(cutOff.load(ann.sid), isStoreError('ERR_DATABASE', 'reading the session from connect-pg-simple at postgres://127.0.0.1:1/nowhere'));
  } finally {
    await cutOff.close();
  }
});

describe('a logout racing the copy of a session', () => {
  const source = sources.find((candidate) => candidate.from === 'better-sqlite3-session-store') as PeerSource;

  for (const backend of backends) {
    test(`on ${backend.name}: a logout between the copy's read and its write, or between its write and its check, stays a logout`, async () => {
      const { users } = await fill(source);
      await emptyTarget(backend);
      const [ann, bob] = users as [PeerUser, PeerUser];
      const peer = await openPeer(whereFrom(source));
      /** Run once, when the copy has read the old store (before it writes), or before its second read (after it wrote). */
      let afterFirstRead: (() => Promise<void>) | undefined;
      let beforeSecondRead: (() => Promise<void>) | undefined;
      let reads = 0;
      const racing: SessionSource = {
        description: 'the old store, with a logout landing mid-copy',
        async read(sid, now) {
          reads++;
          if (reads === 2) await beforeSecondRead?.();
          const found = await peer.read(sid, now);
          if (reads === 1) await afterFirstRead?.();
          return found;
        },
        remove: (sid) => peer.remove(sid),
        close: () => peer.close(),
      };
      const copying = new SessionStore(ours(backend), { source: racing });
      // The logout comes through another process's store.
      const other = new SessionStore(ours(backend, { migrateFrom: whereFrom(source) }));
      try {
        // The copy writes after the logout deleted in both stores: it finds the old store lost the session, and drops its copy.
        afterFirstRead = () => other.destroy(ann.sid);
        assert.equal(await copying.load(ann.sid), null, 'ann is not revived by the copy');
        assert.equal(reads, 2);
        assert.equal(await other.load(ann.sid), null, 'nor by a later request');

        reads = 0;
        afterFirstRead = undefined;
        beforeSecondRead = () => other.destroy(bob.sid);
        assert.equal(await copying.load(bob.sid), null, 'bob is not revived by the copy');
        assert.equal(await other.load(bob.sid), null, 'nor by a later request');

        // Without a logout, the copy is served.
        const [, , cid] = users as [PeerUser, PeerUser, PeerUser];
        reads = 0;
        beforeSecondRead = undefined;
        assert.equal((await copying.load(cid.sid))?.session['user'], 'cid');
      } finally {
        await copying.close();
        await other.close();
      }
    });
  }
});

describe('log out everywhere while switching', () => {
  for (const source of sources.filter((candidate) => candidate.from === 'better-sqlite3-session-store' || candidate.from === 'connect-redis')) {
    for (const backend of backends) {
      test(`${source.label} into ${backend.name}: destroyByUser deletes the old store's copies too, so none is read through again`, async () => {
        const { users, expired, unreadable } = await fill(source);
        await emptyTarget(backend);
        const [ann, bob] = users as [PeerUser, PeerUser];
        const store = new SessionStore(ours(backend, { migrateFrom: whereFrom(source) }));
        try {
          // Every session in both stores, as after the import while migrateFrom is still set.
          assert.equal((await importSessions(store, whereFrom(source))).copied, users.length);
          assert.equal(await store.destroyByUser('bob'), 1);
          assert.equal(await store.load(bob.sid), null, 'bob is not read through again');
          assert.equal((await store.load(ann.sid))?.session['user'], 'ann');
          // The old store lost bob's session only.
          assert.deepStrictEqual(await importSessions(store, whereFrom(source)), { copied: 0, expired, present: users.length - 1, unreadable });
        } finally {
          await store.close();
        }
      });
    }
  }
});

// (Fastify's `Session` takes any key: declared once for the tests, in test/support/frameworks/fastify.ts.)

/** The same peer stores under @fastify/session, its cookie (`sessionId`, signed by @fastify/cookie) and secret. */
const FASTIFY_SECRET = 'a migrate secret of at least thirty-two characters';

/** A Fastify app with the session layer `register` adds, and routes to log in and say who is. */
async function fastifyApp(register: (app: FastifyInstance) => PromiseLike<unknown>): Promise<{ base: string; close: () => Promise<void> }> {
  const app = Fastify();
  await register(app);
  app.post<{ Params: { user: string } }>('/login/:user', async (request) => {
    request.session.set('user', request.params.user);
    request.session.set('visits', 1);
    return { id: request.session.sessionId };
  });
  app.get('/me', async (request) => ({
    id: request.session.sessionId,
    user: request.session.get('user') ?? null,
    visits: request.session.get('visits') ?? null,
  }));
  await app.listen({ port: 0, host: '127.0.0.1' });
  const address = app.server.address();
  if (address === null || typeof address === 'string') throw new Error('fastify did not listen on a TCP port');
  return { base: `http://127.0.0.1:${address.port}`, close: () => app.close() };
}

describe('Fastify: the same stores under @fastify/session', () => {
  for (const source of sources.filter((candidate) => candidate.from === 'connect-pg-simple' || candidate.from === 'connect-redis')) {
    for (const backend of targetsOf(source)) {
      test(`${source.label} into ${backend.name}: imported or read through, the users stay logged in through @fastify/session and our plugin`, async () => {
        await fill(source);
        const peer = await source.open();
        const users: PeerUser[] = [];
        const before = await fastifyApp(async (app) => {
          await app.register(fastifyCookie);
          await app.register(fastifySession, {
            secret: FASTIFY_SECRET,
            store: peer.store as never,
            saveUninitialized: false,
            cookie: { secure: false, maxAge: HOUR },
          });
        });
        try {
          for (const name of ['fay', 'gus']) {
            const client = new Client(before.base);
            const { id } = await client.request('POST', `/login/${name}`);
            assert.equal((await client.request('GET', '/me'))['user'], name);
            users.push({ name, sid: String(id), cookie: client.cookie });
          }
        } finally {
          await before.close();
          await peer.close();
        }
        const [fay, gus] = users as [PeerUser, PeerUser];
        // fay's session is imported; gus's is read through on his first request.
        await emptyTarget(backend);
        const importer = new SessionStore(ours(backend));
        try {
          await importSessions(importer, whereFrom(source));
          await importer.destroy(gus.sid);
        } finally {
          await importer.close();
        }
        const options = ours(backend, { migrateFrom: whereFrom(source) });
        const layers = [
          await fastifyApp((app) => app.register(withFastifySession, { secret: FASTIFY_SECRET, cookie: { secure: false, maxAge: HOUR }, store: options })),
          await fastifyApp((app) => app.register(smartSession, { secret: FASTIFY_SECRET, cookie: { secure: false, maxAge: HOUR }, store: options })),
        ];
        try {
          for (const user of [fay, gus]) {
            for (const layer of layers) {
              const me = await browser(layer.base, user).request('GET', '/me');
              assert.deepStrictEqual(me, { id: user.sid, user: user.name, visits: 1 }, `${user.name} through ${layer.base}`);
            }
          }
        } finally {
          for (const layer of layers) await layer.close();
        }
      });
    }
  }
});
