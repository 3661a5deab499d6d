/**
 * A 3-node MariaDB Galera cluster (scripts/galera.sh): what only a
 * multi-primary cluster does to a session store.
 *
 * - One session, 20 parallel requests a round, spread over three apps whose
 *   stores each prefer another node: certification conflicts between nodes
 *   (error 1213, at any statement or at COMMIT) are retried, so every
 *   request's key is kept, in every locking mode (pessimistic too: FOR UPDATE
 *   locks one node only, and the loser of a conflict is rolled back at
 *   COMMIT and runs again).
 * - Two processes purging through two nodes at once: the lease row lets one
 *   of them purge, and every expired row is removed (and counted) once.
 * - A node stopped under load and started again: no acknowledged write is
 *   lost, requests go on through the other nodes, and the store goes back to
 *   the node once it is synced again.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type mysql from 'mysql2/promise';
import { MysqlDriver } from '../src/backends/mysql/mysql-driver.js';
import { SessionStore, type LockingMode, type SessionStoreOptions } from '../src/index.js';
import { resolveOptions } from '../src/options.js';
import { availableBackends, backendsForThisFile, CookieStore, delay, dropTable, isStoreError, LOCKING_MODES } from './support/backends.js';
import { causalPool, galeraNodes, galeraNodeUrl, galeraUrlPreferring, GALERA_URL } from './support/connectors/scale-out.js';
import { harness as express } from './support/frameworks/express.js';
import type { RunningServer } from './support/http.js';

const run = promisify(execFile);
const GALERA_SCRIPT = new URL('../scripts/galera.sh', import.meta.url).pathname;
const [galera] = await backendsForThisFile(['galera']);
/** The machine's own MariaDB, a server without Galera, when the run includes it. */
const [plain] = await availableBackends(['mysql']);
after(async () => {
  await plain?.close();
});

const PARALLEL = 20;
const ROUNDS = 20;
const NODES = galeraNodes().hosts.length;

/** The counters of one node that say what happened there. */
interface NodeCounters {
  /** Transactions that started on this node and committed. */
  readonly commits: number;
  /** Local transactions that lost certification against another node's (1213 at COMMIT). */
  readonly certFailures: number;
  /** Local transactions rolled back because another node's write set needed their rows (1213 at any statement). */
  readonly bfAborts: number;
}

/** Requests of one session spread over several apps: request n goes to app n mod apps, all with the session's cookie. */
class SpreadClient {
  cookie = '';
  constructor(private readonly bases: readonly string[]) {}

  /** A request to app `app`; resolves to the status and JSON body (never throws for a status). */
  async request(app: number, method: string, path: string): Promise<{ status: number; body: Record<string, unknown> }> {
    const response = await fetch(`${this.bases[app % this.bases.length]}${path}`, { method, headers: this.cookie === '' ? {} : { cookie: this.cookie } });
    const setCookie = response.headers.getSetCookie()[0];
    if (setCookie !== undefined && this.cookie === '') this.cookie = setCookie.split(';')[0] as string;
    const text = await response.text();
    let body: Record<string, unknown> = {};
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      body = { text };
    }
    return { status: response.status, body };
  }

  /** A request that must answer 200. */
  async ok(app: number, method: string, path: string): Promise<Record<string, unknown>> {
    const { status, body } = await this.request(app, method, path);
    assert.equal(status, 200, `${method} ${path} on app ${app % this.bases.length} answered ${status}: ${JSON.stringify(body)}`);
    return body;
  }
}

describe('cluster options', () => {
  test('a URL lists the nodes; hosts lists them without a URL; each is refused where it would be ignored', () => {
    assert.doesNotThrow(() => new SessionStore({ url: 'mysql://root@db1:3306,db2,[::1]:3307/sessions' }));
    assert.doesNotThrow(() => new SessionStore({ url: 'mariadb://root:pw@db1,db2/sessions', syncWait: true }));
    assert.doesNotThrow(() => new SessionStore({ dialect: 'mysql', database: 'sessions', hosts: ['db1:3306', 'db2'], syncWait: true }));
    assert.doesNotThrow(() => new SessionStore({ dialect: 'mysql', database: 'sessions', hosts: 'db1:3306, db2:3307' }));
    assert.throws(() => new SessionStore({ url: 'mysql://root@db1,,db2/sessions' }), isStoreError('ERR_INVALID_OPTION', 'url'));
    assert.throws(() => new SessionStore({ dialect: 'mysql', database: 'sessions', hosts: [] }), isStoreError('ERR_INVALID_OPTION', 'hosts'));
    assert.throws(() => new SessionStore({ dialect: 'mysql', database: 'sessions', hosts: ['db1:99999'] }), isStoreError('ERR_INVALID_OPTION', 'hosts'));
    assert.throws(() => new SessionStore({ dialect: 'mysql', database: 'sessions', hosts: ['db1'], host: 'db2' }), isStoreError('ERR_INVALID_OPTION', 'host'));
    assert.throws(() => new SessionStore({ url: 'mysql://root@db1/sessions', hosts: ['db2'] }), isStoreError('ERR_INVALID_OPTION', 'hosts'));
    assert.throws(() => new SessionStore({ dialect: 'postgres', database: 'sessions', hosts: ['db1', 'db2'] }), isStoreError('ERR_INVALID_OPTION', 'hosts'));
    assert.throws(() => new SessionStore({ dialect: 'sqlite', database: ':memory:', hosts: ['db1'] }), isStoreError('ERR_INVALID_OPTION', 'hosts'));
    assert.throws(() => new SessionStore({ url: 'postgres://db1/sessions', syncWait: true }), isStoreError('ERR_INVALID_OPTION', 'syncWait'));
    assert.throws(() => new SessionStore({ url: 'sqlite::memory:', syncWait: true }), isStoreError('ERR_INVALID_OPTION', 'syncWait'));
  });

  test('syncWait on a server without Galera is harmless', { skip: plain === undefined ? 'DATABASE excludes mysql' : false }, async () => {
    const store = new CookieStore({ url: plain?.url as string, syncWait: true, table: 'ssn_galera_plain', createTable: true, autopurge: false });
    try {
      await store.save('plain', { a: 1 });
      assert.deepStrictEqual((await store.load('plain'))?.session, { a: 1 });
      assert.equal(await store.purge(), 0);
    } finally {
      await store.close();
      await plain?.drop('ssn_galera_plain');
    }
  });
});

if (galera !== undefined) {
  /** One pool per node, reads causal, for the counters and for what the tests check past the store. */
  const nodes: mysql.Pool[] = Array.from({ length: NODES }, (_, index) => causalPool(galeraNodeUrl(index), 1));
  after(async () => {
    await Promise.all(nodes.map((pool) => pool.end()));
  });

  const counters = async (index: number): Promise<NodeCounters> => {
    const [rows] = await (nodes[index] as mysql.Pool).query(
      "SHOW GLOBAL STATUS WHERE Variable_name IN ('wsrep_local_commits', 'wsrep_local_cert_failures', 'wsrep_local_bf_aborts')",
    );
    const values = new Map((rows as { Variable_name: string; Value: string }[]).map((row) => [row.Variable_name, Number(row.Value)]));
    return {
      commits: values.get('wsrep_local_commits') ?? 0,
      certFailures: values.get('wsrep_local_cert_failures') ?? 0,
      bfAborts: values.get('wsrep_local_bf_aborts') ?? 0,
    };
  };
  const allCounters = (): Promise<NodeCounters[]> => Promise.all(nodes.map((_, index) => counters(index)));
  const since = (before: readonly NodeCounters[], now: readonly NodeCounters[]): NodeCounters[] =>
    now.map((after, index) => {
      const earlier = before[index] as NodeCounters;
      return { commits: after.commits - earlier.commits, certFailures: after.certFailures - earlier.certFailures, bfAborts: after.bfAborts - earlier.bfAborts };
    });

  /** Three apps, app i's store preferring node i; reads wait for the cluster's earlier writes. */
  async function startApps(table: string, locking: (index: number) => LockingMode, extra: SessionStoreOptions = {}): Promise<RunningServer[]> {
    const apps: RunningServer[] = [];
    for (let index = 0; index < NODES; index++) {
      apps.push(
        await express.start({ url: galeraUrlPreferring(index), syncWait: true, table, locking: locking(index), createTable: true, autopurge: false, ...extra }),
      );
    }
    return apps;
  }

  for (const locking of LOCKING_MODES) {
    describe(`galera / ${locking}: one session, requests spread over ${NODES} nodes`, () => {
      const table = `ssn_galera_spread_${locking}`;
      let apps: RunningServer[] = [];
      before(async () => {
        await dropTable(galera, table);
        apps = await startApps(table, () => locking);
      });
      after(async () => {
        for (const app of apps) await app.close();
        await dropTable(galera, table);
      });

      test(`${PARALLEL} parallel requests on one session, request n through node n mod ${NODES}: all kept, ${ROUNDS} rounds`, async (t) => {
        const before = await allCounters();
        for (let round = 0; round < ROUNDS; round++) {
          const client = new SpreadClient(apps.map((app) => app.base));
          await client.ok(round, 'POST', '/start');
          const keys = Array.from({ length: PARALLEL }, (_, i) => `r${round}_${i}`);
          await Promise.all(keys.map((key, i) => client.ok(i, 'POST', `/set/${key}`)));
          const { keys: kept } = await client.ok(round + 1, 'GET', '/keys');
          assert.deepStrictEqual(kept, keys.map((key) => `k_${key}`).sort(), `round ${round}`);
        }
        const happened = since(before, await allCounters());
        t.diagnostic(
          `per node: ${happened.map((node, index) => `node${index + 1} ${node.commits} commits, ${node.certFailures} certification failures, ${node.bfAborts} BF aborts`).join('; ')}`,
        );
        // Every node took writes of its own: the requests really were spread.
        for (const [index, node] of happened.entries()) assert.ok(node.commits > 0, `node ${index + 1} committed nothing`);
      });
    });
  }

  describe('galera: a certification conflict reaches the loser at COMMIT', () => {
    const table = 'ssn_galera_commit';
    before(async () => {
      await dropTable(galera, table);
      await galera.query(`CREATE TABLE ${table} (id INT PRIMARY KEY, v INT NOT NULL) ENGINE=InnoDB`);
      await galera.query(`INSERT INTO ${table} VALUES (1, 0)`);
    });
    after(() => dropTable(galera, table));

    test('a transaction on node 1 whose row node 2 changed meanwhile fails at COMMIT with 1213, which the store runs again', async () => {
      const driver = await MysqlDriver.open(resolveOptions({ url: galeraNodeUrl(0) }));
      try {
        let reachedCommit = false;
        const failure = await driver
          .transaction(async (transaction) => {
            await transaction.execute(`UPDATE ${table} SET v = v + 1 WHERE id = 1`, []);
            // Node 2 commits a change of the same row: certified first, it wins.
            await (nodes[1] as mysql.Pool).query(`UPDATE ${table} SET v = v + 10 WHERE id = 1`);
            reachedCommit = true;
          })
          .then(
            () => undefined,
            (error: unknown) => error,
          );
        assert.equal(reachedCommit, true, 'every statement before COMMIT succeeded');
        assert.ok(failure !== undefined, 'the COMMIT failed');
        assert.equal((failure as { errno?: unknown }).errno, 1213);
        assert.equal(driver.isTransientConflict(failure), true, 'a conflict the store runs again');
        assert.equal(Number((await galera.query(`SELECT v FROM ${table} WHERE id = 1`))[0]?.['v']), 10, "only the winner's change is there");
      } finally {
        await driver.close();
      }
    });
  });

  describe('galera: nodes that cannot serve are left for the next', () => {
    const table = 'ssn_galera_nodes';
    before(() => dropTable(galera, table));
    after(() => dropTable(galera, table));

    test('hosts: a first host that refuses connections is passed over', async () => {
      // Port 1 on loopback: nothing listens, the connection is refused at once.
      const hosts = ['127.0.0.1:1', ...galeraNodes().hosts];
      const { username, pathname } = new URL(galeraNodeUrl(0));
      const store = new CookieStore({ dialect: 'mysql', user: username, database: pathname.slice(1), hosts, table, createTable: true, autopurge: false });
      try {
        await store.save('passed-over', { a: 1 });
        assert.deepStrictEqual((await store.load('passed-over'))?.session, { a: 1 });
      } finally {
        await store.close();
      }
    });

    test(`a node cut off from the cluster (non-Primary, error 1047 on every statement) is left while requests go on, and used again once synced`, async (t) => {
      // The store prefers node 3; its pooled connections stay open while the node loses the cluster.
      const CUT = NODES - 1;
      const store = new CookieStore({ url: galeraUrlPreferring(CUT), syncWait: true, table, createTable: true, autopurge: false });
      const cutNode = nodes[CUT] as mysql.Pool;
      const isolate = (on: boolean) => cutNode.query(`SET GLOBAL wsrep_provider_options = 'gmcast.isolate=${on ? 1 : 0}'`);
      const ready = async () => {
        const [rows] = await cutNode.query("SHOW GLOBAL STATUS LIKE 'wsrep_ready'");
        return (rows as { Value: string }[])[0]?.Value === 'ON';
      };
      let isolated = false;
      try {
        await Promise.all(Array.from({ length: 5 }, (_, i) => store.save(`warm-${i}`, { i })));
        const before = await counters(CUT);
        await store.save('on-node', { n: 0 });
        assert.ok((await counters(CUT)).commits > before.commits, `the store writes through node ${CUT + 1}`);

        await isolate(true);
        isolated = true;
        for (let waited = 0; (await ready()) && waited < 30_000; waited += 100) await delay(100);
        assert.equal(await ready(), false, `node ${CUT + 1} left the cluster`);
        // Every pooled connection of the store now reaches a node that answers 1047: the saves must go elsewhere.
        for (let n = 1; n <= 20; n++) {
          const loaded = await store.load('on-node');
          assert.ok(loaded, `save ${n}: the session is there`);
          await store.save('on-node', { ...loaded.session, n }, loaded.state);
        }
        assert.equal((await store.load('on-node'))?.session['n'], 20);

        await isolate(false);
        isolated = false;
        for (let waited = 0; !(await ready()) && waited < 60_000; waited += 100) await delay(100);
        assert.equal(await ready(), true, `node ${CUT + 1} synced again`);
        const back = await counters(CUT);
        let usedAgain = false;
        for (let n = 0; n < 600 && !usedAgain; n++) {
          await store.save(`after-${n % 5}`, { n });
          usedAgain = (await counters(CUT)).commits > back.commits;
          if (!usedAgain) await delay(50);
        }
        assert.ok(usedAgain, `node ${CUT + 1} takes the store's writes again`);
        t.diagnostic(`node ${CUT + 1} used again`);
      } finally {
        if (isolated) await isolate(false);
        await store.close();
      }
    });
  });

  describe('galera: two processes purging through two nodes at once', () => {
    const table = 'ssn_galera_purge';
    const EXPIRED = 1500;
    const LIVE = 30;
    let store: CookieStore;
    before(async () => {
      await dropTable(galera, table);
      store = new CookieStore({ url: GALERA_URL, syncWait: true, table, createTable: true, autopurge: false });
      await store.ready();
    });
    after(async () => {
      await store.close();
      await dropTable(galera, table);
    });

    /** A process with a store preferring node `node`: it connects, says so, purges when told, reports what it removed. */
    function purger(node: number): { ready: Promise<unknown>; go(): void; done: Promise<{ removed: number; batches: number }> } {
      const source = new URL('../src/index.ts', import.meta.url).pathname;
      const code = `
        import { SessionStore } from ${JSON.stringify(source)};
        const store = new SessionStore({ url: process.env.PURGE_URL, table: process.env.PURGE_TABLE, syncWait: true, autopurge: false });
        await store.ready();
        process.send({ ready: true });
        process.once('message', async () => {
          let batches = 0;
          const removed = await store.purge({ batchSize: 50, onProgress: () => batches++ });
          await store.close();
          process.send({ removed, batches }, () => process.disconnect());
        });`;
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], {
        env: { ...process.env, PURGE_URL: galeraUrlPreferring(node), PURGE_TABLE: table },
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      type Message = { ready?: boolean; removed?: number; batches?: number };
      const messages: Message[] = [];
      const waiting: (() => void)[] = [];
      child.on('message', (message: Message) => {
        messages.push(message);
        for (const wake of waiting.splice(0)) wake();
      });
      const next = async (key: 'ready' | 'removed'): Promise<Message> => {
        const exited = once(child, 'exit').then(([code]) => {
          throw new Error(`the purging process exited (${String(code)}) before answering ${key}`);
        });
        for (;;) {
          const found = messages.find((message) => message[key] !== undefined);
          if (found !== undefined) return found;
          await Promise.race([new Promise<void>((resolve) => waiting.push(resolve)), exited]);
        }
      };
      return {
        ready: next('ready'),
        go: () => child.send({ go: true }),
        done: next('removed').then((message) => ({ removed: message.removed as number, batches: message.batches as number })),
      };
    }

    test(`${EXPIRED} expired rows, purged through node 1 and node 2 at the same moment: removed once, counts sum to ${EXPIRED}; 3 rounds`, async (t) => {
      for (let round = 0; round < 3; round++) {
        await store.clear();
        const expiredAt = Date.now() - 60_000;
        const rows = Array.from({ length: EXPIRED }, (_, i) => [`expired-${round}-${i}`, '{"dead":true}', expiredAt - i]);
        for (let start = 0; start < rows.length; start += 500) {
          await galera.query(`INSERT INTO ${table} (id, data, expires_at) VALUES ?`, [rows.slice(start, start + 500)]);
        }
        for (let i = 0; i < LIVE; i++) await store.save(`live-${round}-${i}`, { cookie: { expires: new Date(Date.now() + 3_600_000).toISOString() } });
        const purgers = [purger(0), purger(1)];
        await Promise.all(purgers.map((each) => each.ready));
        for (const each of purgers) each.go();
        const done = await Promise.all(purgers.map((each) => each.done));
        // A purge refused by the lease ran no batch at all; one that came after the other had finished ran one, empty.
        t.diagnostic(`round ${round}: ${done.map(({ removed, batches }, node) => `node ${node + 1} removed ${removed} in ${batches} batches`).join(', ')}`);
        const removed = done.map((each) => each.removed);
        assert.equal((removed[0] as number) + (removed[1] as number), EXPIRED, `round ${round}: ${removed.join(' + ')}`);
        assert.deepStrictEqual(await store.stats(), { live: LIVE, expired: 0 });
        const leases: Record<string, unknown>[] = await galera.query('SELECT COUNT(*) AS n FROM smart_session_store_locks WHERE name = ?', [
          `smart-session-store:purge:${table}`,
        ]);
        assert.equal(Number(leases[0]?.['n']), 0, 'the lease is given back');
      }
    });
  });

  describe('galera: a node stopped under load, then started again', () => {
    const table = 'ssn_galera_failover';
    /** The node stopped (0-based): the one app 1 prefers. */
    const STOPPED = 1;
    const WORKERS = 9;
    let apps: RunningServer[] = [];
    let stopped = false;
    before(async () => {
      await dropTable(galera, table);
      // One table, the three modes at once: app i works in LOCKING_MODES[i] (atomic and pessimistic writes bump lock_version too).
      const creator = new CookieStore({ url: GALERA_URL, table, locking: 'optimistic', createTable: true });
      await creator.ready();
      await creator.close();
      apps = await startApps(table, (index) => LOCKING_MODES[index % LOCKING_MODES.length] as LockingMode, { createTable: false });
    });
    after(async () => {
      if (stopped) await run(GALERA_SCRIPT, ['start-node', String(STOPPED + 1)]);
      for (const app of apps) await app.close();
      await dropTable(galera, table);
    });

    test(`stop-node ${STOPPED + 1} mid-load: no acknowledged write lost, requests go on through the other nodes, node ${STOPPED + 1} is used again once back`, async (t) => {
      /** What each app answered, by phase. */
      const answered = new Map<string, { ok: number[]; failed: number[]; firstFailure?: string }>();
      let phase = 'before';
      const tally = (): { ok: number[]; failed: number[]; firstFailure?: string } => {
        let entry = answered.get(phase);
        if (entry === undefined) answered.set(phase, (entry = { ok: apps.map(() => 0), failed: apps.map(() => 0) }));
        return entry;
      };
      const acknowledged: string[][] = Array.from({ length: WORKERS }, () => []);
      const clients: SpreadClient[] = [];
      for (let worker = 0; worker < WORKERS; worker++) {
        const client = new SpreadClient(apps.map((app) => app.base));
        await client.ok(worker, 'POST', '/start');
        clients.push(client);
      }
      let running = true;
      const load = clients.map(async (client, worker) => {
        for (let n = 0; running; n++) {
          const app = (worker + n) % apps.length;
          const key = `w${worker}_${n}`;
          const entry = tally();
          try {
            const { status, body } = await client.request(app, 'POST', `/set/${key}`);
            if (status === 200) {
              acknowledged[worker]?.push(key);
              (entry.ok[app] as number)++;
            } else {
              (entry.failed[app] as number)++;
              entry.firstFailure ??= `${status} ${JSON.stringify(body)}`;
            }
          } catch (error) {
            (entry.failed[app] as number)++;
            entry.firstFailure ??= String(error);
          }
        }
      });

      await delay(1500);
      phase = 'stopping';
      stopped = true;
      await run(GALERA_SCRIPT, ['stop-node', String(STOPPED + 1)]);
      phase = 'down';
      await delay(3000);
      phase = 'starting';
      await run(GALERA_SCRIPT, ['start-node', String(STOPPED + 1)]);
      stopped = false;
      phase = 'back';
      // The store probes a node it left every second: wait (the load going on) until node STOPPED takes writes again.
      const backAt = await counters(STOPPED);
      let usedAgain = false;
      for (let waited = 0; waited < 30_000 && !usedAgain; waited += 250) {
        await delay(250);
        usedAgain = (await counters(STOPPED)).commits > backAt.commits;
      }
      running = false;
      await Promise.all(load);

      for (const [name, entry] of answered) {
        t.diagnostic(
          `${name}: ${entry.ok.map((ok, app) => `app${app + 1} ${ok} ok/${entry.failed[app]} failed`).join(', ')}${entry.firstFailure === undefined ? '' : ` (first failure: ${entry.firstFailure})`}`,
        );
      }
      // Requests went on, on every app, while the node was down: the app that preferred it moved to another node.
      const down = answered.get('down');
      assert.ok(
        down?.ok.every((ok) => ok > 0),
        `every app answered while node ${STOPPED + 1} was down: ${JSON.stringify(down)}`,
      );
      assert.ok(usedAgain, `node ${STOPPED + 1} took writes again after it was back`);
      // No acknowledged write lost: every key a 200 answered for is in its session, read through another node each.
      for (const [worker, client] of clients.entries()) {
        const { keys } = await client.ok(worker + 1, 'GET', '/keys');
        const missing = (acknowledged[worker] as string[]).filter((key) => !(keys as string[]).includes(`k_${key}`));
        assert.deepStrictEqual(missing, [], `worker ${worker}: acknowledged but missing`);
      }
      const total = [...answered.values()].reduce((sum, entry) => sum + entry.ok.reduce((a, b) => a + b, 0), 0);
      t.diagnostic(`${total} writes acknowledged, all found`);
    });
  });
}
