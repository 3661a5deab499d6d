/** What is SQLite's own: json_patch and json_set, ON CONFLICT, a lease row for the purge lock, pragma_table_info. */
import { deltaToJson } from '../../core/delta.js';
import { leaseLock } from '../sql/lease.js';
import { planMergePatch } from '../sql/merge-patch.js';
import type { ChangesPadding, DataColumn, SqlDialect } from '../sql/sql-dialect.js';
import { compile, EMPTY, join, quoteIdentifier as quoteSqlite, raw, sql } from '../sql/statement.js';
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

/** Documents shorter than this keep unpadded changes: their row most likely fits in its page (4 KiB by default). */
const PAD_FROM_LENGTH = 2048;

/**
 * Pending changes padded with spaces (see {@link SqlDialect.changesPadding}),
 * by a unit of about a sixteenth of the document: a power of two from 256 to
 * 4096 bytes, so the padding adds at most a sixteenth to the row and a run
 * of small appends fills it before the row must grow.
 */
const CHANGES_PADDING: ChangesPadding = {
  unitFor: (documentLength) => (documentLength < PAD_FROM_LENGTH ? 0 : Math.min(4096, Math.max(256, 2 ** Math.floor(Math.log2(documentLength / 16))))),
  // printf's width counts bytes, as length() of a blob does; the parameter arrives as a real, hence the CASTs.
  pad: (text, unit) => sql`printf('%-*s', (CAST(length(CAST(${text} AS BLOB)) / ${unit} AS INTEGER) + 1) * CAST(${unit} AS INTEGER), ${text})`,
  unpadded: raw("rtrim(changes, ' ')"),
};

export const sqliteDialect: SqlDialect = {
  placeholder: () => '?',
  numbered: false,
  quote: quoteSqlite,
  insertAlias: '',
  upsertClause: (columns) => `ON CONFLICT (id) DO UPDATE SET ${columns.map((column) => `${quoteSqlite(column)} = excluded.${quoteSqlite(column)}`).join(', ')}`,
  existing: quoteSqlite,
  insertUnlessTaken: { verb: 'INSERT INTO', clause: 'ON CONFLICT (id) DO NOTHING' },
  updatedAtNow: NOW_MS,
  // BEGIN IMMEDIATE has taken the write lock already.
  lockRowClause: '',
  concat: (a, b) => sql`(${a} || ${b})`,
  charLength: (text) => sql`length(${text})`,
  changesPadding: CHANGES_PADDING,
  // better-sqlite3 blocks the event loop for the length of a statement: short batches, and three times as long a pause
  // after each, so a purge takes at most a quarter of the process's time (at half, an application already half busy
  // had none to spare, and its requests queued).
  purgePacing: { budgetMs: 5, pauseShare: 3 },

  // The store's own tables keep instants as epoch milliseconds.
  instantMs: (column, type) => (type.includes('int') ? column : undefined),

  async tableSize(runner, table) {
    // dbstat is a compile-time option of SQLite (on in better-sqlite3's build); without it, nothing to say.
    const schema = table.schema ?? 'main';
    const pages = await runner
      .query('SELECT name, SUM(pgsize) AS bytes FROM dbstat(?) WHERE name = ? OR name IN (SELECT name FROM pragma_index_list(?, ?)) GROUP BY name', [
        schema,
        table.name,
        table.name,
        schema,
      ])
      .catch(() => undefined);
    if (pages === undefined || pages.length === 0) return undefined;
    let dataBytes = 0;
    let indexBytes = 0;
    for (const row of pages) {
      if (String(row['name']) === table.name) dataBytes += Number(row['bytes']);
      else indexBytes += Number(row['bytes']);
    }
    return { dataBytes, indexBytes };
  },

  async inspect(runner, table) {
    const rows = await runner.query('SELECT name, type, pk FROM pragma_table_info(?, ?)', [table.name, table.schema ?? 'main']);
    if (rows.length === 0) return null;
    const types = new Map(rows.map((row) => [String(row['name']).toLowerCase(), String(row['type']).toLowerCase()]));
    // A rowid table keeps its rows in rowid order; a table WITHOUT ROWID in the order of its primary key.
    // (An SQLite older than 3.37 has no table_list: no walk, the expiry order only.)
    const listed = await runner.query('SELECT wr FROM pragma_table_list(?) WHERE schema = ?', [table.name, table.schema ?? 'main']).catch(() => undefined);
    const withoutRowid = listed === undefined ? undefined : Number(listed[0]?.['wr'] ?? 0) === 1;
    const idIsKey = rows.some((row) => String(row['name']).toLowerCase() === 'id' && Number(row['pk']) === 1);
    return {
      storageOrder: withoutRowid === false ? 'rowid' : withoutRowid && idIsKey ? 'id' : undefined,
      columns: new Set(types.keys()),
      columnTypes: types,
      hasLockVersion: (types.get('lock_version') ?? '').includes('int'),
      hasChanges: isTextType(types.get('changes')),
      dataType: types.get('data') ?? 'text',
      expiry: findExpiryColumn(
        types,
        () => undefined,
        (type) => type.includes('int'),
      ),
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
      updated_at INTEGER NOT NULL DEFAULT (${NOW_MS})${options.lockVersion ? ',\n      lock_version INTEGER NOT NULL DEFAULT 0' : ''}${options.userId ? ',\n      user_id TEXT' : ''}${options.client ? ',\n      client TEXT' : ''}
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

  async deleteExpiredInStorageOrder(runner, { table, expires, cutoff, storageOrder }, size, after) {
    const order = storageOrder ?? raw('rowid');
    const from = after === undefined ? EMPTY : sql`WHERE ${order} > ${after}`;
    // The window's bounds and how many of its rows have expired, counted in the database: no row crosses to JavaScript.
    const measure = compile(
      sql`SELECT count(*) AS examined, coalesce(sum(${expires} <= ${cutoff}), 0) AS expired, max(k) AS last FROM (SELECT ${order} AS k, ${expires} FROM ${table} ${from} ORDER BY ${order} LIMIT ${size})`,
      sqliteDialect,
    );
    const window = (await runner.query(measure.text, measure.bind()))[0] ?? {};
    const examined = Number(window['examined'] ?? 0);
    const expired = Number(window['expired'] ?? 0);
    const last = window['last'];
    if (expired === 0) return { examined, expired, removed: 0, last };
    // SQLite locks the whole database for a write anyway: a range is the cheapest way to name the window's rows.
    const lower = after === undefined ? EMPTY : sql`${order} > ${after} AND `;
    const remove = compile(sql`DELETE FROM ${table} WHERE ${lower}${order} <= ${last} AND ${expires} <= ${cutoff}`, sqliteDialect);
    return { examined, expired, removed: await runner.execute(remove.text, remove.bind()), last };
  },
};
