'use strict'
// Preloaded (NODE_OPTIONS=--require) into fastify/session's own test processes (11.1.3,
// commit 4f7c3f2), run against smart-session-store's own session layer: what the tests
// get for require('..') (the plugin under test) is a wrapper that registers `smartSession`
// of smart-session-store/fastify (no @fastify/session) with the test's options, the store
// being smart-session-store wherever the test uses @fastify/session's own store (none
// given, a MemoryStore, the suite's TestStore). A test that brings a store object of its
// own (a fake that fails or counts calls) keeps it, on the real @fastify/session: it
// exercises @fastify/session's calls into a store, which the plugin has none of; such
// registrations are listed on stderr ("[peer-shim] own store ...") to be told apart.
// The suite's own units (MemoryStore, idGenerator, ...) load the real files.
//
//   PROJECT_DIR         the smart-session-store checkout (built: dist/)   (required)
//   PEER_STORE_URL      default sqlite::memory: (a fresh database per registration);
//                       postgres://, mysql://, redis://: a fresh table (key prefix) peer_fsp_* per
//                       registration, left to drop afterwards
//   PEER_STORE_OPTIONS  JSON of more store options, e.g. '{"touchAfter":0}'
//   PEER_DEFAULTS       'fastify-session' (default): saveUninitialized: true where the test
//                       leaves it out, as @fastify/session defaults it; 'plugin': the plugin's
//                       own default (false)

const path = require('path')
const Module = require('module')

const PROJECT_DIR = process.env.PROJECT_DIR
if (!PROJECT_DIR) throw new Error('set PROJECT_DIR to the smart-session-store checkout')
const STORE_URL = process.env.PEER_STORE_URL || 'sqlite::memory:'
const EXTRA = JSON.parse(process.env.PEER_STORE_OPTIONS || '{}')
const DEFAULTS = process.env.PEER_DEFAULTS || 'fastify-session'
const SUITE_DIR = process.cwd()
const SUITE_INDEX = require.resolve(SUITE_DIR)
const TEST_DIR = path.join(SUITE_DIR, 'test') + path.sep
const WRAPPER = __filename + '?wrapper'

// The tests' require('..') gets the wrapper; everything else gets the suite's own files.
const resolveFilename = Module._resolveFilename
Module._resolveFilename = function (request, parent) {
  if (request === WRAPPER) return WRAPPER
  const resolved = resolveFilename.apply(this, arguments)
  if (resolved === SUITE_INDEX && parent && parent.filename && parent.filename.startsWith(TEST_DIR)) return WRAPPER
  return resolved
}

let registrations = 0

function wrapper () {
  const real = require(SUITE_INDEX)
  const { MemoryStore } = real
  const { smartSession } = require(path.join(PROJECT_DIR, 'dist/cjs/adapters/fastify.js'))
  const fp = require(require.resolve('fastify-plugin', { paths: [SUITE_DIR] }))

  function storeOptions () {
    const options = { url: STORE_URL, createTable: true, ...EXTRA }
    if (!/^sqlite:/.test(STORE_URL)) options.table = 'peer_fsp_' + process.pid + '_' + registrations
    // A store per registration (~100 per run, some never closed by their test): small pools.
    if (/^(postgres(ql)?|mysql|mariadb):/.test(STORE_URL) && !('poolSize' in options)) options.poolSize = 2
    registrations++
    return options
  }

  function plugin (fastify, options, next) {
    const own = options.store !== undefined && !(options.store instanceof MemoryStore)
    if (own) {
      process.stderr.write('[peer-shim] own store: real @fastify/session\n')
      fastify.register(real, options)
      next()
      return
    }
    const mapped = { ...options, store: storeOptions() }
    if (DEFAULTS === 'fastify-session' && mapped.saveUninitialized === undefined) mapped.saveUninitialized = true
    fastify.register(smartSession, mapped)
    next()
  }

  // Named as @fastify/session is, so that the suite's plugins that declare a dependency on it find it.
  const wrapped = fp(plugin, { fastify: '5.x', name: '@fastify/session' })
  wrapped.default = wrapped
  wrapped.fastifySession = wrapped
  wrapped.Store = real.Store
  wrapped.MemoryStore = real.MemoryStore
  return wrapped
}

const fake = new Module(WRAPPER, module)
fake.filename = WRAPPER
fake.loaded = true
let built
Object.defineProperty(fake, 'exports', { get: () => (built ??= wrapper()), set () {} })
require.cache[WRAPPER] = fake
