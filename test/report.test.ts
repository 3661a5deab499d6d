/**
 * `store.report()` and the command line's `stats`: what an operator wants
 * at a glance, on every backend.
 */
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { SessionStore } from '../src/index.js';
import { backendsForThisFile, dropTable, isStoreError } from './support/backends.js';
import { runCli } from './support/cli.js';

const backends = await backendsForThisFile();

for (const backend of backends) {
  describe(`${backend.name}: store.report()`, () => {
    const table = 'ssn_report';
    before(() => dropTable(backend, table));
    after(() => dropTable(backend, table));

    test('counts, locking, size, pending changes and the users with the most sessions', async () => {
      const store = new SessionStore({ url: backend.url, table, createTable: true, userIdKey: 'user', autopurge: false });
      try {
        for (const [sid, user] of [
          ['a1', 'alice'],
          ['a2', 'alice'],
          ['a3', 'alice'],
          ['b1', 'bob'],
          ['anonymous', undefined],
        ] as const) {
          await store.save(sid, user === undefined ? { n: 0 } : { user, n: 0 });
        }
        await store.save('old', { user: 'carol' }, undefined, { expiresAt: Date.now() + 20 });
        // A delta of a loaded session: where the table keeps pending changes, it is appended there.
        const loaded = await store.load('a1');
        assert.ok(loaded);
        await store.save('a1', { ...loaded.session, n: 1 }, loaded.state);
        await new Promise((resolve) => setTimeout(resolve, 40));

        const report = await store.report({ topUsers: 2 });
        assert.equal(report.backend, backend.dialect);
        assert.equal(report.collection, table);
        assert.equal(report.locking, await store.lockingMode());
        assert.equal(report.live, 5);
        // Redis drops an expired key itself: it is never counted as expired.
        assert.equal(report.expired, backend.dialect === 'redis' ? 0 : 1);
        if (backend.sql) {
          assert.deepStrictEqual(report.topUsers, [
            { userId: 'alice', sessions: 3 },
            { userId: 'bob', sessions: 1 },
          ]);
          assert.ok(report.dataBytes !== undefined && report.dataBytes > 0, `size: ${String(report.dataBytes)}`);
          assert.ok(report.indexBytes !== undefined && report.indexBytes > 0, `indexes: ${String(report.indexBytes)}`);
          assert.ok(
            report.pendingChanges !== undefined && report.pendingChanges.sessions === 1 && report.pendingChanges.length > 0,
            JSON.stringify(report.pendingChanges),
          );
        } else {
          // The user index names users by a hash: no list of users to give.
          assert.equal(report.topUsers, undefined);
        }
        assert.equal((await store.report({ topUsers: 0 })).topUsers?.length ?? 0, 0);
        await assert.rejects(store.report({ topUsers: -1 }), isStoreError('ERR_INVALID_OPTION', 'topUsers'));
      } finally {
        await store.close();
      }
    });
  });
}

test('the command line: stats says the size, the pending changes and the users with the most sessions; --json gives them all', async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'sss-report-')), 'sessions.db');
  const store = new SessionStore({ url: `sqlite:${file}`, createTable: true, userIdKey: 'user', autopurge: false });
  try {
    await store.save('s1', { user: 'dana', n: 0 });
    await store.save('s2', { user: 'dana', n: 0 });
    const loaded = await store.load('s1');
    assert.ok(loaded);
    await store.save('s1', { ...loaded.session, n: 1 }, loaded.state);
  } finally {
    await store.close();
  }
  const text = await runCli('stats', '--url', `sqlite:${file}`);
  assert.equal(text.code, 0, text.stderr);
  assert.match(
    text.stdout,
    /^table sessions: 2 live, 0 expired\n {2}size: [\d.]+ (B|KiB|MiB) of sessions, [\d.]+ (B|KiB|MiB) of indexes\n {2}pending changes: 1 session, \d+ characters not yet folded in\n {2}most sessions: "dana" \(2\)\n$/,
  );
  const json = await runCli('stats', '--url', `sqlite:${file}`, '--json');
  assert.equal(json.code, 0, json.stderr);
  const reported = JSON.parse(json.stdout) as Record<string, unknown>;
  assert.deepStrictEqual(reported['topUsers'], [{ userId: 'dana', sessions: 2 }]);
  assert.deepStrictEqual((reported['pendingChanges'] as { sessions: number }).sessions, 1);
});
