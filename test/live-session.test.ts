/**
 * A handle's data copies each top-level object the first time the request
 * reads it (src/core/live-session.ts): a key the request never read is left
 * out of its save, so a request pays for the keys it touches. These tests
 * hold that to the merge rule on every backend and locking mode: what a
 * request changes is saved however it changed it, what it only read or
 * never touched is not written, and what other requests changed meanwhile
 * survives.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { inspect } from 'node:util';
import { hashSessionId, SessionStore, type JsonObject, type SessionHandle } from '../src/index.js';
import { backendsForThisFile, dropTable, LOCKING_MODES } from './support/backends.js';

const backends = await backendsForThisFile();

/** A session of about 40 KB: a user, preferences and a cart of many small objects. */
function bigSession(): JsonObject {
  const cart: JsonObject[] = [];
  for (let n = 0; n < 800; n++) cart.push({ sku: `SKU-${n}`, qty: (n % 3) + 1, price: 1999 + n });
  return { user: { id: 7, name: 'Ann', roles: ['customer'] }, prefs: { lang: 'en', theme: 'dark' }, cart, hits: 0, note: 'hello' };
}

for (const backend of backends) {
  for (const locking of LOCKING_MODES) {
    describe(`${backend.name} / ${locking}`, () => {
      const table = `ssn_live_${locking}`;
      let store: SessionStore;
      let counter = 0;
      const newSid = (): string => `live-${locking}-${process.pid}-${++counter}-${Math.random().toString(36).slice(2)}`;
      const rows = backend.rows(table);
      /** The session as stored now. */
      const stored = async (sid: string): Promise<JsonObject> => {
        const loaded = await store.load(sid);
        assert.ok(loaded, 'the session is stored');
        return loaded.session;
      };
      const rawWrite = (sid: string, data: JsonObject): Promise<void> => rows.rewrite(hashSessionId(sid), JSON.stringify(data));

      before(async () => {
        await dropTable(backend, table);
        store = new SessionStore({ url: backend.url, table, locking, autopurge: false });
        await store.createTable();
      });
      after(async () => {
        await store.close();
      });

      /** A stored session, opened as a request opens it. */
      async function opened(data: JsonObject = bigSession()): Promise<{ sid: string; handle: SessionHandle }> {
        const sid = newSid();
        const created = store.create(sid);
        Object.assign(created.data, structuredClone(data));
        await created.commit();
        const handle = await store.open(sid);
        assert.ok(handle);
        return { sid, handle };
      }

      test('a nested object changed in place after a first read is saved', async () => {
        const { sid, handle } = await opened();
        const cart = handle.data['cart'] as JsonObject[];
        cart.push({ sku: 'NEW', qty: 1, price: 1 });
        (cart[0] as JsonObject)['qty'] = 99;
        ((handle.data['user'] as JsonObject)['roles'] as string[]).push('admin');
        await handle.commit();
        const after = await stored(sid);
        assert.equal((after['cart'] as JsonObject[]).length, 801);
        assert.equal((after['cart'] as JsonObject[])[0]?.['qty'], 99);
        assert.deepEqual((after['user'] as JsonObject)['roles'], ['customer', 'admin']);
      });

      test('a key is one object for the whole request: read twice, changed through either read', async () => {
        const { sid, handle } = await opened();
        const first = handle.data['prefs'] as JsonObject;
        assert.equal(handle.data['prefs'], first);
        first['theme'] = 'light';
        assert.equal((handle.data['prefs'] as JsonObject)['theme'], 'light');
        await handle.commit();
        assert.deepEqual((await stored(sid))['prefs'], { lang: 'en', theme: 'light' });
      });

      test('a key the request never read keeps what another request saved meanwhile', async () => {
        const { sid, handle } = await opened();
        const other = await store.open(sid);
        assert.ok(other);
        (other.data['cart'] as JsonObject[]).length = 2;
        other.data['note'] = 'from the other request';
        await other.commit();
        handle.data['hits'] = 1;
        await handle.commit();
        const after = await stored(sid);
        assert.equal(after['hits'], 1);
        assert.equal((after['cart'] as JsonObject[]).length, 2);
        assert.equal(after['note'], 'from the other request');
      });

      test('a key only read is not written: the change another request saved to it meanwhile survives', async () => {
        const { sid, handle } = await opened();
        // Read deeply, as a template would, and changed nowhere.
        assert.equal(JSON.stringify(handle.data).length > 30_000, true);
        const read = handle.data['cart'] as JsonObject[];
        assert.equal(read.length, 800);
        const meanwhile = { ...bigSession(), cart: [{ sku: 'ONLY', qty: 1, price: 5 }] };
        await rawWrite(sid, meanwhile);
        await handle.commit();
        assert.deepEqual((await stored(sid))['cart'], meanwhile.cart);
      });

      test('deleting, replacing and adding keys never read are saved', async () => {
        const { sid, handle } = await opened();
        delete handle.data['cart'];
        handle.data['prefs'] = { lang: 'fr' };
        Object.defineProperty(handle.data, 'user', { value: { id: 8 }, enumerable: true, configurable: true, writable: true });
        handle.data['added'] = [1, 2];
        await handle.commit();
        const after = await stored(sid);
        assert.equal(Object.hasOwn(after, 'cart'), false);
        assert.deepEqual(after['prefs'], { lang: 'fr' });
        assert.deepEqual(after['user'], { id: 8 });
        assert.deepEqual(after['added'], [1, 2]);
        assert.equal(after['note'], 'hello');
      });

      test('the data looks like a plain object: keys, spread, JSON, structuredClone, in', async () => {
        const data = bigSession();
        const { handle } = await opened(data);
        assert.deepEqual(Object.keys(handle.data).sort(), Object.keys(data).sort());
        assert.equal('cart' in handle.data, true);
        assert.deepEqual({ ...handle.data }, data);
        assert.deepEqual(JSON.parse(JSON.stringify(handle.data)), data);
        assert.deepEqual(structuredClone(handle.data), data);
        assert.equal(Object.getOwnPropertyDescriptor(handle.data, 'cart')?.enumerable, true);
      });

      test('a frozen session gives one copy per key and saves nothing', async () => {
        const { sid, handle } = await opened();
        const meanwhile = { ...bigSession(), note: 'meanwhile' };
        Object.freeze(handle.data);
        const cart = handle.data['cart'] as JsonObject[];
        assert.equal(handle.data['cart'], cart);
        await rawWrite(sid, meanwhile);
        await handle.commit();
        assert.equal((await stored(sid))['note'], 'meanwhile');
      });

      test('a save in the middle of the request: later changes to keys read before or after it are saved too', async () => {
        const { sid, handle } = await opened();
        handle.data['hits'] = 1;
        await handle.commit();
        (handle.data['cart'] as JsonObject[]).splice(10);
        (handle.data['prefs'] as JsonObject)['lang'] = 'de';
        await handle.commit();
        const after = await stored(sid);
        assert.equal(after['hits'], 1);
        assert.equal((after['cart'] as JsonObject[]).length, 10);
        assert.equal((after['prefs'] as JsonObject)['lang'], 'de');
      });

      test('a value that cannot be stored, put under a key never read, is refused and nothing is written', async () => {
        const { sid, handle } = await opened();
        handle.data['user'] = { id: 10n } as never;
        await assert.rejects(handle.commit(), { code: 'ERR_VALUE_NOT_STORABLE' });
        assert.deepEqual((await stored(sid))['user'], bigSession()['user']);
      });

      test("nested objects: reading a path copies that path only, and changes at any depth are saved, beside other requests' changes", async () => {
        const { sid, handle } = await opened({ profile: bigSession(), hits: 0 });
        const other = await store.open(sid);
        assert.ok(other);
        const profile = handle.data['profile'] as JsonObject;
        assert.equal((profile['user'] as JsonObject)['name'], 'Ann');
        (profile['user'] as JsonObject)['name'] = 'Bea';
        delete (profile['prefs'] as JsonObject)['theme'];
        profile['seen'] = true;
        // The other request changes what this one never read, and a key this one reads but leaves.
        (other.data['profile'] as JsonObject)['note'] = 'other';
        ((other.data['profile'] as JsonObject)['cart'] as JsonObject[]).length = 1;
        await other.commit();
        await handle.commit();
        const after = (await stored(sid))['profile'] as JsonObject;
        assert.equal((after['user'] as JsonObject)['name'], 'Bea');
        assert.deepEqual(after['prefs'], { lang: 'en' });
        assert.equal(after['seen'], true);
        assert.equal(after['note'], 'other');
        assert.equal((after['cart'] as JsonObject[]).length, 1);
      });

      test('a nested object never read, replaced or deleted through its parent, is saved so', async () => {
        const { sid, handle } = await opened({ profile: bigSession() });
        const profile = handle.data['profile'] as JsonObject;
        profile['user'] = { id: 9 };
        delete profile['cart'];
        Object.defineProperty(profile, 'prefs', { value: { lang: 'it' }, enumerable: true, configurable: true, writable: true });
        await handle.commit();
        const after = (await stored(sid))['profile'] as JsonObject;
        assert.deepEqual(after['user'], { id: 9 });
        assert.equal(Object.hasOwn(after, 'cart'), false);
        assert.deepEqual(after['prefs'], { lang: 'it' });
      });

      test('an object moved under another key takes its keys not read yet with it, and is saved whole there', async () => {
        const { sid, handle } = await opened({
          ...bigSession(),
          a: { inner: { v: 1 }, only: { a: true } },
          b: { inner: { v: 2 }, list: [1] },
        });
        handle.data['a'] = handle.data['b'] as JsonObject;
        const swapped = { ...(handle.data['prefs'] as JsonObject) };
        handle.data['prefs'] = handle.data['user'] as JsonObject;
        handle.data['user'] = swapped;
        await handle.commit();
        const after = await stored(sid);
        assert.deepEqual(after['a'], { inner: { v: 2 }, list: [1] });
        assert.deepEqual(after['b'], { inner: { v: 2 }, list: [1] });
        assert.deepEqual(after['prefs'], bigSession()['user']);
        assert.deepEqual(after['user'], bigSession()['prefs']);
      });

      test('util.inspect shows the values, not getters, and copies nothing (an inspected key is still left out of the save)', async () => {
        const { sid, handle } = await opened({ profile: bigSession() });
        const shown = inspect(handle.data, { depth: 4 });
        assert.doesNotMatch(shown, /Getter|Setter/);
        assert.match(shown, /name: 'Ann'/);
        assert.doesNotMatch(inspect(handle.data['profile'], { depth: 4 }), /Getter|Setter/);
        const meanwhile = { profile: { ...bigSession(), note: 'meanwhile' } };
        await rawWrite(sid, meanwhile);
        handle.data['x'] = 1;
        await handle.commit();
        assert.equal(((await stored(sid))['profile'] as JsonObject)['note'], 'meanwhile');
      });

      test('20 overlapping requests, each reading the whole session and changing one key of its own, all kept', async () => {
        const { sid } = await opened();
        await Promise.all(
          Array.from({ length: 20 }, async (_, n) => {
            const handle = await store.open(sid);
            assert.ok(handle);
            JSON.stringify(handle.data);
            handle.data[`k${n}`] = n;
            await handle.commit();
          }),
        );
        const after = await stored(sid);
        for (let n = 0; n < 20; n++) assert.equal(after[`k${n}`], n, `k${n}`);
        assert.equal((after['cart'] as JsonObject[]).length, 800);
      });
    });
  }
}
