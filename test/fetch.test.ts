/**
 * What is the Fetch-API core's own (`smart-session-store/fetch`), on every
 * backend: the signed cookie (express-session's format, secret rotation,
 * tampering), `Set-Cookie` only when needed, cookie attributes, expiry,
 * regenerate and destroy, flash messages under overlapping requests, and the
 * awaited commit. Parallel requests, logout races and statement counts are
 * in frameworks.test.ts.
 */
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import { createRequire } from 'node:module';
import { after, before, describe, test } from 'node:test';
import { FetchSessionStore, type FetchSession, type FetchSessionStoreOptions } from '../src/adapters/fetch.js';
import { hashSessionId } from '../src/index.js';
import { backendsForThisFile, delay, dropTable, isStoreError, type Backend } from './support/backends.js';
import { fetchListener, holdSaves } from './support/frameworks/fetch.js';
import { listen, type RunningServer } from './support/http.js';

const backends = await backendsForThisFile();
const { unsign: expressUnsign } = createRequire(import.meta.url)('cookie-signature') as { unsign(value: string, secret: string): string | false };

/** The `name=value` pair of a `Set-Cookie`, as a browser sends it back. */
function pairOf(setCookie: string | undefined): string {
  assert.ok(setCookie !== undefined, 'expected a Set-Cookie');
  return setCookie.split(';')[0] as string;
}

/** The attributes of a `Set-Cookie`, lower-cased names. */
function attributesOf(setCookie: string): Map<string, string> {
  return new Map(
    setCookie
      .split(/;\s*/)
      .slice(1)
      .map((attribute) => {
        const equals = attribute.indexOf('=');
        return equals < 0 ? [attribute.toLowerCase(), ''] : [attribute.slice(0, equals).toLowerCase(), attribute.slice(equals + 1)];
      }),
  );
}

/** The stored data of session `id`, read past the store; `undefined` when there is no row. */
async function storedData(backend: Backend, table: string, id: string): Promise<Record<string, unknown> | undefined> {
  return (await backend.rows(table).read(hashSessionId(id)))?.data;
}

for (const backend of backends) {
  describe(`fetch core on ${backend.name}`, () => {
    const table = 'ssn_fetch';
    const made: FetchSessionStore[] = [];
    /** A store on the test table, closed after the suite. */
    const sessionsWith = (options: Partial<FetchSessionStoreOptions> = {}): FetchSessionStore => {
      const sessions = new FetchSessionStore({ url: backend.url, table, autopurge: false, secret: 'first secret', cookie: { maxAge: 3600 }, ...options });
      made.push(sessions);
      return sessions;
    };
    /** Opens with a `Cookie` header, changes, commits: the `Set-Cookie` (if any) and the session. */
    const roundTrip = async (sessions: FetchSessionStore, cookie: string | null, change: (session: FetchSession) => void | Promise<void> = () => undefined) => {
      const session = await sessions.open(cookie);
      await change(session);
      return { session, setCookie: await sessions.commit(session) };
    };

    before(async () => {
      await dropTable(backend, table);
      const creator = new FetchSessionStore({ url: backend.url, table, secret: 'x', autopurge: false });
      await creator.createTable();
      await creator.close();
    });
    after(async () => {
      for (const sessions of made) await sessions.close();
      await dropTable(backend, table);
    });

    test("the cookie is express-session's signed id: s:<id>.<HMAC-SHA256, base64 without padding>, URL-encoded; ids carry 192 random bits", async () => {
      const sessions = sessionsWith();
      const { session, setCookie } = await roundTrip(sessions, null, (s) => void s.set('n', 1));
      const pair = pairOf(setCookie);
      assert.ok(pair.startsWith('sid=s%3A'), pair);
      const value = decodeURIComponent(pair.slice('sid='.length));
      const signature = createHmac('sha256', 'first secret').update(session.id).digest('base64').replace(/=+$/, '');
      assert.equal(value, `s:${session.id}.${signature}`);
      assert.equal(expressUnsign(value.slice(2), 'first secret'), session.id, 'cookie-signature (express-session) verifies it');
      assert.match(session.id, /^[A-Za-z0-9_-]{32}$/);
      const ids = new Set(await Promise.all(Array.from({ length: 50 }, async () => (await sessions.open(null)).id)));
      assert.equal(ids.size, 50);
    });

    test('secret rotation: the first secret signs, every one verifies, and an old signature is re-issued with the first', async () => {
      const before = sessionsWith({ secret: 'old secret' });
      const oldCookie = pairOf((await roundTrip(before, null, (s) => void s.set('kept', true))).setCookie);
      const rotated = sessionsWith({ secret: ['new secret', 'old secret'] });
      const { session, setCookie } = await roundTrip(rotated, oldCookie);
      assert.equal(session.get('kept'), true);
      const renewed = pairOf(setCookie);
      assert.notEqual(renewed, oldCookie);
      assert.equal(expressUnsign(decodeURIComponent(renewed.slice(4)).slice(2), 'new secret'), session.id);
      // Signed with the first secret now: no need to send it again.
      assert.equal((await roundTrip(rotated, renewed)).setCookie, undefined);
      const retired = sessionsWith({ secret: 'new secret' });
      assert.equal((await retired.open(renewed)).get('kept'), true);
      assert.equal((await retired.open(oldCookie)).isNew, true, 'once the old secret is gone, its cookies name no session');
    });

    test('a tampered, unsigned or malformed cookie names no session: a new one under a fresh id, the stored one untouched', async () => {
      const sessions = sessionsWith();
      const { session: original, setCookie } = await roundTrip(sessions, null, (s) => void s.set('owner', 'ann'));
      const value = decodeURIComponent(pairOf(setCookie).slice(4));
      const dot = value.lastIndexOf('.');
      const id = original.id;
      const otherSigned = `s:${id}.${createHmac('sha256', 'attacker').update(id).digest('base64').replace(/=+$/, '')}`;
      const flipped = value.slice(0, -1) + (value.endsWith('A') ? 'B' : 'A');
      const forgedId = `s:${id.slice(0, -1)}${id.endsWith('A') ? 'B' : 'A'}${value.slice(dot)}`;
      for (const cookie of [
        `sid=${id}`,
        `sid=${encodeURIComponent(otherSigned)}`,
        `sid=${encodeURIComponent(flipped)}`,
        `sid=${encodeURIComponent(forgedId)}`,
        `sid=${encodeURIComponent(`${value}x`)}`,
        'sid=s%3A',
        'sid=%E0%A4%A',
        `sid=${encodeURIComponent(value.slice(0, dot))}`,
      ]) {
        const { session, setCookie: answer } = await roundTrip(sessions, cookie);
        assert.equal(session.isNew, true, cookie);
        assert.notEqual(session.id, id, cookie);
        assert.equal(session.get('owner'), undefined, cookie);
        assert.equal(answer, undefined, `${cookie}: a read-only request sets no cookie`);
      }
      assert.deepStrictEqual(await storedData(backend, table, id), { owner: 'ann' });
      // The raw (not URL-encoded) form, as @fastify/cookie writes it, is accepted.
      assert.equal((await sessions.open(`sid=${value}`)).get('owner'), 'ann');
      // With several cookies of the name, the one that verifies counts.
      assert.equal((await sessions.open(`sid=garbage; sid=${encodeURIComponent(value)}`)).get('owner'), 'ann');
    });

    test('Set-Cookie only when needed, and nothing written for a request that stored nothing', async () => {
      const sessions = sessionsWith();
      const visitor = await roundTrip(sessions, null, (s) => void s.get('anything'));
      assert.equal(visitor.setCookie, undefined);
      assert.equal(await storedData(backend, table, visitor.session.id), undefined, 'an empty new session is not stored');
      const emptied = await roundTrip(sessions, null, (s) => {
        s.set('a', 1);
        s.unset('a');
      });
      assert.equal(emptied.setCookie, undefined);
      const created = await roundTrip(sessions, null, (s) => void s.set('a', 1));
      const cookie = pairOf(created.setCookie);
      assert.deepStrictEqual(await storedData(backend, table, created.session.id), { a: 1 });
      assert.equal((await roundTrip(sessions, cookie, (s) => void s.set('b', 2))).setCookie, undefined, 'a change to a stored session');
      assert.equal((await roundTrip(sessions, cookie)).setCookie, undefined, 'a read-only request');
      assert.deepStrictEqual(await storedData(backend, table, created.session.id), { a: 1, b: 2 });
    });

    test('rolling sends the cookie on every response of a stored session; saveUninitialized stores an empty one', async () => {
      const rolling = sessionsWith({ rolling: true });
      assert.equal((await roundTrip(rolling, null)).setCookie, undefined, 'nothing stored, nothing to roll');
      const cookie = pairOf((await roundTrip(rolling, null, (s) => void s.set('a', 1))).setCookie);
      const again = (await roundTrip(rolling, cookie)).setCookie;
      assert.equal(pairOf(again), cookie);
      assert.equal(attributesOf(again as string).get('max-age'), '3600');
      const eager = sessionsWith({ saveUninitialized: true });
      const { session, setCookie } = await roundTrip(eager, null);
      assert.ok(setCookie !== undefined);
      assert.deepStrictEqual(await storedData(backend, table, session.id), {});
    });

    test('cookie attributes: defaults, maxAge in seconds, secure "auto" from the request URL, __Host- prefix', async () => {
      const defaults = sessionsWith({ cookie: {} });
      const plain = (await roundTrip(defaults, null, (s) => void s.set('a', 1))).setCookie as string;
      assert.deepStrictEqual([...attributesOf(plain).keys()], ['path', 'httponly', 'samesite']);
      assert.equal(attributesOf(plain).get('samesite'), 'Lax');
      const https = await defaults.open(new Request('https://example.test/'));
      https.set('a', 1);
      assert.ok(attributesOf((await defaults.commit(https)) as string).has('secure'));
      const http = await defaults.open(new Request('http://example.test/'));
      http.set('a', 1);
      assert.ok(!attributesOf((await defaults.commit(http)) as string).has('secure'));

      const custom = sessionsWith({ cookie: { name: '__Host-s', maxAge: 90, sameSite: 'strict', httpOnly: false, partitioned: true } });
      const setCookie = (await roundTrip(custom, null, (s) => void s.set('a', 1))).setCookie as string;
      const attributes = attributesOf(setCookie);
      assert.ok(setCookie.startsWith('__Host-s=s%3A'));
      assert.equal(attributes.get('max-age'), '90');
      const expires = Date.parse(attributes.get('expires') as string);
      assert.ok(Math.abs(expires - (Date.now() + 90_000)) < 5_000, `Expires ${attributes.get('expires')}`);
      assert.equal(attributes.get('samesite'), 'Strict');
      assert.ok(attributes.has('secure'), '__Host- cookies are always Secure');
      assert.ok(attributes.has('partitioned') && !attributes.has('httponly'));
      const scoped = sessionsWith({ cookie: { domain: 'example.test', path: '/app', sameSite: false } });
      const scopedAttributes = attributesOf((await roundTrip(scoped, null, (s) => void s.set('a', 1))).setCookie as string);
      assert.equal(scopedAttributes.get('domain'), 'example.test');
      assert.equal(scopedAttributes.get('path'), '/app');
      assert.ok(!scopedAttributes.has('samesite'));
    });

    test('options are checked at construction, naming the option', () => {
      const refused = (options: Partial<FetchSessionStoreOptions>, option: string) =>
        assert.throws(
          () => new FetchSessionStore({ url: backend.url, table, secret: 's', ...options } as FetchSessionStoreOptions),
          isStoreError('ERR_INVALID_OPTION', `"${option}"`),
        );
      refused({ secret: undefined }, 'secret');
      refused({ secret: '' }, 'secret');
      refused({ secret: [] }, 'secret');
      refused({ secret: ['a', ''] }, 'secret[1]');
      refused({ cookie: { name: 'bad name' } }, 'cookie.name');
      refused({ cookie: { name: 'a;b' } }, 'cookie.name');
      refused({ cookie: { path: 'relative' } }, 'cookie.path');
      refused({ cookie: { path: '/a;b' } }, 'cookie.path');
      refused({ cookie: { domain: 'a b' } }, 'cookie.domain');
      refused({ cookie: { maxAge: 0 } }, 'cookie.maxAge');
      refused({ cookie: { maxAge: Number.NaN } }, 'cookie.maxAge');
      refused({ cookie: { sameSite: 'sideways' as 'lax' } }, 'cookie.sameSite');
      refused({ cookie: { expires: new Date(Number.NaN) } }, 'cookie.expires');
      refused({ cookie: { name: '__Host-x', domain: 'example.test' } }, 'cookie.name');
      refused({ rolling: 'yes' as unknown as boolean }, 'rolling');
      refused({ ['secrets' as 'secret']: ['typo'] }, 'secrets');
      refused({ header: '' }, 'header');
      refused({ header: 'x session' }, 'header');
      refused({ header: 'Cookie' }, 'header');
      refused({ header: 'set-cookie' }, 'header');
      refused({ header: 7 as unknown as string }, 'header');
    });

    test('cookie.maxAge is in seconds, at most 400 days: a value in milliseconds is refused, naming the unit; 400 days is served as it is', async () => {
      // A day in milliseconds, as express users write it: in seconds, a cookie of 1000 days.
      assert.throws(
        () => sessionsWith({ cookie: { maxAge: 24 * 3600 * 1000 } }),
        isStoreError(
          'ERR_INVALID_OPTION',
          'option "cookie.maxAge" is in seconds, and 86400000 s (1000 days) is more than the 34560000 s (400 days) browsers keep a cookie; ' +
            'if 86400000 is milliseconds (as express counts), divide by 1000: cookie.maxAge: 86400 (1 day)',
        ),
      );
      assert.throws(
        () => sessionsWith({ cookie: { maxAge: 400 * 24 * 3600 + 1 } }),
        isStoreError('ERR_INVALID_OPTION', 'divide by 1000: cookie.maxAge: 34560.001 (0.4 days)'),
      );
      // Too long even as milliseconds: no such advice.
      assert.throws(
        () => sessionsWith({ cookie: { maxAge: 1e12 } }),
        (error: unknown) => isStoreError('ERR_INVALID_OPTION', '"cookie.maxAge" is in seconds')(error) && !(error as Error).message.includes('divide'),
      );
      // The longest a browser keeps, over HTTP: the cookie says so, and the stored session expires then.
      const longest = sessionsWith({ cookie: { maxAge: 400 * 24 * 3600 } });
      const server = await listen(
        createServer(
          fetchListener(
            longest.withSession(async (_request, session) => {
              session.set('a', 1);
              return Response.json({ id: session.id });
            }),
          ),
        ),
      );
      try {
        const response = await fetch(`${server.base}/`, { method: 'POST' });
        const { id } = (await response.json()) as { id: string };
        assert.equal(attributesOf(response.headers.getSetCookie()[0] ?? '').get('max-age'), '34560000');
        const expiresAt = (await longest.store.load(id))?.state.expiresAt ?? 0;
        assert.ok(Math.abs(expiresAt - (Date.now() + 400 * 24 * 3600_000)) < 10_000, `stored expiry ${new Date(expiresAt).toISOString()}`);
      } finally {
        await server.close();
      }
    });

    test('a cookie naming a missing, expired or destroyed session never brings its id back', async () => {
      const sessions = sessionsWith();
      const { session, setCookie } = await roundTrip(sessions, null, (s) => void s.set('a', 1));
      const cookie = pairOf(setCookie);
      const late = await sessions.open(cookie);
      const { setCookie: cleared } = await roundTrip(sessions, cookie, (s) => s.destroy());
      assert.equal(attributesOf(cleared as string).get('max-age'), '0', 'destroy clears the cookie');
      assert.equal(pairOf(cleared), 'sid=');
      late.set('late', true);
      assert.equal(await sessions.commit(late), undefined);
      assert.equal(await storedData(backend, table, session.id), undefined, 'a request that loaded it before the destroy cannot bring it back');
      const { session: next, setCookie: issued } = await roundTrip(sessions, cookie, (s) => void s.set('b', 2));
      assert.notEqual(next.id, session.id);
      assert.notEqual(pairOf(issued), cookie);
      assert.equal(await storedData(backend, table, session.id), undefined);

      const brief = sessionsWith({ cookie: { maxAge: 1 } });
      const { session: expiring, setCookie: expiringCookie } = await roundTrip(brief, null, (s) => void s.set('a', 1));
      await delay(1100);
      const expired = await brief.open(pairOf(expiringCookie));
      assert.ok(expired.isNew && expired.id !== expiring.id && expired.get('a') === undefined);
    });

    test('regenerate: a new id, nothing of the old session, the old one deleted at once', async () => {
      const sessions = sessionsWith();
      const { session, setCookie } = await roundTrip(sessions, null, (s) => void s.set('cart', ['apple']));
      const oldCookie = pairOf(setCookie);
      const login = await sessions.open(oldCookie);
      const cart = login.get('cart');
      await login.regenerate();
      assert.notEqual(login.id, session.id);
      assert.deepStrictEqual(login.data, {});
      assert.equal(await storedData(backend, table, session.id), undefined);
      login.set('user', 'ann').set('cart', cart);
      const newCookie = pairOf(await sessions.commit(login));
      assert.notEqual(newCookie, oldCookie);
      assert.deepStrictEqual(await storedData(backend, table, login.id), { user: 'ann', cart: ['apple'] });
      const regeneratedOnly = await roundTrip(sessions, newCookie, (s) => s.regenerate());
      assert.equal(pairOf(regeneratedOnly.setCookie), 'sid=', 'a regenerated session left empty clears the cookie');
    });

    test('destroy, then a flash: the flash lives in a new session under a new id', async () => {
      const sessions = sessionsWith();
      const { session, setCookie } = await roundTrip(sessions, null, (s) => void s.set('user', 'ann'));
      const logout = await roundTrip(sessions, pairOf(setCookie), async (s) => {
        await s.destroy();
        s.flash('notice', 'logged out');
      });
      assert.notEqual(logout.session.id, session.id);
      const next = await sessions.open(pairOf(logout.setCookie));
      assert.equal(next.get('user'), undefined);
      assert.equal(next.get('notice'), 'logged out');
    });

    test('flash: read once, then gone; a read by one request does not remove a flash another sets meanwhile', async () => {
      const sessions = sessionsWith();
      const cookie = pairOf((await roundTrip(sessions, null, (s) => void s.set('user', 'ann'))).setCookie);
      // A request that loaded before the flash was set, saving later: the flash survives it.
      const early = await sessions.open(cookie);
      await roundTrip(sessions, cookie, (s) => void s.flash('notice', 'saved'));
      early.set('other', 1);
      assert.equal(early.get('notice'), undefined);
      await sessions.commit(early);
      // Two requests that both loaded it: one reads it, the other saves something else afterwards (remix-run/remix#5647).
      const reader = await sessions.open(cookie);
      const bystander = await sessions.open(cookie);
      assert.ok(reader.has('notice'));
      assert.equal(reader.get('notice'), 'saved');
      assert.equal(reader.has('notice'), false);
      await sessions.commit(reader);
      bystander.set('more', 2);
      await sessions.commit(bystander);
      const later = await sessions.open(cookie);
      assert.equal(later.get('notice'), undefined, 'read once: a later request does not see it again');
      assert.equal(later.get('other'), 1);
      assert.equal(later.get('more'), 2);
    });

    test('values JSON cannot hold and forbidden keys are refused; the stored session stays as it was', async () => {
      const sessions = sessionsWith();
      const { session, setCookie } = await roundTrip(sessions, null, (s) => void s.set('a', 1));
      const live = await sessions.open(pairOf(setCookie));
      assert.throws(() => live.set('__proto__' as string, 1), isStoreError('ERR_FORBIDDEN_KEY'));
      live.set('big', 10n);
      await assert.rejects(sessions.commit(live), isStoreError('ERR_VALUE_NOT_STORABLE'));
      assert.deepStrictEqual(await storedData(backend, table, session.id), { a: 1 });
      const foreign = await sessionsWith().open(null);
      await assert.rejects(sessions.commit(foreign), TypeError);
    });

    test("expiry: maxAge seconds after the last write, else ttl; the store methods are the adapter's", async () => {
      const users = 'ssn_fetch_users';
      await dropTable(backend, users);
      after(() => dropTable(backend, users));
      const withCookie = sessionsWith({ table: users, createTable: true, userIdKey: 'user', cookie: { maxAge: 600 } });
      await roundTrip(withCookie, null, (s) => void s.set('user', 'expiry-a'));
      const [cookieSession] = await withCookie.listByUser('expiry-a');
      assert.ok(cookieSession !== undefined && Math.abs(cookieSession.expiresAt.getTime() - (Date.now() + 600_000)) < 10_000);
      const browserSession = sessionsWith({ table: users, userIdKey: 'user', ttl: 120, cookie: {} });
      await roundTrip(browserSession, null, (s) => void s.set('user', 'expiry-b'));
      const [ttlSession] = await browserSession.listByUser('expiry-b');
      assert.ok(ttlSession !== undefined && Math.abs(ttlSession.expiresAt.getTime() - (Date.now() + 120_000)) < 10_000);
      assert.equal(await browserSession.destroyByUser('expiry-b'), 1);
      assert.deepStrictEqual(await browserSession.listByUser('expiry-b'), []);
      assert.ok((await withCookie.stats()).live >= 1);
      assert.ok(['atomic', 'optimistic', 'pessimistic'].includes(await withCookie.lockingMode()));
    });

    test("the store's events reach the adapter's listeners: created and destroyed, named by the session's public handle", async () => {
      const sessions = sessionsWith();
      const events: [string, unknown][] = [];
      sessions.on('created', (event) => events.push(['created', event]));
      sessions.on('destroyed', (event) => events.push(['destroyed', event]));
      const { session, setCookie } = await roundTrip(sessions, null, (s) => void s.set('n', 1));
      await roundTrip(sessions, pairOf(setCookie), (s) => s.destroy());
      const handle = (events[0]?.[1] as { handle?: string } | undefined)?.handle;
      assert.match(handle ?? '', /^[\w-]{22}$/);
      assert.ok(!session.id.includes(handle as string));
      assert.deepStrictEqual(events, [
        ['created', { handle, userId: undefined }],
        ['destroyed', { handle, userId: undefined, reason: 'destroy' }],
      ]);
    });

    test('commit onto Headers, onto a Response, onto an immutable Response (a copy)', async () => {
      const sessions = sessionsWith();
      const first = await sessions.open(null);
      first.set('a', 1);
      const headers = new Headers();
      await sessions.commit(first, headers);
      assert.equal(headers.getSetCookie().length, 1);
      const second = await sessions.open(null);
      second.set('a', 1);
      const response = new Response('ok');
      assert.equal(await sessions.commit(second, response), response);
      assert.equal(response.headers.getSetCookie().length, 1);
      const third = await sessions.open(null);
      third.set('a', 1);
      const redirect = Response.redirect('http://example.test/next', 303);
      assert.throws(() => redirect.headers.append('x', 'y'), TypeError, 'Response.redirect has immutable headers');
      const copied = await sessions.commit(third, redirect);
      assert.equal(copied.status, 303);
      assert.equal(copied.headers.get('location'), 'http://example.test/next');
      assert.equal(copied.headers.getSetCookie().length, 1);
      const unchanged = await sessions.open(null);
      const plain = new Response('ok');
      assert.equal(await sessions.commit(unchanged, plain), plain);
      assert.equal(plain.headers.getSetCookie().length, 0);
    });

    test('the id header: a new session sends its id in both, a header request is answered in the header alone, the header names the session over a cookie', async () => {
      const sessions = sessionsWith({ header: 'X-Session-Id' });
      const request = (headers: Record<string, string>) => new Request('http://example.test/', { headers });
      // A cookie client's new session: the cookie, and the id in the header (how an API client gets its first one).
      const first = await sessions.open(request({}));
      first.set('n', 1);
      const firstHeaders = new Headers();
      await sessions.commit(first, firstHeaders);
      const signed = firstHeaders.get('x-session-id') ?? '';
      assert.ok(signed.startsWith(`s:${first.id}.`), signed);
      assert.equal(decodeURIComponent(pairOf(firstHeaders.getSetCookie()[0]).slice('sid='.length)), signed);
      assert.deepEqual(await storedData(backend, table, first.id), { n: 1 });

      // The header names the session; nothing to renew: no header, no cookie in the answer.
      const again = await sessions.open(request({ 'x-session-id': signed }));
      assert.equal(again.id, first.id);
      assert.equal(again.get('n'), 1);
      again.set('n', 2);
      const againHeaders = new Headers();
      await sessions.commit(again, againHeaders);
      assert.deepEqual([...againHeaders], []);
      assert.deepEqual(await storedData(backend, table, first.id), { n: 2 });

      // A cookie beside the header is not looked at: the header alone names the session.
      const other = await roundTrip(sessions, null, (s) => void s.set('other', true));
      const both = await sessions.open(request({ 'x-session-id': signed, cookie: pairOf(other.setCookie) }));
      assert.equal(both.id, first.id);

      // Regenerated through the header: the new id comes back in the header, never as a cookie.
      both.set('before', true);
      await both.regenerate();
      both.set('user', 'u1');
      const rotated = new Headers();
      await sessions.commit(both, rotated);
      assert.deepEqual(rotated.getSetCookie(), []);
      const renewed = rotated.get('x-session-id') ?? '';
      assert.ok(renewed.startsWith(`s:${both.id}.`) && both.id !== first.id, renewed);
      assert.equal(await storedData(backend, table, first.id), undefined);
      assert.deepEqual(await storedData(backend, table, both.id), { user: 'u1' });

      // Destroyed through the header: an empty header says the session ended.
      const ending = await sessions.open(request({ 'x-session-id': renewed }));
      assert.equal(ending.get('user'), 'u1');
      await ending.destroy();
      const ended = new Response('bye');
      await sessions.commit(ending, ended);
      assert.equal(ended.headers.get('x-session-id'), '');
      assert.deepEqual(ended.headers.getSetCookie(), []);
      assert.equal(await storedData(backend, table, both.id), undefined);
    });

    test('the id header: a tampered, unsigned or empty value names no session and sets no cookie; a new session is answered in the header', async () => {
      const sessions = sessionsWith({ header: 'x-session-id' });
      const stored = await roundTrip(sessions, null, (s) => void s.set('secret', 'kept'));
      const { id } = stored.session;
      const signature = decodeURIComponent(pairOf(stored.setCookie).slice('sid='.length)).split('.').pop() as string;
      for (const value of [`s:${id}.${signature.slice(1)}x`, id, `s:${id}`, '', 's:../../etc.passwd', `s:${id}.${signature}%`]) {
        const session = await sessions.open(new Request('http://example.test/', { headers: { 'x-session-id': value } }));
        assert.notEqual(session.id, id, `${JSON.stringify(value)} must not name the session`);
        assert.equal(session.get('secret'), undefined);
        session.set('visitor', true);
        const headers = new Headers();
        await sessions.commit(session, headers);
        assert.deepEqual(headers.getSetCookie(), [], JSON.stringify(value));
        assert.ok(headers.get('x-session-id')?.startsWith(`s:${session.id}.`), JSON.stringify(value));
      }
      assert.deepEqual(await storedData(backend, table, id), { secret: 'kept' });
    });

    describe('over HTTP (node:http, withSession)', () => {
      let sessions: FetchSessionStore;
      let server: RunningServer;
      before(async () => {
        sessions = sessionsWith();
        server = await listen(
          createServer(
            fetchListener(
              sessions.withSession(async (request, session) => {
                const { pathname } = new URL(request.url);
                if (pathname === '/flash') {
                  session.flash(`notice_${new URL(request.url).searchParams.get('n')}`, 'hello');
                  return Response.json({ ok: true });
                }
                if (pathname === '/flashes') {
                  const seen = Object.keys(session.data)
                    .filter((key) => key.startsWith('__flash_'))
                    .map((key) => key.slice('__flash_'.length, -2));
                  return Response.json({ seen: seen.filter((name) => session.get(name) !== undefined).sort() });
                }
                if (pathname === '/set') {
                  session.set('value', new URL(request.url).searchParams.get('v'));
                  return Response.json({ ok: true });
                }
                if (pathname === '/unstorable') {
                  session.set('big', 10n);
                  return Response.json({ ok: true });
                }
                if (pathname === '/throw') {
                  session.set('thrown', true);
                  throw new Error('handler failed');
                }
                return Response.json({ value: session.get('value') ?? null });
              }),
            ),
          ),
        );
      });
      after(() => server.close());

      const send = async (cookie: string, path: string, method = 'POST') => fetch(server.base + path, { method, headers: { cookie } });

      test('flashes set by concurrent requests are each seen exactly once', async () => {
        const start = await send('', '/set?v=1');
        const cookie = pairOf(start.headers.getSetCookie()[0]);
        const names = Array.from({ length: 10 }, (_, i) => String(i));
        const answers = await Promise.all(names.map((n) => send(cookie, `/flash?n=${n}`)));
        assert.ok(answers.every((answer) => answer.status === 200 && answer.headers.getSetCookie().length === 0));
        const seen = (await (await send(cookie, '/flashes', 'GET')).json()) as { seen: string[] };
        assert.deepStrictEqual(seen.seen, names.map((n) => `notice_${n}`).sort());
        assert.deepStrictEqual(((await (await send(cookie, '/flashes', 'GET')).json()) as { seen: string[] }).seen, []);
      });

      test('the response leaves only after the commit; a failing commit answers 500, a throwing handler commits nothing', async () => {
        const start = await send('', '/set?v=before');
        const cookie = pairOf(start.headers.getSetCookie()[0]);
        const id = decodeURIComponent(cookie.slice(4))
          .slice(2)
          .replace(/\.[^.]*$/, '');
        const held = holdSaves(sessions.store);
        let answered = false;
        const answer = send(cookie, '/set?v=after').then((response) => {
          answered = true;
          return response;
        });
        await held.arrived;
        await delay(100);
        assert.equal(answered, false, 'no answer while the write is held');
        held.release();
        assert.equal((await answer).status, 200);
        assert.equal((await storedData(backend, table, id))?.['value'], 'after', 'committed when the answer arrives');

        const failed = await send(cookie, '/unstorable');
        assert.equal(failed.status, 500);
        assert.match(await failed.text(), /BigInt|storable|cannot/i);
        assert.equal((await send(cookie, '/throw')).status, 500);
        assert.equal((await storedData(backend, table, id))?.['thrown'], undefined);
      });
    });
  });
}
