/**
 * The diagnostics channels: what an observer (the OpenTelemetry
 * instrumentation, or anyone) is told of each load, save, destroy and purge,
 * and of the connection going away and coming back, on every backend; and
 * that nothing in a message names the session id, the stored key or the data.
 */
import assert from 'node:assert/strict';
import { subscribe, tracingChannel, unsubscribe } from 'node:diagnostics_channel';
import { after, before, describe, test } from 'node:test';
import { hashSessionId, SessionStore, type JsonObject } from '../src/index.js';
import { publicHandle } from '../src/core/session-id.js';
import { backendsForThisFile, dropTable, LOCKING_MODES } from './support/backends.js';
import { startTcpProxy } from './support/tcp-proxy.js';

const backends = await backendsForThisFile();

type Message = Record<string, unknown>;

/** Records what each tracing channel publishes, as the messages stand once the operation ended (or failed). */
function recordOperations(): { finished: Map<string, Message[]>; started: Map<string, Message[]>; stop: () => void } {
  const finished = new Map<string, Message[]>();
  const started = new Map<string, Message[]>();
  const stops: (() => void)[] = [];
  for (const operation of ['load', 'save', 'destroy', 'purge']) {
    const channel = tracingChannel(`smart-session-store:${operation}`);
    const record = (into: Map<string, Message[]>) => (message: unknown) => {
      const list = into.get(operation) ?? [];
      list.push({ ...(message as Message) });
      into.set(operation, list);
    };
    const handlers = {
      start: record(started),
      end: () => undefined,
      asyncStart: () => undefined,
      asyncEnd: record(finished),
      error: record(finished),
    };
    channel.subscribe(handlers);
    stops.push(() => channel.unsubscribe(handlers));
  }
  return { finished, started, stop: () => stops.forEach((stop) => void stop()) };
}

for (const backend of backends) {
  describe(`${backend.name}: diagnostics channels`, () => {
    const table = 'ssn_tracing';
    const tables = [table, ...LOCKING_MODES.map((locking) => `${table}_${locking}`)];
    before(() => Promise.all(tables.map((name) => dropTable(backend, name))));
    after(() => Promise.all(tables.map((name) => dropTable(backend, name))));

    for (const locking of LOCKING_MODES) {
      test(`${locking}: load, save (created, data, expiry, nothing, gone), destroy and purge each tell what they did, naming the session by its handle only`, async () => {
        const store = new SessionStore({ url: backend.url, table: `${table}_${locking}`, createTable: true, locking, autopurge: false, touchAfter: 0 });
        const recorded = recordOperations();
        try {
          const sid = `traced-${locking}-secret-id`;
          await store.save(sid, { a: 1 });
          const loaded = await store.load(sid);
          assert.ok(loaded);
          const saved = await store.save(sid, { ...loaded.session, b: 'two' }, loaded.state);
          await store.save(sid, { ...loaded.session, b: 'two' }, saved, { expiresAt: Date.now() + 7_200_000 });
          const again = await store.load(sid);
          assert.ok(again);
          await store.save(sid, again.session, again.state, { expiresAt: again.state.expiresAt });
          await store.destroy(sid);
          await store.save(sid, { ...again.session, late: true }, again.state);
          assert.equal(await store.load(sid), null);
          await store.purge();

          const handle = publicHandle(hashSessionId(sid));
          const loads = recorded.finished.get('load') ?? [];
          assert.deepStrictEqual(
            loads.map(({ outcome, handle: named }) => [outcome, named]),
            [
              ['found', handle],
              ['found', handle],
              ['missing', handle],
            ],
          );
          assert.ok((loads[0]?.['bytes'] as number) > 0);
          const saves = recorded.finished.get('save') ?? [];
          assert.deepStrictEqual(
            saves.map(({ outcome }) => outcome),
            ['created', 'data', 'expiry', 'nothing', 'gone'],
          );
          assert.equal(saves[0]?.['bytes'], JSON.stringify({ a: 1 }).length);
          assert.ok((saves[1]?.['bytes'] as number) > 0 && (saves[1]?.['bytes'] as number) < 40, 'the change, not the session');
          for (const message of [...loads, ...saves]) {
            assert.equal(message['backend'], backend.dialect);
            assert.equal(message['locking'], locking);
            assert.equal(message['handle'], handle);
          }
          assert.deepStrictEqual(
            (recorded.finished.get('destroy') ?? []).map(({ handle: named }) => named),
            [handle],
          );
          assert.equal((recorded.finished.get('purge') ?? []).length, 1);
          assert.equal(typeof recorded.finished.get('purge')?.[0]?.['removed'], 'number');
          // Nothing names the session id, its stored key or its data.
          const everything = JSON.stringify([...recorded.started.values(), ...recorded.finished.values()]);
          for (const secret of [sid, hashSessionId(sid), 'two']) assert.ok(!everything.includes(secret), secret);
        } finally {
          recorded.stop();
          await store.close();
        }
      });
    }

    test('optimistic: a save that lost a compare-and-swap to another request counts the conflict', async () => {
      const store = new SessionStore({ url: backend.url, table: `${table}_optimistic`, createTable: true, locking: 'optimistic', autopurge: false });
      const recorded = recordOperations();
      try {
        await store.save('contended', { n: 0 });
        const first = await store.load('contended');
        const second = await store.load('contended');
        assert.ok(first && second);
        await store.save('contended', { ...first.session, byFirst: 1 }, first.state);
        await store.save('contended', { ...second.session, bySecond: 1 }, second.state);
        const saves = recorded.finished.get('save') ?? [];
        assert.deepStrictEqual(
          saves.map(({ outcome, conflicts }) => [outcome, conflicts]),
          [
            ['created', 0],
            ['data', 0],
            ['data', 1],
          ],
        );
        assert.deepStrictEqual((await store.load('contended'))?.session, { n: 0, byFirst: 1, bySecond: 1 } satisfies JsonObject);
      } finally {
        recorded.stop();
        await store.close();
      }
    });

    test('atomic: a save that folds the pending changes into the document says so (SQL tables keep them; Redis never folds)', async () => {
      const store = new SessionStore({ url: backend.url, table: `${table}_atomic`, createTable: true, locking: 'atomic', autopurge: false });
      const recorded = recordOperations();
      try {
        await store.save('folding', { n: 0 });
        for (let index = 1; index <= 30; index++) {
          const loaded = await store.load('folding');
          assert.ok(loaded);
          await store.save('folding', { ...loaded.session, n: index, [`key${index}`]: 'a value of some thirty characters' }, loaded.state);
        }
        const folds = (recorded.finished.get('save') ?? []).filter(({ folded }) => folded === true).length;
        if (backend.sql) assert.ok(folds >= 1 && folds < 30, `${folds} folds in 30 saves`);
        else assert.equal(folds, 0);
        assert.equal((await store.load('folding'))?.session['n'], 30);
      } finally {
        recorded.stop();
        await store.close();
      }
    });

    test('a failed operation reaches the error event with its message; no subscriber, no message built', async () => {
      const store = new SessionStore({ url: backend.url, table, createTable: true, autopurge: false, maxSize: 64 });
      const recorded = recordOperations();
      try {
        await store.save('big', { a: 1 });
        const loaded = await store.load('big');
        assert.ok(loaded);
        await assert.rejects(store.save('big', { ...loaded.session, pad: 'x'.repeat(100) }, loaded.state));
        const last = recorded.finished.get('save')?.at(-1);
        assert.ok(last?.['error'] instanceof Error);
        assert.equal(last?.['outcome'], undefined);
      } finally {
        recorded.stop();
        await store.close();
      }
      // With every subscriber gone, the channels report none, so the store builds no message.
      for (const operation of ['load', 'save', 'destroy', 'purge']) assert.equal(tracingChannel(`smart-session-store:${operation}`).hasSubscribers, false);
    });
  });
}

// One server behind a TCP proxy: not the multi-host setups (clusters, Galera, a primary with standbys, Sentinel).
const servers = backends.filter(
  (backend) => backend.dialect !== 'sqlite' && !backend.name.includes('cluster') && !['galera', 'postgres-failover', 'redis-sentinel'].includes(backend.name),
);

for (const backend of servers) {
  test(`${backend.name}: the connection channel says down when the database goes away, up when it answers again`, async () => {
    const url = new URL(backend.url);
    const proxy = await startTcpProxy(Number(url.port));
    url.port = String(proxy.port);
    const store = new SessionStore({ url: url.toString(), table: 'ssn_tracing_outage', createTable: true, connectTimeout: 2, autopurge: false });
    const states: Message[] = [];
    const listener = (message: unknown): void => void states.push(message as Message);
    subscribe('smart-session-store:connection', listener);
    try {
      await store.save('outage', { a: 1 });
      await proxy.cut();
      await assert.rejects(store.load('outage'));
      await proxy.restore();
      await new Promise<void>((resolve) => store.once('connect', () => resolve()));
      assert.deepStrictEqual(
        states.map(({ state, backend: name }) => [state, name]),
        [
          ['down', backend.dialect],
          ['up', backend.dialect],
        ],
      );
      assert.ok(states[0]?.['error'] instanceof Error);
    } finally {
      unsubscribe('smart-session-store:connection', listener);
      await store.clear().catch(() => undefined);
      await store.close();
      await proxy.close();
    }
  });
}
