/** What is PostgreSQL's own: jsonb, `$n` placeholders, ON CONFLICT, advisory locks, its catalogue. */
import type { DataColumn, PurgeLock, SqlDialect } from '../sql/sql-dialect.js';
import { compile, quoteIdentifier, raw, sql, type Sql } from '../sql/statement.js';
import { findExpiryColumn, isTextType, type TableInfo } from '../sql/table-shape.js';
import { asJsonb, deltaExpression } from './delta-sql.js';

const quotePostgres = quoteIdentifier;

const INTEGER_TYPES = ['integer', 'bigint', 'smallint'];

/**
 * The purge lock: a transaction-level advisory lock, taken anew inside each
 * batch's transaction and gone with its COMMIT. A session-level lock would
 * belong to the server connection, which a pooler in transaction mode
 * (PgBouncer) hands to other clients between transactions: the unlock would
 * run elsewhere and the lock stay held for good. A batch that finds the lock
 * taken ends this purge: another process is purging (if that happens at the
 * first batch, this purge reports that it did not run).
 */
const transactionAdvisoryLock: PurgeLock = {
  async run(driver, target, purge) {
    let granted = false;
    const removed = await purge((work) =>
      driver.transaction(async (transaction) => {
        const [row] = await transaction.query('SELECT pg_try_advisory_xact_lock(hashtext($1)) AS locked', [target.lockName]);
        if (row?.['locked'] !== true) return null;
        granted = true;
        return work(transaction);
      }),
    );
    return granted ? removed : null;
  },
};

export const postgresDialect: SqlDialect = {
  placeholder: (index) => `$${index}`,
  numbered: true,
  quote: quotePostgres,
  insertAlias: ' AS s',
  upsertClause: (columns) =>
    `ON CONFLICT (id) DO UPDATE SET ${columns.map((column) => `${quotePostgres(column)} = EXCLUDED.${quotePostgres(column)}`).join(', ')}`,
  existing: (column) => `s.${quotePostgres(column)}`,
  insertUnlessTaken: { verb: 'INSERT INTO', clause: 'ON CONFLICT (id) DO NOTHING' },
  updatedAtNow: 'now()',
  lockRowClause: ' FOR UPDATE',
  concat: (a, b) => sql`(${a} || ${b})`,
  charLength: (text) => sql`length(${text}::text)`,
  timestampExpiry: {
    // A timestamp without time zone holds UTC, as the store writes and reads it; float8 arithmetic, exact to the
    // microsecond that PostgreSQL rounds to.
    fromMs: (value, zoned) => (zoned ? sql`to_timestamp(${value}::float8 / 1000)` : sql`(to_timestamp(${value}::float8 / 1000) AT TIME ZONE 'UTC')`),
    toMs: (column) => sql`(date_part('epoch', ${column}) * 1000)`,
  },

  instantMs: (column, type) => (type.startsWith('timestamp') ? sql`(date_part('epoch', ${column}) * 1000)` : INTEGER_TYPES.includes(type) ? column : undefined),

  async inspect(runner, table) {
    const rows = await runner.query(
      `SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = COALESCE($1, current_schema()) AND table_name = $2`,
      [table.schema ?? null, table.name],
    );
    if (rows.length === 0) return null;
    const types = new Map(rows.map((row) => [String(row['column_name']).toLowerCase(), String(row['data_type'])]));
    return {
      columns: new Set(types.keys()),
      columnTypes: types,
      hasLockVersion: INTEGER_TYPES.includes(types.get('lock_version') ?? ''),
      hasChanges: isTextType(types.get('changes')),
      dataType: types.get('data') ?? 'jsonb',
      expiry: findExpiryColumn(
        types,
        (type) => (type === 'timestamp with time zone' ? 'timestamptz' : type.startsWith('timestamp') ? 'timestamp' : undefined),
        (type) => [...INTEGER_TYPES, 'numeric'].includes(type),
      ),
    };
  },

  async tableSize(runner, table) {
    const qualified = table.schema === undefined ? quotePostgres(table.name) : `${quotePostgres(table.schema)}.${quotePostgres(table.name)}`;
    // The heap with its TOAST (large sessions live there), and every index.
    const rows = await runner.query('SELECT pg_table_size(to_regclass($1)) AS data, pg_indexes_size(to_regclass($1)) AS indexes', [qualified]);
    const row = rows[0];
    if (row === undefined || row['data'] === null) return undefined;
    return { dataBytes: Number(row['data']), indexBytes: Number(row['indexes']) };
  },

  async create(runner, table, options) {
    const qualified = table.schema === undefined ? quotePostgres(table.name) : `${quotePostgres(table.schema)}.${quotePostgres(table.name)}`;
    await runner.execute(
      `CREATE TABLE IF NOT EXISTS ${qualified} (
      id text PRIMARY KEY,
      data json NOT NULL,
      changes text,
      expires_at timestamptz NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()${options.lockVersion ? ',\n      lock_version integer NOT NULL DEFAULT 0' : ''}${options.userId ? ',\n      user_id text' : ''}${options.client ? ',\n      client text' : ''}
    )`,
      [],
    );
    await runner.execute(`CREATE INDEX IF NOT EXISTS ${quotePostgres(`${table.name}_expires_at_idx`)} ON ${qualified} (expires_at)`, []);
    if (options.userId) await runner.execute(`CREATE INDEX IF NOT EXISTS ${quotePostgres(`${table.name}_user_id_idx`)} ON ${qualified} (user_id)`, []);
  },

  dataColumn({ dataType }: TableInfo): DataColumn {
    // The store's own tables hold json (read and written as text, merged by appending: core/pending-changes.ts); jsonb,
    // json and text columns of other tables are merged with jsonb operators and converted on the way.
    const cast = dataType === 'jsonb' ? '' : dataType === 'json' ? '::json' : '::text';
    const fromJsonb = (expression: Sql): Sql => (cast === '' ? expression : sql`(${expression})${raw(cast)}`);
    return {
      read: raw('data::text'),
      text: (value) => (typeof value === 'string' ? value : null),
      // A json column takes the text as it is (checked, never rebuilt): no jsonb parse on the way in.
      write: (text) => (dataType === 'json' ? sql`${text}::json` : sql`${text}::jsonb${raw(cast)}`),
      merge: (delta) => fromJsonb(deltaExpression(delta, asJsonb(dataType))),
    };
  },

  purgeLock: transactionAdvisoryLock,

  async deleteExpired(runner, { table, expires, cutoff }, size) {
    // SKIP LOCKED: rows a save holds are left for the next batch instead of waited for.
    const batch = compile(
      sql`DELETE FROM ${table} WHERE id IN (SELECT id FROM ${table} WHERE ${expires} <= ${cutoff} LIMIT ${size} FOR UPDATE SKIP LOCKED) AND ${expires} <= ${cutoff}`,
      postgresDialect,
    );
    const removed = await runner.execute(batch.text, batch.bind());
    return { removed, found: removed };
  },
};
