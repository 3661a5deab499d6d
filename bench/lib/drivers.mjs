/**
 * Loads the drivers, both copies: the library's (resolved from the library's
 * own folder, as its `import('pg')` does) and the benchmark's (for the peer
 * stores), and patches each for statement counting before any store exists.
 */
import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { patchBetterSqlite3, patchMysql2, patchPg } from './counters.mjs';

export const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Where `smart-session-store` really lives (bench/node_modules/smart-session-store links to it). */
export const LIBRARY_DIR = path.dirname(fileURLToPath(import.meta.resolve('smart-session-store/package.json')));

const benchRequire = createRequire(path.join(BENCH_DIR, 'package.json'));
const libraryRequire = createRequire(path.join(LIBRARY_DIR, 'package.json'));

function tryRequire(req, name) {
  try {
    return req(name);
  } catch {
    return undefined;
  }
}

/** Finds the folder of package `name` as Node would from `fromDir` (reads package.json directly: some packages do not export it). */
export function packageDir(name, fromDir) {
  for (let dir = fromDir; ; dir = path.dirname(dir)) {
    const candidate = path.join(dir, 'node_modules', name);
    if (existsSync(path.join(candidate, 'package.json'))) return candidate;
    if (path.dirname(dir) === dir) return undefined;
  }
}

export function packageVersion(name, fromDir) {
  const dir = packageDir(name, fromDir);
  if (dir === undefined) return null;
  return JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')).version ?? null;
}

export const drivers = {
  library: {
    pg: tryRequire(libraryRequire, 'pg'),
    mysql2: tryRequire(libraryRequire, 'mysql2'),
    Database: tryRequire(libraryRequire, 'better-sqlite3'),
  },
  bench: {
    pg: benchRequire('pg'),
    mysql2: benchRequire('mysql2'),
    mysql2Promise: benchRequire('mysql2/promise'),
    Database: benchRequire('better-sqlite3'),
  },
};

/** The copy of mysql2 that express-mysql-session loads (it pins its own version). */
function peerMysql2() {
  const dir = packageDir('express-mysql-session', BENCH_DIR);
  return dir === undefined ? undefined : tryRequire(createRequire(path.join(dir, 'package.json')), 'mysql2');
}

/** Patches every copy of every driver once; returns what was patched, for the record. */
export function patchAllDrivers() {
  const patched = [];
  const note = (what, ok) => ok && patched.push(what);
  note('pg (library)', patchPg(drivers.library.pg));
  note('pg (bench)', patchPg(drivers.bench.pg));
  note('mysql2 (library)', patchMysql2(drivers.library.mysql2));
  note('mysql2 (bench)', patchMysql2(drivers.bench.mysql2));
  note('mysql2 (express-mysql-session)', patchMysql2(peerMysql2()));
  note('better-sqlite3 (library)', patchBetterSqlite3(drivers.library.Database));
  note('better-sqlite3 (bench)', patchBetterSqlite3(drivers.bench.Database));
  return patched;
}
