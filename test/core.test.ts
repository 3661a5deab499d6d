/**
 * The merge rule and the JSON boundary, without a database. The database
 * suites prove that every backend and locking mode reaches the same results.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import './support/random.js';
import { applyDelta, computeDelta, isEmptyDelta, SessionStoreError, toJsonValue, type JsonObject, type JsonValue } from '../src/index.js';
import { deltaFromJson, deltaToJson, diffLive } from '../src/core/delta.js';
import { parseStoredSession } from '../src/core/json.js';
import { planMergePatch } from '../src/backends/sql/merge-patch.js';
import { parseTableName } from '../src/backends/connection-options.js';
import { parseConnectionUrl, resolveOptions } from '../src/options.js';

const key = fc
  .oneof(fc.constantFrom('a', 'b', 'c', 'cart', 'items', 'x.y', 'we"ird', 'back\\slash', 'é😀', ''), fc.string({ maxLength: 6 }))
  .filter((k) => !['__proto__', 'constructor', 'prototype'].includes(k) && !k.includes('\u0000') && k.isWellFormed());
const leaf = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.string({ maxLength: 5 }).filter((s) => !s.includes('\u0000') && s.isWellFormed()),
);
const { json } = fc.letrec((tie) => ({
  json: fc.oneof({ depthSize: 'small' }, leaf, fc.array(tie('json'), { maxLength: 3 }), tie('object')),
  object: fc.dictionary(key, tie('json'), { maxKeys: 4, noNullPrototype: true }),
}));
const session = fc.dictionary(key, json, { maxKeys: 5, noNullPrototype: true }) as fc.Arbitrary<JsonObject>;

function expectCode(code: string): (error: unknown) => boolean {
  return (error) => error instanceof SessionStoreError && error.code === code;
}

describe('delta and merge', () => {
  test('applying the delta to the loaded session gives the current session', () => {
    fc.assert(
      fc.property(session, session, (loaded, current) => {
        assert.deepStrictEqual(applyDelta(loaded, computeDelta(loaded, current)), current);
      }),
      { numRuns: 500 },
    );
  });

  test('the delta from a live session equals the delta from its JSON form', () => {
    const live = fc.dictionary(key, fc.oneof(json, fc.date({ noInvalidDate: true }), fc.constant(undefined)), { maxKeys: 5, noNullPrototype: true });
    fc.assert(
      fc.property(session, live, (loaded, current) => {
        assert.deepStrictEqual(diffLive(loaded, current), computeDelta(loaded, toJsonValue(current) as JsonObject));
      }),
      { numRuns: 500 },
    );
    fc.assert(
      fc.property(session, (loaded) => {
        // A copy with one changed value somewhere, and one untouched.
        const changed: Record<string, unknown> = structuredClone(loaded);
        changed['extra'] = { when: new Date(0), list: [1, undefined] };
        assert.deepStrictEqual(diffLive(loaded, changed), computeDelta(loaded, toJsonValue(changed) as JsonObject));
        assert.ok(isEmptyDelta(diffLive(loaded, structuredClone(loaded))));
      }),
    );
  });

  test('the delta from a live session refuses what cannot be stored, wherever it changed', () => {
    const loaded = { a: { b: 1 }, list: [1] };
    const cyclic: Record<string, unknown> = { a: { b: 1 } };
    (cyclic['a'] as Record<string, unknown>)['self'] = cyclic;
    for (const [live, code] of [
      [{ a: { b: 1n } }, 'ERR_VALUE_NOT_STORABLE'],
      [{ a: { b: 1 }, list: [Number.NaN] }, 'ERR_VALUE_NOT_STORABLE'],
      [{ a: { b: 1, f: () => 1 } }, 'ERR_VALUE_NOT_STORABLE'],
      [cyclic, 'ERR_VALUE_NOT_STORABLE'],
      [JSON.parse('{"a":{"b":1,"__proto__":{"x":1}}}'), 'ERR_FORBIDDEN_KEY'],
      [{ a: { b: 1 }, m: new Map() }, 'ERR_VALUE_NOT_STORABLE'],
    ] as const) {
      assert.throws(() => diffLive(loaded, live), expectCode(code));
    }
  });

  test('an unchanged session has an empty delta', () => {
    fc.assert(
      fc.property(session, (loaded) => {
        assert.ok(isEmptyDelta(computeDelta(loaded, structuredClone(loaded))));
      }),
    );
  });

  test('applying a delta leaves its target untouched', () => {
    fc.assert(
      fc.property(session, session, session, (loaded, current, latest) => {
        const before = structuredClone(latest);
        applyDelta(latest, computeDelta(loaded, current));
        assert.deepStrictEqual(latest, before);
      }),
    );
  });

  test('changes at other paths survive the merge; the later save wins only at its paths', () => {
    const loaded = { cart: { items: [1] }, user: 'ann', keep: true, drop: 1 };
    const first = { cart: { items: [1, 2] }, user: 'ann', keep: true, drop: 1, flash: 'saved' };
    const second = { cart: { items: [1], coupon: 'X' }, user: 'bob', keep: true };
    const afterFirst = applyDelta(loaded, computeDelta(loaded, first));
    const afterBoth = applyDelta(afterFirst, computeDelta(loaded, second));
    assert.deepStrictEqual(afterBoth, { cart: { items: [1, 2], coupon: 'X' }, user: 'bob', keep: true, flash: 'saved' });
  });

  test('new objects under the same new key merge by path; arrays are replaced whole', () => {
    const loaded = { list: [1, 2, 3] };
    const a = applyDelta(loaded, computeDelta(loaded, { list: [1, 2, 3], prefs: { theme: 'dark' } }));
    const b = applyDelta(a, computeDelta(loaded, { list: [9], prefs: { lang: 'en' } }));
    assert.deepStrictEqual(b, { list: [9], prefs: { theme: 'dark', lang: 'en' } });
  });

  test('disjoint deltas commute', () => {
    fc.assert(
      fc.property(session, session, session, (base, left, right) => {
        const l = { ...base, L: left } as JsonObject;
        const r = { ...base, R: right } as JsonObject;
        const deltaL = computeDelta(base, l);
        const deltaR = computeDelta(base, r);
        assert.deepStrictEqual(applyDelta(applyDelta(base, deltaL), deltaR), applyDelta(applyDelta(base, deltaR), deltaL));
      }),
      { numRuns: 200 },
    );
  });

  test('the delta survives its JSON encoding', () => {
    fc.assert(
      fc.property(session, session, (loaded, current) => {
        const delta = computeDelta(loaded, current);
        assert.deepStrictEqual(applyDelta(loaded, deltaFromJson(JSON.parse(JSON.stringify(deltaToJson(delta))) as JsonObject)), current);
      }),
    );
  });

  test('forbidden keys in a delta never reach a prototype', () => {
    const delta = deltaFromJson(
      JSON.parse(
        '{"s":{"__proto__":{"o":{"s":{"polluted":{"v":true}},"u":[]}},"constructor":{"o":{"s":{"prototype":{"o":{"s":{"polluted":{"v":true}},"u":[]}}},"u":[]}}},"u":["__proto__"]}',
      ) as JsonObject,
    );
    const result = applyDelta({}, delta);
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
    assert.equal(Object.getPrototypeOf(result), Object.prototype);
    assert.deepStrictEqual(Object.keys(result), []);
  });

  test('the merge-patch plan (MySQL, SQLite) sends nulls and whole objects by path, and refuses keys its path syntax cannot carry', () => {
    const plan = planMergePatch(computeDelta({}, { a: { b: null, c: 1 } }));
    assert.ok(plan);
    assert.deepStrictEqual(JSON.parse(plan.mergePatch), { a: { c: 1 } });
    assert.deepStrictEqual(plan.replacements, [{ path: '$."a"."b"', json: 'null' }]);
    assert.equal(planMergePatch(computeDelta({}, { 'q"': { b: null } })), null);
    assert.ok(planMergePatch(computeDelta({}, { 'q"': { b: 1 } })));
  });
});

describe('what can be stored', () => {
  test('JSON-compatible values round-trip exactly', () => {
    fc.assert(
      fc.property(session, (value) => {
        assert.deepStrictEqual(toJsonValue(value), value);
      }),
    );
  });

  test('negative zero becomes 0, as JSON.stringify writes it (JSON has no -0)', () => {
    assert.ok(Object.is(toJsonValue(-0), 0));
    assert.ok(Object.is((toJsonValue({ a: [{ '': -0 }] }) as { a: [{ '': number }] }).a[0][''], 0));
    assert.equal(isEmptyDelta(diffLive({ n: 0 }, { n: -0 })), true);
  });

  test('Dates become ISO strings, undefined properties vanish, undefined array items become null', () => {
    const at = new Date('2026-01-02T03:04:05.000Z');
    assert.deepStrictEqual(toJsonValue({ at, gone: undefined, list: [undefined, 1] }), { at: at.toISOString(), list: [null, 1] });
  });

  const refused: [string, () => unknown, string][] = [
    [
      'a cycle',
      () => {
        const o: Record<string, unknown> = {};
        o['self'] = { o };
        return o;
      },
      'ERR_VALUE_NOT_STORABLE',
    ],
    ['a BigInt', () => ({ n: 10n }), 'ERR_VALUE_NOT_STORABLE'],
    ['a function', () => ({ f: () => 1 }), 'ERR_VALUE_NOT_STORABLE'],
    ['a symbol', () => ({ s: Symbol('x') }), 'ERR_VALUE_NOT_STORABLE'],
    ['a Map', () => ({ m: new Map() }), 'ERR_VALUE_NOT_STORABLE'],
    ['a Set', () => ({ s: new Set([1]) }), 'ERR_VALUE_NOT_STORABLE'],
    ['NaN', () => ({ n: Number.NaN }), 'ERR_VALUE_NOT_STORABLE'],
    ['Infinity', () => ({ n: [Infinity] }), 'ERR_VALUE_NOT_STORABLE'],
    ['a NUL character', () => ({ s: 'a\u0000b' }), 'ERR_VALUE_NOT_STORABLE'],
    ['a lone surrogate', () => ({ s: '\ud800' }), 'ERR_VALUE_NOT_STORABLE'],
    ['a typed array', () => ({ b: new Uint8Array(2) }), 'ERR_VALUE_NOT_STORABLE'],
    ['__proto__', () => JSON.parse('{"a":{"__proto__":{"polluted":true}}}'), 'ERR_FORBIDDEN_KEY'],
    ['constructor', () => ({ constructor: { prototype: { polluted: true } } }), 'ERR_FORBIDDEN_KEY'],
    ['prototype', () => ({ deep: [{ prototype: 1 }] }), 'ERR_FORBIDDEN_KEY'],
  ];
  for (const [what, make, code] of refused) {
    test(`${what} is refused with ${code}, naming the path`, () => {
      assert.throws(
        () => toJsonValue(make()),
        (error: unknown) => expectCode(code)(error) && /session/.test((error as Error).message),
      );
    });
  }

  test('a shared (not cyclic) reference is fine', () => {
    const shared = { x: 1 };
    assert.deepStrictEqual(toJsonValue({ a: shared, b: shared }), { a: { x: 1 }, b: { x: 1 } });
  });

  test('stored rows that are not JSON objects are corrupt; forbidden keys in them are dropped', () => {
    for (const text of ['', '{', '[]', '1', 'null', '"s"', null, 42]) {
      assert.throws(() => parseStoredSession(text), expectCode('ERR_CORRUPT_ROW'));
    }
    const parsed = parseStoredSession('{"a":{"__proto__":{"polluted":true},"b":1},"constructor":{"prototype":{"polluted":true}}}');
    assert.deepStrictEqual(parsed, { a: { b: 1 } });
    assert.equal(({} as Record<string, unknown>)['polluted'], undefined);
  });
});

describe('options', () => {
  test('URLs of each dialect', () => {
    assert.deepStrictEqual(parseConnectionUrl('sqlite::memory:'), { dialect: 'sqlite', filename: ':memory:' });
    assert.deepStrictEqual(parseConnectionUrl('sqlite:./sessions.db'), { dialect: 'sqlite', filename: './sessions.db' });
    assert.deepStrictEqual(parseConnectionUrl('postgresql://u@h/db'), { dialect: 'postgres', url: 'postgresql://u@h/db' });
    assert.deepStrictEqual(parseConnectionUrl('mariadb://root@h:3306/test'), { dialect: 'mysql', url: 'mysql://root@h:3306/test' });
  });

  test('table names are identifiers or schema.identifier, nothing else', () => {
    assert.deepStrictEqual(parseTableName('app.sessions'), { schema: 'app', name: 'sessions' });
    for (const bad of ['sessions; DROP TABLE users', 'a.b.c', '"x"', '', '1abc', 'a-b', 's'.repeat(64)]) {
      assert.throws(() => parseTableName(bad), expectCode('ERR_INVALID_OPTION'));
    }
  });

  const invalid: [string, Record<string, unknown>][] = [
    ['url', {}],
    ['url', { url: 'ftp://localhost' }],
    ['locking', { url: 'sqlite::memory:', locking: 'optimistc' }],
    ['ttl', { url: 'sqlite::memory:', ttl: -1 }],
    ['ttl', { url: 'sqlite::memory:', ttl: '60' }],
    ['touchAfter', { url: 'sqlite::memory:', touchAfter: Number.NaN }],
    ['maxSize', { url: 'sqlite::memory:', maxSize: 1.5 }],
    ['poolSize', { url: 'sqlite::memory:', poolSize: 0 }],
    ['createTable', { url: 'sqlite::memory:', createTable: 'yes' }],
    ['tabel', { url: 'sqlite::memory:', tabel: 'x' }],
    ['table', { url: 'sqlite::memory:', table: 'sessions; DROP TABLE users' }],
  ];
  for (const [name, options] of invalid) {
    test(`an invalid "${name}" is refused at construction, by name`, () => {
      assert.throws(
        () => resolveOptions(options as never),
        (error: unknown) => expectCode('ERR_INVALID_OPTION')(error) && (error as Error).message.includes(`"${name}"`),
      );
    });
  }

  test('defaults', () => {
    const options = resolveOptions({ url: 'sqlite::memory:' });
    assert.equal(options.ttlSeconds, 1800);
    assert.equal(options.touchAfterMs, 60_000);
    assert.equal(options.table.name, 'sessions');
    assert.equal(options.locking, undefined);
    assert.equal(options.hashSessionIds, true);
  });
});

void (null as unknown as JsonValue);
