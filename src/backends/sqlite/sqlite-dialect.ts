/** What is SQLite's own: json_patch and json_set, ON CONFLICT, a lease row for the purge lock, pragma_table_info. */
import { deltaToJson } from '../../core/delta.js';
import { leaseLock } from '../sql/lease.js';
import { planMergePatch } from '../sql/merge-patch.js';
import type { DataColumn, SqlDialect } from '../sql/sql-dialect.js';
import { compile, join, quoteIdentifier as quoteSqlite, raw, sql } from '../sql/statement.js';
import { findExpiryColumn, isTextType } from '../sql/table-shape.js';
import { APPLY_DELTA_FUNCTION } from './sqlite-driver.js';

/** The current time in epoch milliseconds, computed by SQLite. */
const NOW_MS = "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)";

const DATA_COLUMN: DataColumn = {
  read: raw('data'),
  text: (value) => (typeof value === 'string' ? value : null),
  write: (text) => sql`${text}`,
  merge(delta) {
    // SQLite's own json_patch and json_set when the delta fits them, else the store's merge registered as an SQL
    // function (same result, more work in JavaScript).
    const plan = planMergePatch(delta);
    if (plan === null) return sql`${raw(APPLY_DELTA_FUNCTION)}(data, ${JSON.stringify(deltaToJson(delta))})`;
    const merged = sql`json_patch(data, ${plan.mergePatch})`;
    if (plan.replacements.length === 0) return merged;
    return sql`json_set(${merged}, ${join(plan.replacements.map(({ path, json }) => sql`${path}, json(${json})`))})`;
  },
};

export const sqliteDialect: SqlDialect = {
  placeholder: () => '?',
  numbered: false,
  quote: quoteSqlite,
  insertAlias: '',
  upsertClause: (columns) => `ON CONFLICT (id) DO UPDATE SET ${columns.map((column) => `${quoteSqlite(column)} = excluded.${quoteSqlite(column)}`).join(', ')}`,
  existing: quoteSqlite,
  updatedAtNow: NOW_MS,
  // BEGIN IMMEDIATE has taken the write lock already.
  lockRowClause: '',
  concat: (a, b) => sql`(${a} || ${b})`,
  charLength: (text) => sql`length(${text})`,
  // better-sqlite3 blocks the event loop for the length of a statement: short batches, and as long a pause after each.
  purgePacing: { budgetMs: 5, pauseShare: 1 },

  async inspect(runner, table) {
    const rows = await runner.query('SELECT name, type FROM pragma_table_info(?, ?)', [table.name, table.schema ?? 'main']);
    if (rows.length === 0) return null;
    const types = new Map(rows.map((row) => [String(row['name']).toLowerCase(), String(row['type']).toLowerCase()]));
    return {
      columns: new Set(types.keys()),
      hasLockVersion: (types.get('lock_version') ?? '').includes('int'),
      hasChanges: isTextType(types.get('changes')),
      dataType: types.get('data') ?? 'text',
      expiry: findExpiryColumn(types, () => undefined, (type) => type.includes('int')),
    };
  },

  async create(runner, table, options) {
    const schema = table.schema === undefined ? '' : `${quoteSqlite(table.schema)}.`;
    const bare = quoteSqlite(table.name);
    await runner.execute(
      `CREATE TABLE IF NOT EXISTS ${schema}${bare} (
      id TEXT NOT NULL PRIMARY KEY,
      data TEXT NOT NULL,
      changes TEXT,
      expires_at INTEGER NOT NULL,
      created_at INTEGER NOT NULL DEFAULT (${NOW_MS}),
      updated_at INTEGER NOT NULL DEFAULT (${NOW_MS})${options.lockVersion ? ',\n      lock_version INTEGER NOT NULL DEFAULT 0' : ''}${options.userId ? ',\n      user_id TEXT' : ''}
    )`,
      [],
    );
    // An index lives in its table's schema: only its own name is qualified.
    await runner.execute(`CREATE INDEX IF NOT EXISTS ${schema}${quoteSqlite(`${table.name}_expires_at_idx`)} ON ${bare} (expires_at)`, []);
    if (options.userId) await runner.execute(`CREATE INDEX IF NOT EXISTS ${schema}${quoteSqlite(`${table.name}_user_id_idx`)} ON ${bare} (user_id)`, []);
  },

  dataColumn: () => DATA_COLUMN,

  /**
   * A lease row in a small lock table beside the sessions (shared with
   * MySQL, `sql/lease.ts`): SQLite has no named locks, and holding its write
   * lock for a whole purge would stall every other writer.
   */
  purgeLock: leaseLock({
    placeholder: () => '?',
    numbered: false,
    quote: quoteSqlite,
    createLockTable: (qualified) =>
      `CREATE TABLE IF NOT EXISTS ${qualified} (${quoteSqlite('name')} TEXT PRIMARY KEY, ${quoteSqlite('holder')} TEXT NOT NULL, ${quoteSqlite('until')} INTEGER NOT NULL)`,
    insertIgnore: 'INSERT OR IGNORE INTO',
    isMissingTable: (error) => error instanceof Error && /no such table/i.test(error.message),
  }),

  async deleteExpired(runner, { table, expires, cutoff }, size) {
    const batch = compile(sql`DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE ${expires} <= ${cutoff} LIMIT ${size})`, sqliteDialect);
    const removed = await runner.execute(batch.text, batch.bind());
    return { removed, found: removed };
  },
};
