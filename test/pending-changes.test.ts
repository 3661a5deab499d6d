/**
 * Pending changes: on a table the store created, an atomic save appends its
 * delta (the database never parses the session), loads apply the deltas in
 * order, and a save that finds many folds them into the document without
 * losing what other requests appended meanwhile, or what a whole write put
 * there.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { hashSessionId, SessionStoreError, type JsonObject, type LoadedSession } from '../src/index.js';
import { deltaToJson, diffLive } from '../src/core/delta.js';
import { applyChanges, changeEntry, changesMarker, parseChanges, shouldFold } from '../src/backends/sql/pending-changes.js';
import { backendsForThisFile, CookieStore, dropTable, isStoreError, LOCAL_SQL, sql, type Backend } from './support/backends.js';

const backends = await backendsForThisFile(LOCAL_SQL);

describe('the pending-changes text', () => {
  test('a marker, then each delta in the order appended; applied in that order', () => {
    const first = diffLive({ a: 1 }, { a: 2, b: { c: 1 } });
    const second = diffLive({ a: 2, b: { c: 1 } }, { a: 2, b: { c: 2, d: [1] } });
    const text = changesMarker() + changeEntry(first) + changeEntry(second);
    assert.match(text, /^#[0-9a-z]+,\{/);
    assert.deepStrictEqual(parseChanges(text).map(deltaToJson), [deltaToJson(first), deltaToJson(second)]);
    const base = { a: 1, keep: true };
    assert.deepStrictEqual(applyChanges(base, text), { a: 2, b: { c: 2, d: [1] }, keep: true });
    assert.deepStrictEqual(base, { a: 1, keep: true }, 'the document applied to is left as it is');
  });

  test('markers differ from one run to the next', () => {
    const markers = new Set(Array.from({ length: 1000 }, changesMarker));
    assert.equal(markers.size, 1000);
    for (const marker of markers) assert.doesNotMatch(marker, /,/);
  });

  test('text that is not pending changes is a corrupt row', () => {
    for (const text of ['{"s":{},"u":[]}', '#m,{"s":', '#m,{"s":[],"u":[]}', '#m,{"s":{"a":{}},"u":[]}', '#m,{"s":{},"u":[1]}', '#m,1']) {
      assert.throws(() => parseChanges(text), isStoreError('ERR_CORRUPT_ROW'), text);
    }
  });

  test('keys that could reach a prototype are dropped from stored changes', () => {
    const session = applyChanges({}, '#m,{"s":{"__proto__":{"v":{"polluted":1}},"safe":{"v":{"constructor":{"prototype":{"x":1}},"y":2}}},"u":[]}');
    assert.deepStrictEqual(session, { safe: { y: 2 } });
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });

  test('folding starts past a quarter kilobyte plus an eighth of the document, and never waits past 16 KB', () => {
    assert.equal(shouldFold(300, 800), false);
    assert.equal(shouldFold(400, 800), true);
    assert.equal(shouldFold(5000, 40_000), false);
    assert.equal(shouldFold(6000, 40_000), true);
    assert.equal(shouldFold(16_000, 10_000_000), false);
    assert.equal(shouldFold(17_000, 10_000_000), true);
  });
});

/** The row as stored, past the store: its document and its pending changes. */
async function rawRow(backend: Backend, table: string, sid: string): Promise<{ data: JsonObject; changes: string | null }> {
  const [row] = await backend.query(sql(backend, `SELECT data, changes FROM ${table} WHERE id = ?`), [hashSessionId(sid)]);
  assert.ok(row, 'the row exists');
  const data = typeof row['data'] === 'string' ? (JSON.parse(row['data']) as JsonObject) : (row['data'] as JsonObject);
  const changes = row['changes'];
  return { data, changes: changes === null || changes === undefined ? null : String(changes) };
}

/**
 * Appends `count` changes (of 20 keys in turn) to a session's pending changes, as that many saves would have, without
 * a save folding them on the way: afterwards they are due a fold.
 */
async function pileUp(backend: Backend, table: string, sid: string, count: number): Promise<void> {
  let text = changesMarker();
  for (let index = 0; index < count; index++) {
    text += changeEntry(diffLive({}, { [`k${index % 20}`]: `value ${index} ${'x'.repeat(30)}` }));
  }
  await backend.query(sql(backend, `UPDATE ${table} SET changes = ? WHERE id = ?`), [text, hashSessionId(sid)]);
}

function expiresIn(ms = 3_600_000): JsonObject {
  return { originalMaxAge: ms, expires: new Date(Date.now() + ms).toISOString(), httpOnly: true, path: '/' };
}

for (const backend of backends) {
  describe(`${backend.name}: pending changes`, () => {
    const table = 'ssn_pending';
    let store: CookieStore;
    let other: CookieStore;
    let whole: CookieStore;
    let counter = 0;
    const newSid = (): string => `pending-${process.pid}-${++counter}`;

    before(async () => {
      await dropTable(backend, table);
      store = new CookieStore({ url: backend.url, table, createTable: true, autopurge: false });
      other = new CookieStore({ url: backend.url, table, autopurge: false });
      whole = new CookieStore({ url: backend.url, table, locking: 'pessimistic', autopurge: false });
      await store.ready();
    });
    after(async () => {
      await store.close();
      await other.close();
      await whole.close();
      await dropTable(backend, table);
    });

    test('an atomic save appends its delta with one fixed statement; the document stays as written', async () => {
      const sid = newSid();
      // Big enough that three small changes are not yet due a fold.
      const first = { cookie: expiresIn(), cart: { items: [1] }, user: 'ann', padding: 'p'.repeat(4000) };
      await store.save(sid, first);
      const counted = await backend.counted();
      const appender = new CookieStore({ connection: counted.connection, table, autopurge: false });
      try {
        const statements: string[] = [];
        for (const change of [{ user: 'bob' }, { cart: { items: [1, 2], coupon: 'X' } }, { extra: null }]) {
          const loaded = await appender.load(sid);
          assert.ok(loaded);
          counted.statements.length = 0;
          await appender.save(sid, { ...loaded.session, ...change }, loaded.state);
          assert.equal(counted.statements.length, 1);
          statements.push(counted.statements[0] as string);
        }
        assert.equal(new Set(statements).size, 1, `one statement text for every delta: ${statements.join(' | ')}`);
        assert.doesNotMatch(statements[0] as string, /json/i, 'the database parses no JSON');
      } finally {
        await appender.close();
        await counted.close();
      }
      const row = await rawRow(backend, table, sid);
      assert.deepStrictEqual(row.data, first);
      assert.equal(parseChanges(row.changes ?? '').length, 3);
      assert.deepStrictEqual((await other.load(sid))?.session, { ...first, cart: { items: [1, 2], coupon: 'X' }, user: 'bob', extra: null });
    });

    // A session over a page long too: SQLite keeps its pending changes padded (sqlite-dialect.ts, CHANGES_PADDING).
    for (const [size, filler] of [
      ['', {}],
      [', a session of 6 KB', { filler: 'f'.repeat(6000) }],
    ] as const) {
      test(`a save folds many pending changes into the document; what others appended since its load stays, in order${size}`, async () => {
        const sid = newSid();
        const first = { cookie: expiresIn(), n: 0, ...filler };
        await store.save(sid, first);
        // Another request loads before the changes pile up, so its save only appends (it has none to fold).
        const meanwhile = await other.load(sid);
        assert.ok(meanwhile);
        await pileUp(backend, table, sid, 40);
        const before = await rawRow(backend, table, sid);
        assert.ok(before.changes !== null && shouldFold(before.changes.length, JSON.stringify(before.data).length), 'the changes are due a fold');
        const folding = await store.load(sid);
        assert.ok(folding);
        // It saves after the folding request's load: its change is appended behind the ones that load saw.
        await other.save(sid, { ...meanwhile.session, n: 1, k0: 'meanwhile' }, meanwhile.state);
        assert.deepStrictEqual((await rawRow(backend, table, sid)).data, first, 'the change made meanwhile was appended, not folded');
        await store.save(sid, { ...folding.session, folded: true }, folding.state);
        const after = await rawRow(backend, table, sid);
        assert.deepStrictEqual(after.data, folding.session, 'the document is the session the folding request loaded');
        assert.equal(parseChanges(after.changes ?? '').length, 2, "the change made meanwhile, then the folding request's own");
        assert.notEqual(after.changes?.split(',')[0], before.changes.split(',')[0], 'a new run of appends');
        assert.deepStrictEqual((await other.load(sid))?.session, { ...folding.session, n: 1, k0: 'meanwhile', folded: true });
      });

      test(`a fold never undoes a whole write that came after its load${size}`, async () => {
        const sid = newSid();
        await store.save(sid, { cookie: expiresIn(), n: 0, ...filler });
        await pileUp(backend, table, sid, 40);
        const folding = await store.load(sid);
        assert.ok(folding);
        // A pessimistic save writes the whole session and empties the pending changes.
        const locked = await whole.load(sid);
        assert.ok(locked);
        await whole.save(sid, { ...locked.session, locked: 1, k1: 'rewritten' }, locked.state);
        assert.equal((await rawRow(backend, table, sid)).changes, null);
        // Then appends start a new run; one of them even repeats what the folding request loaded, text for text.
        const next = await other.load(sid);
        assert.ok(next);
        await other.save(sid, { ...next.session, after: 1 }, next.state);
        await store.save(sid, { ...folding.session, folded: true }, folding.state);
        const session = (await other.load(sid))?.session;
        assert.equal(session?.['locked'], 1);
        assert.equal(session?.['k1'], 'rewritten');
        assert.equal(session?.['after'], 1);
        assert.equal(session?.['folded'], true);
      });

      test(`of two requests folding the same changes, the later one appends only${size}`, async () => {
        const sid = newSid();
        await store.save(sid, { cookie: expiresIn(), n: 0, ...filler });
        await pileUp(backend, table, sid, 40);
        const [one, two] = (await Promise.all([store.load(sid), other.load(sid)])) as [LoadedSession, LoadedSession];
        await other.save(sid, { ...two.session, two: 2 }, two.state);
        const afterFirst = await rawRow(backend, table, sid);
        await store.save(sid, { ...one.session, one: 1 }, one.state);
        const afterSecond = await rawRow(backend, table, sid);
        assert.deepStrictEqual(afterSecond.data, afterFirst.data, 'the second fold found other changes than it loaded: the document stays');
        assert.deepStrictEqual((await store.load(sid))?.session, { ...one.session, one: 1, two: 2 });
      });

      test(`concurrent saves of different keys all survive, across folds${size}`, async () => {
        const sid = newSid();
        await store.save(sid, { cookie: expiresIn(), padding: 'p'.repeat(200), ...filler });
        const stores = [store, other];
        // Rounds of 10 overlapping requests: loads first, then saves, so each round's saves race each other and the folds.
        for (let round = 0; round < 12; round++) {
          const loads = await Promise.all(Array.from({ length: 10 }, (_, index) => (stores[index % 2] as CookieStore).load(sid)));
          await Promise.all(
            loads.map((loaded, index) =>
              (stores[index % 2] as CookieStore).save(sid, { ...loaded?.session, [`r${round}_${index}`]: `${'v'.repeat(40)}` }, loaded?.state),
            ),
          );
        }
        const session = (await store.load(sid))?.session ?? {};
        for (let round = 0; round < 12; round++)
          for (let index = 0; index < 10; index++) assert.ok(Object.hasOwn(session, `r${round}_${index}`), `r${round}_${index}`);
        const row = await rawRow(backend, table, sid);
        assert.ok((row.changes ?? '').length < 16_384 + 10 * 200, 'folds kept the pending changes short');
      });
    }

    test("the pending changes of a session over a page long are padded: small appends keep the row's size", {
      skip: backend.dialect === 'sqlite' ? false : 'SQLite only',
    }, async () => {
      // SQLite writes every overflow page of a row again when the row's size changes, and only the pages that differ
      // when it keeps it: appends that fill padding write a page or two of a 40 KB session, not ten.
      const sid = newSid();
      await store.save(sid, { cookie: expiresIn(), cart: Array.from({ length: 600 }, (_, index) => ({ sku: `item-${index}`, quantity: index })) });
      const handle = await store.open(sid);
      assert.ok(handle);
      const stored = async (): Promise<{ bytes: number; text: string }> => {
        const [row] = await backend.query(`SELECT changes, length(CAST(changes AS BLOB)) AS bytes FROM ${table} WHERE id = ?`, [hashSessionId(sid)]);
        return { bytes: Number(row?.['bytes']), text: String(row?.['changes']) };
      };
      // About a sixteenth of the document, as a power of two.
      const unit = 1024;
      const sizes: number[] = [];
      for (let n = 1; n <= 12; n++) {
        // Characters of two, three and four bytes in UTF-8: the padding counts bytes, as the row does.
        handle.data['note'] = `${n} é ✓ 😀`;
        await handle.commit();
        const { bytes, text } = await stored();
        const unpadded = Buffer.byteLength(text.trimEnd());
        assert.equal(bytes, (Math.floor(unpadded / unit) + 1) * unit, `${unpadded} bytes of changes padded to the next multiple of ${unit}`);
        assert.equal(parseChanges(text).length, n);
        sizes.push(bytes);
      }
      assert.equal(sizes[1], sizes[0], `the second append filled the padding of the first: ${sizes.join(', ')}`);
      assert.ok(new Set(sizes).size <= 3, `twelve appends grew the row at most twice: ${sizes.join(', ')}`);
      assert.equal((await other.load(sid))?.session['note'], '12 é ✓ 😀');
    });

    test('a request that saves again and again without loading has its changes folded in: they stay short', async () => {
      const sid = newSid();
      await store.save(sid, { cookie: expiresIn(), n: 0 });
      const handle = await store.open(sid);
      assert.ok(handle);
      let longest = 0;
      for (let n = 1; n <= 300; n++) {
        handle.data['n'] = n;
        handle.data[`k${n % 7}`] = 'v'.repeat(n % 13);
        await handle.commit();
        longest = Math.max(longest, (await rawRow(backend, table, sid)).changes?.length ?? 0);
      }
      assert.ok(longest < 1024, `pending changes reached ${longest} characters`);
      const session = (await other.load(sid))?.session;
      assert.equal(session?.['n'], 300);
      assert.equal(session?.['k6'], 'v'.repeat(300 % 13));
    });

    test('pending changes that cannot be read make a corrupt row, reported as such', async () => {
      const sid = newSid();
      await store.save(sid, { cookie: expiresIn(), a: 1 });
      await backend.query(sql(backend, `UPDATE ${table} SET changes = ? WHERE id = ?`), ['#m,{"s":', hashSessionId(sid)]);
      await assert.rejects(
        store.load(sid),
        (error: unknown) => error instanceof SessionStoreError && error.code === 'ERR_CORRUPT_ROW' && /pending changes/.test(error.message),
      );
      // A whole write (a new session under the same id) replaces them.
      await store.save(sid, { cookie: expiresIn(), a: 2 });
      assert.deepStrictEqual((await store.load(sid))?.session['a'], 2);
    });

    test('listing and finding sessions apply their pending changes', async () => {
      const listed = new CookieStore({ url: backend.url, table: `${table}_users`, createTable: true, autopurge: false, userIdKey: 'user.id' });
      try {
        const sid = newSid();
        await listed.save(sid, { cookie: expiresIn(), user: { id: 'u-pending' }, a: 1 });
        const loaded = await listed.load(sid);
        assert.ok(loaded);
        await listed.save(sid, { ...loaded.session, a: 2 }, loaded.state);
        assert.deepStrictEqual(
          (await listed.listByUser('u-pending')).map(({ session }) => session['a']),
          [2],
        );
        assert.ok((await listed.all()).some((session) => session['a'] === 2));
      } finally {
        await listed.close();
        await dropTable(backend, `${table}_users`);
      }
    });
  });
}
