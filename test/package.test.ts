/**
 * The package as users get it: the built ESM and CommonJS entry points with
 * their types, and the command line.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join, posix } from 'node:path';
import { describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { runCli } from './support/cli.js';
import { keepsTwentyParallelItems, startExample } from './support/examples.js';

const require = createRequire(import.meta.url);
const root = join(import.meta.dirname, '..');

describe('package entry points', () => {
  test('require() of smart-session-store/express gives a working express-session store', async () => {
    const { SmartSessionStore } = require('smart-session-store/express') as typeof import('../src/adapters/express.js');
    const session = require('express-session') as typeof import('express-session');
    const store = new SmartSessionStore({ url: 'sqlite::memory:', createTable: true });
    assert.ok(store instanceof session.Store);
    await new Promise<void>((resolve, reject) =>
      store.set('cjs', { cookie: { originalMaxAge: null } } as never, (error) => (error ? reject(error as Error) : resolve())),
    );
    const loaded = await new Promise((resolve, reject) => store.get('cjs', (error, value) => (error ? reject(error as Error) : resolve(value))));
    assert.deepStrictEqual(loaded, { cookie: { originalMaxAge: null } });
    await store.close();
  });

  test('import of both entry points (ESM build)', async () => {
    const core = await import('smart-session-store');
    const express = await import('smart-session-store/express');
    assert.equal(typeof core.SessionStore, 'function');
    assert.equal(typeof core.SessionStoreError, 'function');
    assert.equal(typeof express.SmartSessionStore, 'function');
    assert.equal(express.default, express.SmartSessionStore);
  });

  test('both builds ship type declarations', () => {
    for (const file of ['dist/esm/index.d.ts', 'dist/esm/adapters/express.d.ts', 'dist/cjs/index.d.ts', 'dist/cjs/adapters/express.d.ts']) {
      assert.ok(existsSync(join(root, file)), file);
    }
  });
});

describe('command line', () => {
  const attempt = runCli;

  test('create-table creates the table and its expiry index', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'sss-cli-')), 'cli.db');
    const result = await attempt('create-table', '--url', `sqlite:${file}`, '--table', 'web_sessions');
    assert.equal(result.code, 0, result.stderr);
    const db = new Database(file);
    const objects = db.prepare("SELECT type, name FROM sqlite_master WHERE tbl_name = 'web_sessions'").all() as { type: string; name: string }[];
    db.close();
    assert.ok(objects.some(({ type, name }) => type === 'table' && name === 'web_sessions'));
    assert.ok(objects.some(({ type, name }) => type === 'index' && name === 'web_sessions_expires_at_idx'));
  });

  test('exit codes: 0 for --help, 2 for a wrong command line, 1 for a database that cannot be reached', async () => {
    assert.equal((await attempt('--help')).code, 0);
    assert.equal((await attempt()).code, 2);
    assert.equal((await attempt('drop-everything', '--url', 'sqlite::memory:')).code, 2);
    assert.equal((await attempt('create-table')).code, 2);
    const refused = await attempt('create-table', '--url', 'sqlite::memory:', '--table', 'sessions; DROP TABLE users');
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /"table"/);
    const unreachable = await attempt('create-table', '--url', 'postgres://postgres@127.0.0.1:1/test');
    assert.equal(unreachable.code, 1);
    assert.match(unreachable.stderr, /ERR_UNAVAILABLE/);
    // A one-shot command does not wait for the database to come back: it says what failed, and stops.
    assert.match(unreachable.stderr, /nothing accepts connections at 127\.0\.0\.1:1/);
    assert.doesNotMatch(unreachable.stderr, /recovers by itself|reconnects/);
  });

  test('a wrong command line is said in our words, with the usage of the command', async () => {
    const typo = await attempt('create-table', '--url', 'sqlite::memory:', '--tabel', 'x');
    assert.equal(typo.code, 2);
    assert.match(typo.stderr, /unknown option --tabel of create-table \(did you mean --table\?\)/);
    assert.match(typo.stderr, /Usage: smart-session-store create-table/);
    assert.doesNotMatch(typo.stderr, /ERR_PARSE_ARGS|Unknown option '/);
    const negative = await attempt('purge', '--url', 'sqlite::memory:', '--batch-size', '-5');
    assert.equal(negative.code, 2);
    assert.match(negative.stderr, /--batch-size must be a positive integer, got -5/);
    assert.doesNotMatch(negative.stderr, /ambiguous/);
    const missing = await attempt('stats', '--url');
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--url needs a value/);
    const command = await attempt('purg', '--url', 'sqlite::memory:');
    assert.match(command.stderr, /unknown command "purg" \(did you mean purge\?\)/);
  });

  test('<command> --help shows that command, with its own options', async () => {
    for (const [command, own] of [
      ['create-table', '--locking MODE'],
      ['purge', '--batch-size N'],
      ['stats', '--json'],
      ['check', '--json'],
    ] as const) {
      const help = await attempt(command, '--help');
      assert.equal(help.code, 0);
      assert.match(help.stdout, new RegExp(`^Usage: smart-session-store ${command} `));
      assert.ok(help.stdout.includes(own), `${command} --help lists ${own}`);
    }
    const purgeHelp = (await attempt('purge', '--help')).stdout;
    assert.ok(!purgeHelp.includes('--locking'), "purge --help lists only purge's options");
  });
});

describe('the packed tarball, installed as a user would', () => {
  test('installs with no lifecycle script and no source map pointing outside the package; its express example keeps 20 parallel changes on SQLite', async () => {
    const work = mkdtempSync(join(tmpdir(), 'sss-pack-'));
    // The build is already there (npm test builds first): pack it as it is.
    const [packed] = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8' })) as {
      filename: string;
      files: { path: string }[];
    }[];
    assert.ok(packed);
    const shipped = new Set(packed.files.map((file) => file.path));
    for (const map of [...shipped].filter((path) => path.endsWith('.map'))) {
      const { sources } = JSON.parse(readFileSync(join(root, map), 'utf8')) as { sources: string[] };
      for (const source of sources) {
        const target = posix.normalize(posix.join(posix.dirname(map), source));
        assert.ok(shipped.has(target), `${map} points to ${source}, which the package does not ship`);
      }
    }
    const project = join(work, 'app');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    const install = spawnSync('npm', ['install', join(work, packed.filename), '--no-audit', '--no-fund', '--prefer-offline'], {
      cwd: project,
      encoding: 'utf8',
    });
    assert.equal(install.status, 0, install.stderr);
    assert.doesNotMatch(install.stderr, /script/i, 'installing runs no lifecycle script and warns about none');
    // The framework and driver the example needs, as the user would install them (taken from here: no download, no compile).
    for (const dependency of ['express', 'express-session', 'better-sqlite3'])
      symlinkSync(join(root, 'node_modules', dependency), join(project, 'node_modules', dependency));
    copyFileSync(join(root, 'examples/express.mjs'), join(project, 'server.mjs'));
    const app = await startExample(join(project, 'server.mjs'), `sqlite:${join(project, 'sessions.db')}`, project);
    try {
      await keepsTwentyParallelItems(app.base);
    } finally {
      await app.stop();
    }
  });
});

describe('the packed tarball beside the current majors of its peers', () => {
  test('installs with React Router 8, node-redis 6 and better-sqlite3 13 under strict peer dependencies; its React Router example keeps 20 parallel changes', async () => {
    const work = mkdtempSync(join(tmpdir(), 'sss-peers-'));
    const [packed] = JSON.parse(execFileSync('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', work], { cwd: root, encoding: 'utf8' })) as {
      filename: string;
    }[];
    assert.ok(packed);
    const project = join(work, 'app');
    mkdirSync(project);
    writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
    // The versions the root installed (its lock pins the current majors), so npm's cache has them.
    const installed = (name: string) =>
      `${name}@${(JSON.parse(readFileSync(join(root, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version}`;
    const peers = ['react-router', '@react-router/node', 'redis', 'better-sqlite3'].map(installed);
    for (const [peer, major] of [
      ['react-router', 8],
      ['redis', 6],
      ['better-sqlite3', 13],
    ] as const) {
      assert.ok(
        peers.some((spec) => spec.startsWith(`${peer}@${major}.`)),
        `the root installs ${peer} ${major}: ${peers.join(', ')}`,
      );
    }
    const install = spawnSync('npm', ['install', join(work, packed.filename), ...peers, '--strict-peer-deps', '--no-audit', '--no-fund', '--prefer-offline'], {
      cwd: project,
      encoding: 'utf8',
    });
    assert.equal(install.status, 0, `a peer conflict or another install failure:\n${install.stderr}`);
    copyFileSync(join(root, 'examples/react-router.mjs'), join(project, 'server.mjs'));
    const app = await startExample(join(project, 'server.mjs'), `sqlite:${join(project, 'sessions.db')}`, project);
    try {
      await keepsTwentyParallelItems(app.base);
    } finally {
      await app.stop();
    }
  });
});

describe('types, under every module resolution users set', () => {
  const resolutions: [name: string, compilerOptions: Record<string, unknown>, type: 'module' | 'commonjs'][] = [
    ['NodeNext (ESM)', { module: 'nodenext', moduleResolution: 'nodenext' }, 'module'],
    ['NodeNext (CommonJS)', { module: 'nodenext', moduleResolution: 'nodenext' }, 'commonjs'],
    ['node10 with CommonJS', { module: 'commonjs', moduleResolution: 'node10' }, 'commonjs'],
    ['bundler', { module: 'esnext', moduleResolution: 'bundler' }, 'module'],
  ];
  // Every adapter the package exports and the build made.
  const subpaths = Object.keys((JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { exports: Record<string, unknown> }).exports)
    .filter((subpath) => subpath !== '.' && subpath !== './package.json')
    .filter((subpath) => existsSync(join(root, 'dist/cjs/adapters', `${subpath.slice(2)}.d.ts`)));

  // TypeScript 7 removed node10 resolution (error TS5108): its users are on NodeNext or bundler.
  const compilers = [
    ['TypeScript 5.9', 'typescript', resolutions],
    ['TypeScript 7', 'typescript-7', resolutions.filter(([, { moduleResolution }]) => moduleResolution !== 'node10')],
  ] as const;

  for (const [compiler, compilerPackage, checked] of compilers)
    for (const [name, compilerOptions, type] of checked) {
      test(`a user file type-checks under ${name} with ${compiler}, seed option names included`, () => {
        const project = mkdtempSync(join(tmpdir(), 'sss-types-'));
        mkdirSync(join(project, 'node_modules', '@types'), { recursive: true });
        symlinkSync(root, join(project, 'node_modules', 'smart-session-store'));
        for (const dependency of ['express-session', 'express', 'fastify', '@fastify', 'koa', 'koa-session', 'hono', 'react-router']) {
          if (existsSync(join(root, 'node_modules', dependency)))
            symlinkSync(join(root, 'node_modules', dependency), join(project, 'node_modules', dependency));
        }
        for (const types of readdirSync(join(root, 'node_modules/@types')))
          symlinkSync(join(root, 'node_modules/@types', types), join(project, 'node_modules/@types', types));
        writeFileSync(join(project, 'package.json'), JSON.stringify({ name: 'user', private: true, type }));
        writeFileSync(
          join(project, 'user.ts'),
          [
            "import { SessionStore, SessionStoreError, type SessionStoreOptions } from 'smart-session-store';",
            ...subpaths.map((subpath, index) => `import * as adapter${index} from 'smart-session-store/${subpath.slice(2)}';`),
            "const seed: SessionStoreOptions = { driver: 'sqlite', database: ':memory:', expiration_timeout: 3600, connection_check_threshold: 10, autopurge: 0 };",
            'const store = new SessionStore(seed);',
            "const failure: string = new SessionStoreError('ERR_DATABASE', 'x').code;",
            `export const used = [store, failure${subpaths.map((_, index) => `, adapter${index}`).join('')}];`,
            '',
          ].join('\n'),
        );
        writeFileSync(
          join(project, 'tsconfig.json'),
          JSON.stringify({
            compilerOptions: { ...compilerOptions, strict: true, noEmit: true, target: 'es2022', types: ['node'], skipLibCheck: true },
            files: ['user.ts'],
          }),
        );
        const result = spawnSync(process.execPath, [join(root, 'node_modules', compilerPackage, 'bin/tsc'), '-p', join(project, 'tsconfig.json')], {
          encoding: 'utf8',
        });
        assert.equal(result.status, 0, `${name}, ${compiler}:\n${result.stdout}${result.stderr}`);
      });
    }
});
