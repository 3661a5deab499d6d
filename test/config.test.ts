/**
 * Configuration: an options object, a URL, connection parameters, and YAML or
 * JSON files in the Prancer seed's shape with its snake_case names; every
 * invalid option refused at construction, by name. Also the command line
 * driven by such a file.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';
import { loadConfig } from '../src/index.js';
import { resolveOptions } from '../src/options.js';
import { progressBar } from '../src/cli.js';
import { CLI, runCli } from './support/cli.js';
import { backendsForThisFile, isStoreError as isError, dropTable, type Backend, CookieStore, LOCAL_SQL } from './support/backends.js';

const backends = await backendsForThisFile(LOCAL_SQL);

const directory = mkdtempSync(join(tmpdir(), 'sss-config-'));
function file(name: string, text: string): string {
  const path = join(directory, name);
  writeFileSync(path, text);
  return path;
}

/** The Prancer seed's example configuration, for one backend. */
function prancerYaml(backend: Backend, table: string, extra = ''): string {
  const url = new URL(backend.url.startsWith('sqlite:') ? 'sqlite://x' : backend.url);
  const driver = {
    postgres: 'Prancer::Session::Store::Database::Driver::Pg',
    mysql: 'Prancer::Session::Store::Database::Driver::mysql',
    sqlite: 'Prancer::Session::Store::Database::Driver::SQLite',
  }[backend.dialect as 'postgres' | 'mysql' | 'sqlite'];
  const database = backend.dialect === 'sqlite' ? backend.url.slice('sqlite:'.length) : url.pathname.slice(1);
  return `session:
    store:
        driver: ${driver}
        options:
            table: ${table}
            database: ${database}
${
  backend.dialect === 'sqlite'
    ? ''
    : `            username: ${decodeURIComponent(url.username)}
            password: ""
            hostname: ${url.hostname}
            port: ${url.port}
`
}            charset: utf8
            connection_check_threshold: 10
            expiration_timeout: 3600
            autopurge: 0
${extra}`;
}

describe('options', () => {
  test("the seeds' snake_case names and ours mean the same", () => {
    const seed = resolveOptions({
      dialect: 'Prancer::Session::Store::Database::Driver::Pg',
      database: 'test',
      username: 'u',
      hostname: 'h',
      port: 5433,
      connection_check_threshold: 10,
      expiration_timeout: 3600,
      autopurge: 0,
    } as never);
    const ours = resolveOptions({
      dialect: 'postgres',
      database: 'test',
      user: 'u',
      host: 'h',
      port: 5433,
      connectionCheckThreshold: 10,
      ttl: 3600,
      autopurge: false,
    });
    assert.deepStrictEqual(seed, ours);
    assert.equal(seed.ttlSeconds, 3600);
    assert.equal(seed.connectionCheckMs, 10_000);
    assert.equal(seed.autopurge, undefined);
    assert.deepStrictEqual(seed.target, { dialect: 'postgres', parameters: { host: 'h', port: 5433, user: 'u', password: undefined, database: 'test' } });
  });

  test("SmartSessionStore's session_class names and autopurge settings", () => {
    assert.equal(resolveOptions({ session_class: ':mysql2', database: 'test' } as never).target.dialect, 'mysql');
    assert.equal(resolveOptions({ driver: 'sqlite', database: ':memory:' } as never).target.dialect, 'sqlite');
    assert.deepStrictEqual(resolveOptions({ url: 'sqlite::memory:' }).autopurge, { probability: 0.1, intervalMs: 0, batchSize: 1000, minIntervalMs: 60_000 });
    assert.equal(resolveOptions({ url: 'sqlite::memory:', autopurge: 1 }).autopurge?.probability, 0.1);
    assert.equal(resolveOptions({ url: 'sqlite::memory:', autopurge: 0.25 }).autopurge?.probability, 0.25);
    assert.equal(resolveOptions({ url: 'sqlite::memory:', autopurge_probability: 0.5 } as never).autopurge?.probability, 0.5);
    assert.deepStrictEqual(resolveOptions({ url: 'sqlite::memory:', autopurge: { interval: 300 } }).autopurge, {
      probability: 0,
      intervalMs: 300_000,
      batchSize: 1000,
      minIntervalMs: 60_000,
    });
  });

  const refused: [string, Record<string, unknown>][] = [
    ['database', { dialect: 'postgres' }],
    ['dialect', { dialect: 'oracle', database: 'x' }],
    ['port', { dialect: 'mysql', database: 'x', port: 70000 }],
    ['charset', { url: 'sqlite::memory:', charset: 'utf8; DROP' }],
    ['connectionCheckThreshold', { url: 'sqlite::memory:', connectionCheckThreshold: -1 }],
    ['connection_check_threshold', { url: 'sqlite::memory:', connection_check_threshold: 1, connectionCheckThreshold: 2 }],
    ['autopurge', { url: 'sqlite::memory:', autopurge: 'often' }],
    ['autopurge', { url: 'sqlite::memory:', autopurge: 2 }],
    ['autopurge.batchSize', { url: 'sqlite::memory:', autopurge: { batchSize: 0 } }],
    ['autopurge.every', { url: 'sqlite::memory:', autopurge: { every: 1 } }],
    ['connection', { url: 'sqlite::memory:', connection: {} }],
    ['dialect', { url: 'sqlite::memory:', dialect: 'postgres' }],
    ['userIdKey', { url: 'sqlite::memory:', userIdKey: 'a..b' }],
    ['expiration_timeout', { url: 'sqlite::memory:', expiration_timeout: 'soon' }],
  ];
  for (const [name, options] of refused) {
    test(`refused at construction, naming "${name.split('.')[0]}": ${JSON.stringify(options)}`, () => {
      assert.throws(
        () => new CookieStore(options as never),
        (error: unknown) => {
          if (!isError('ERR_INVALID_OPTION')(error)) return false;
          const message = (error as Error).message;
          return (
            message.includes(`"${name}"`) ||
            message.includes(`"${name === 'expiration_timeout' ? 'ttl' : name}"`) ||
            message.includes(name.split('.')[0] as string)
          );
        },
      );
    });
  }
});

describe('configuration files', () => {
  test('YAML and JSON in the Prancer shape give the same options', async () => {
    const yaml = await loadConfig(
      file(
        'prancer.yml',
        `session:
    store:
        driver: Prancer::Session::Store::Database::Driver::Pg
        options:
            table: app.sessions
            database: test
            username: test
            password: test
            hostname: localhost
            port: 5432
            charset: utf8
            connection_check_threshold: 10
            expiration_timeout: 3600
            autopurge: 0
`,
      ),
    );
    const json = await loadConfig(
      file(
        'prancer.json',
        JSON.stringify({
          session: {
            store: {
              driver: 'pg',
              options: {
                table: 'app.sessions',
                database: 'test',
                user: 'test',
                password: 'test',
                host: 'localhost',
                port: 5432,
                charset: 'utf8',
                connectionCheckThreshold: 10,
                ttl: 3600,
                autopurge: false,
              },
            },
          },
        }),
      ),
    );
    assert.deepStrictEqual(resolveOptions(yaml), resolveOptions(json));
    assert.deepStrictEqual(resolveOptions(yaml).table, { schema: 'app', name: 'sessions' });
  });

  test('a file that is missing, malformed or holds an invalid option is a clear error', async () => {
    await assert.rejects(loadConfig(join(directory, 'missing.yml')), isError('ERR_INVALID_OPTION', 'cannot be read'));
    await assert.rejects(loadConfig(file('broken.yml', 'session: [unclosed')), isError('ERR_INVALID_OPTION', 'YAML'));
    await assert.rejects(loadConfig(file('broken.json', '{"session":')), isError('ERR_INVALID_OPTION', 'JSON'));
    await assert.rejects(loadConfig(file('shape.yml', 'sessions: {}')), isError('ERR_INVALID_OPTION', 'session.store'));
    await assert.rejects(
      loadConfig(file('bad-option.yml', 'session:\n  store:\n    driver: pg\n    options:\n      database: test\n      expiration_timout: 10\n')),
      isError('ERR_INVALID_OPTION', 'expiration_timout'),
    );
    await assert.rejects(
      loadConfig(file('bad-table.yml', 'session:\n  store:\n    driver: pg\n    options:\n      database: test\n      table: "sessions; DROP TABLE users"\n')),
      isError('ERR_INVALID_OPTION', '"table"'),
    );
  });

  for (const backend of backends) {
    test(`${backend.name}: a store from the seed's configuration file works`, async () => {
      const table = 'ssn_from_config';
      await dropTable(backend, table);
      const options = await loadConfig(file(`${backend.name}.yml`, prancerYaml(backend, table)));
      const store = new CookieStore({ ...options, createTable: true });
      try {
        assert.equal(store.options.ttlSeconds, 3600);
        await store.save('from-config', { cookie: { originalMaxAge: null, expires: null }, emoji: '😀' });
        const loaded = await store.load('from-config');
        assert.equal(loaded?.session['emoji'], '😀');
        assert.ok(Math.abs((loaded?.state.expiresAt ?? 0) - (Date.now() + 3_600_000)) < 5_000, 'expiration_timeout is the ttl');
      } finally {
        await store.close();
        await dropTable(backend, table);
      }
    });
  }
});

describe('command line with --config', () => {
  const run = promisify(execFile);
  const attempt = runCli;

  test('progress bar', () => {
    assert.equal(progressBar(0, 10, 10), '[----------]   0%  0/10');
    assert.equal(progressBar(5, 10, 10), '[#####-----]  50%  5/10');
    assert.equal(progressBar(10, 10, 10), '[##########] 100%  10/10');
  });

  for (const backend of backends) {
    test(`${backend.name}: create-table, stats, purge (plain lines off a terminal), check`, async () => {
      const table = 'ssn_cli';
      await dropTable(backend, table);
      const config = file(`cli-${backend.name}.yml`, prancerYaml(backend, table));
      const created = await attempt('create-table', '--config', config);
      assert.equal(created.code, 0, created.stderr);
      const store = new CookieStore({ ...(await loadConfig(config)), autopurge: false });
      try {
        for (let i = 0; i < 30; i++) await store.save(`old-${i}`, { cookie: { expires: new Date(Date.now() - 1000).toISOString() } });
        await store.save('fresh', { cookie: { expires: new Date(Date.now() + 60_000).toISOString() } });
      } finally {
        await store.close();
      }
      const stats = await attempt('stats', '--config', config, '--json');
      assert.equal(stats.code, 0, stats.stderr);
      const reported = JSON.parse(stats.stdout) as Record<string, unknown>;
      assert.deepStrictEqual({ table: reported['table'], live: reported['live'], expired: reported['expired'] }, { table, live: 1, expired: 30 });
      assert.ok(typeof reported['dataBytes'] === 'number' && reported['dataBytes'] > 0, "the table's size on disk");
      assert.equal(reported['locking'], 'atomic');
      const purged = await attempt('purge', '--config', config, '--batch-size', '4');
      assert.equal(purged.code, 0, purged.stderr);
      assert.match(purged.stdout, /purged 30 expired sessions/);
      assert.match(purged.stderr, /^purged \d+ of 30$/m);
      assert.doesNotMatch(purged.stderr, /\r/);
      const checked = await attempt('check', '--config', config);
      assert.equal(checked.code, 0, checked.stderr);
      assert.match(checked.stdout, /^ok: .* 1 live and 0 expired/);
      const missing = await attempt('check', '--config', config, '--table', 'ssn_cli_missing');
      assert.equal(missing.code, 1);
      assert.match(missing.stdout, /missing: run create-table/);
      await dropTable(backend, table);
    });
  }

  test('purge draws a progress bar in place on a terminal', {
    skip: existsSync('/usr/bin/script') ? false : 'util-linux script is not installed',
  }, async () => {
    const url = `sqlite:${join(directory, 'tty.db')}`;
    const store = new CookieStore({ url, createTable: true, autopurge: false });
    for (let i = 0; i < 25; i++) await store.save(`tty-${i}`, { cookie: { expires: new Date(Date.now() - 1000).toISOString() } });
    await store.close();
    // script(1) gives the command a pseudo-terminal, as a person at a shell would.
    const { stdout } = await run('/usr/bin/script', ['-qec', `"${process.execPath}" "${CLI}" purge --url ${url} --batch-size 5`, '/dev/null']);
    assert.match(stdout, /\r\[#+-*\]\s+20%\s+5\/25/);
    assert.match(stdout, /\r\[#{30}\] 100%\s+25\/25/);
    assert.match(stdout, /purged 25 expired sessions/);
  });

  test('check says when the database cannot be reached; wrong command lines exit 2', async () => {
    const down = await attempt('check', '--url', 'postgres://postgres@127.0.0.1:1/test', '--json');
    assert.equal(down.code, 1);
    assert.equal(JSON.parse(down.stdout).code, 'ERR_UNAVAILABLE');
    assert.equal((await attempt('purge', '--url', 'sqlite::memory:', '--batch-size', 'lots')).code, 2);
    assert.equal((await attempt('stats', '--url', 'sqlite::memory:', '--config', 'x.yml')).code, 2);
    assert.equal((await attempt('stats', '--config', join(directory, 'nowhere.yml'))).code, 2);
  });
});
