/**
 * The per-request values adapters carry on framework objects (a session
 * object's handle, a request's loads): invisible to the application and to
 * JSON, and kept for objects that cannot take a property.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ObjectSlot } from '../src/adapters/shared/object-slot.js';

describe('ObjectSlot', () => {
  test('holds a value per object, which JSON, keys, for...in, spreads and Object.assign leave out', () => {
    const slot = new ObjectSlot<{ id: number }>('test');
    const session = { user: 'ada', cart: [1, 2] };
    const value = { id: 1 };
    assert.equal(slot.get(session), undefined);
    assert.equal(slot.has(session), false);
    slot.set(session, value);
    assert.equal(slot.get(session), value);
    assert.equal(slot.has(session), true);
    assert.equal(JSON.stringify(session), '{"user":"ada","cart":[1,2]}');
    assert.deepEqual(Object.keys(session), ['user', 'cart']);
    const seen: string[] = [];
    for (const key in session) seen.push(key);
    assert.deepEqual(seen, ['user', 'cart']);
    assert.equal(slot.get({ ...session }), undefined);
    assert.equal(slot.get(Object.assign({}, session)), undefined);
    assert.deepEqual(session, { user: 'ada', cart: [1, 2] });
  });

  test('a second set replaces the value; delete removes it', () => {
    const slot = new ObjectSlot<string>('test');
    const target = {};
    slot.set(target, 'first');
    slot.set(target, 'second');
    assert.equal(slot.get(target), 'second');
    slot.delete(target);
    assert.equal(slot.get(target), undefined);
    assert.deepEqual(Reflect.ownKeys(target), []);
  });

  test('slots are independent, even on the same object', () => {
    const one = new ObjectSlot<string>('same name');
    const two = new ObjectSlot<string>('same name');
    const target = {};
    one.set(target, 'one');
    assert.equal(two.get(target), undefined);
    two.set(target, 'two');
    assert.equal(one.get(target), 'one');
    assert.equal(two.get(target), 'two');
  });

  test('frozen and sealed objects keep their value too', () => {
    const slot = new ObjectSlot<string>('test');
    const frozen = Object.freeze({ a: 1 });
    const sealed = Object.seal({ b: 2 });
    slot.set(frozen, 'frozen');
    slot.set(sealed, 'sealed');
    assert.equal(slot.get(frozen), 'frozen');
    assert.equal(slot.get(sealed), 'sealed');
    assert.equal(slot.get({ a: 1 }), undefined);
    slot.delete(frozen);
    assert.equal(slot.get(frozen), undefined);
  });
});
