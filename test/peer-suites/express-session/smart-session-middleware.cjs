'use strict'
// mocha --require shim for expressjs/session's own test suite (v1.19.0), run against
// smart-session-store's own middleware: what the tests get for require('..') (the
// express-session middleware) is `session` of smart-session-store/express, and every
// store they get (`new session.MemoryStore()`, the default store) is its SmartSessionStore.
// express-session's own classes (Store, Cookie, Session) stay the suite's, so the suite's
// fake stores (test/support/smart-store.js, sync-store.js) are made as written: the
// middleware refuses them (it takes its own store only), and those tests fail by design.
// smart-session-store's own require('express-session') gets the suite's copy.
//
//   PROJECT_DIR         the smart-session-store checkout (built: dist/)   (required)
//   PEER_STORE_URL      default sqlite::memory: (a fresh database per store);
//                       postgres://, mysql://, redis://: a fresh table (key prefix)
//                       peer_esm_<pid>_<n> per store (Redis prefixes emptied here; SQL tables left to drop)
//   PEER_STORE_OPTIONS  JSON of more store options, e.g. '{"touchAfter":0}'
//   PEER_DEFAULTS       'express-session' (default): where a test leaves saveUninitialized
//                       out, express-session's default (true) is passed, as the suite
//                       assumes; 'ours': the middleware's own default (false)
//
// Run from the suite's directory (mocha's cwd): see README.md beside this file.

var path = require('path')
var Module = require('module')

var PROJECT_DIR = process.env.PROJECT_DIR
if (!PROJECT_DIR) throw new Error('set PROJECT_DIR to the smart-session-store checkout')
var STORE_URL = process.env.PEER_STORE_URL || 'sqlite::memory:'
var EXTRA = JSON.parse(process.env.PEER_STORE_OPTIONS || '{}')
var DEFAULTS = process.env.PEER_DEFAULTS || 'express-session'
var SUITE_DIR = process.cwd()
var SUITE_INDEX = require.resolve(SUITE_DIR)
var TEST_DIR = path.join(SUITE_DIR, 'test') + path.sep
var WRAPPER = __filename + '?wrapper'
var sqlite = /^sqlite:/.test(STORE_URL)

// The tests' require('..') gets the wrapper; everything else (smart-session-store's
// require('express-session') included) gets the suite's own express-session.
var resolveFilename = Module._resolveFilename
Module._resolveFilename = function (request, parent) {
  if (request === 'express-session') return SUITE_INDEX
  if (request === WRAPPER) return WRAPPER
  var resolved = resolveFilename.apply(this, arguments)
  if (resolved === SUITE_INDEX && parent && parent.filename && parent.filename.startsWith(TEST_DIR)) return WRAPPER
  return resolved
}

var adapter = path.join(PROJECT_DIR, 'dist/cjs/adapters/express.js')
var stores = []
var tablePrefix = 'peer_esm_' + process.pid + '_'

function storeOptions () {
  var options = Object.assign({ url: STORE_URL, createTable: true }, EXTRA)
  if (!sqlite) options.table = tablePrefix + stores.length
  // A store per test (the suite makes ~150): small pools, closed after their test (below).
  if (/^(postgres(ql)?|mysql|mariadb):/.test(STORE_URL) && !('poolSize' in options)) options.poolSize = 2
  return options
}

// `new session.MemoryStore()`: returning an object from a constructor makes `new` yield it.
function SmartMemoryStore () {
  var SmartSessionStore = require(adapter).SmartSessionStore
  var options = storeOptions()
  var store = new SmartSessionStore(options)
  stores.push({ store: store, table: options.table })
  return store
}

function wrapper () {
  var real = require(SUITE_INDEX)
  var ours = require(adapter)

  function session (options) {
    var mapped = Object.assign({}, options)
    // The default store, as express-session makes a MemoryStore when given none.
    if (mapped.store === undefined) mapped.store = new SmartMemoryStore()
    if (DEFAULTS === 'express-session' && mapped.saveUninitialized === undefined) mapped.saveUninitialized = true
    return ours.session(mapped)
  }

  session.Store = real.Store
  session.Cookie = real.Cookie
  session.Session = real.Session
  session.MemoryStore = SmartMemoryStore
  return session
}

var fake = new Module(WRAPPER, module)
fake.filename = WRAPPER
fake.loaded = true
var built
Object.defineProperty(fake, 'exports', { get: function () { return (built = built || wrapper()) }, set: function () {} })
require.cache[WRAPPER] = fake

function closeStores (list) {
  return Promise.all(list.map(function (s) {
    if (s.closed) return undefined
    s.closed = true
    var clear = /^rediss?:/.test(STORE_URL)
      // Redis: the table option is a key prefix; clear() empties it.
      ? new Promise(function (resolve) { s.store.clear(function () { resolve() }) })
      : Promise.resolve()
    return clear.then(function () { return s.store.close() }).catch(function () {})
  }))
}

// Stores made inside a test are closed after it; those of `before` hooks at the end.
var madeBefore = null
exports.mochaHooks = {
  beforeEach: function () { madeBefore = stores.length },
  afterEach: async function () {
    var made = stores.slice(madeBefore)
    madeBefore = null
    await closeStores(made)
  },
  afterAll: async function () {
    this.timeout(60000)
    await closeStores(stores)
  }
}
