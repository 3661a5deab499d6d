/** What is MySQL's and MariaDB's own: `?` placeholders, backquotes, JSON_MERGE_PATCH, ON DUPLICATE KEY, INSERT IGNORE. */
import { leaseLock } from '../sql/lease.js';
import { planMergePatch } from '../sql/merge-patch.js';
import type { DataColumn, SqlDialect } from '../sql/sql-dialect.js';
import { compile, EMPTY, join, raw, sql } from '../sql/statement.js';
import { findExpiryColumn, isTextType } from '../sql/table-shape.js';

/** Backquotes an identifier that has already been validated. */
export function quoteMysql(name: string): string {
  return `\`${name.replace(/`/g, '``')}\``;
}

/** The data column as text, whatever the driver made of it (MySQL's JSON type arrives parsed). */
function dataText(value: unknown): string | null {
  if (typeof value === 'string') return value;
  if (value === null || value === undefined) return null;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  return JSON.stringify(value);
}

const DATA_COLUMN: DataColumn = {
  read: raw('data'),
  text: dataText,
  write: (text) => sql`${text}`,
  merge(delta) {
    // A merge patch carries the delta's merge rule; values it cannot express (null, whole objects) are set by path after it.
    const plan = planMergePatch(delta);
    if (plan === null) return null;
    const merged = sql`JSON_MERGE_PATCH(data, ${plan.mergePatch})`;
    if (plan.replacements.length === 0) return merged;
    return sql`JSON_SET(${merged}, ${join(plan.replacements.map(({ path, json }) => sql`${path}, JSON_EXTRACT(${json}, '$')`))})`;
  },
};

export const mysqlDialect: SqlDialect = {
  placeholder: () => '?',
  numbered: false,
  quote: quoteMysql,
  insertAlias: '',
  upsertClause: (columns) => `ON DUPLICATE KEY UPDATE ${columns.map((column) => `${quoteMysql(column)} = VALUES(${quoteMysql(column)})`).join(', ')}`,
  existing: quoteMysql,
  // (ON DUPLICATE KEY UPDATE id = id would count the row found: mysql2 connects with CLIENT_FOUND_ROWS.)
  insertUnlessTaken: { verb: 'INSERT IGNORE INTO', clause: '' },
  // ON UPDATE CURRENT_TIMESTAMP keeps the store's own updated_at current.
  updatedAtNow: undefined,
  lockRowClause: ' FOR UPDATE',
  concat: (a, b) => sql`CONCAT(${a}, ${b})`,
  charLength: (text) => sql`CHAR_LENGTH(${text})`,

  // A TIMESTAMP is kept in UTC and UNIX_TIMESTAMP reads it back whatever the session's time zone.
  instantMs: (column, type) =>
    type === 'timestamp' || type === 'datetime'
      ? sql`ROUND(UNIX_TIMESTAMP(${column}) * 1000)`
      : ['int', 'bigint', 'decimal'].includes(type)
        ? column
        : undefined,

  async tableSize(runner, table) {
    // InnoDB's figures are estimates, refreshed by ANALYZE TABLE and in the background.
    const rows = await runner.query(
      'SELECT DATA_LENGTH AS data, INDEX_LENGTH AS indexes FROM information_schema.TABLES WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?',
      [table.schema ?? null, table.name],
    );
    const row = rows[0];
    if (row === undefined || row['data'] === null) return undefined;
    return { dataBytes: Number(row['data']), indexBytes: Number(row['indexes']) };
  },

  async inspect(runner, table) {
    const rows = await runner.query(
      `SELECT COLUMN_NAME AS name, DATA_TYPE AS type, CHARACTER_OCTET_LENGTH AS capacity, COLUMN_KEY AS keyed FROM information_schema.COLUMNS
        WHERE TABLE_SCHEMA = COALESCE(?, DATABASE()) AND TABLE_NAME = ?`,
      [table.schema ?? null, table.name],
    );
    if (rows.length === 0) return null;
    const types = new Map(rows.map((row) => [String(row['name']).toLowerCase(), String(row['type']).toLowerCase()]));
    const column = Number(rows.find((row) => String(row['name']).toLowerCase() === 'data')?.['capacity']);
    const packet = Number((await runner.query('SELECT @@max_allowed_packet AS packet', []))[0]?.['packet']);
    // The whole statement travels in one packet, the text escaped (a quote becomes two bytes): half, less room for the rest.
    const perStatement = Number.isFinite(packet) && packet > 0 ? Math.floor((packet - 65_536) / 2) : Number.POSITIVE_INFINITY;
    const columnBytes = Number.isFinite(column) && column > 0 ? column : Number.POSITIVE_INFINITY;
    return {
      // A TEXT column holds 64 KiB: the store refuses larger sessions rather than let the server refuse or cut them.
      dataCapacity:
        columnBytes <= perStatement
          ? columnBytes < Number.POSITIVE_INFINITY
            ? { bytes: columnBytes, limitedBy: 'the data column' }
            : undefined
          : { bytes: perStatement, limitedBy: `the server's max_allowed_packet (${packet} bytes; raise it to store more)` },
      columns: new Set(types.keys()),
      columnTypes: types,
      hasLockVersion: ['int', 'bigint', 'smallint', 'mediumint', 'tinyint'].includes(types.get('lock_version') ?? ''),
      hasChanges: isTextType(types.get('changes')),
      // InnoDB keeps a table's rows in the order of its primary key.
      storageOrder: rows.some((row) => String(row['name']).toLowerCase() === 'id' && row['keyed'] === 'PRI') ? 'id' : undefined,
      dataType: types.get('data') ?? 'longtext',
      // DATETIME and TIMESTAMP depend on the session time zone: only integer expiry columns are understood.
      expiry: findExpiryColumn(
        types,
        () => undefined,
        (type) => ['int', 'bigint', 'mediumint', 'decimal'].includes(type),
      ),
    };
  },

  async create(runner, table, options) {
    const qualified = table.schema === undefined ? quoteMysql(table.name) : `${quoteMysql(table.schema)}.${quoteMysql(table.name)}`;
    // Binary collation on id: session ids (and their hashes) are case-sensitive.
    await runner.execute(
      `CREATE TABLE IF NOT EXISTS ${qualified} (
      id VARCHAR(256) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      data LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
      changes LONGTEXT CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,
      expires_at BIGINT NOT NULL,
      created_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3),
      updated_at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),${options.lockVersion ? '\n      lock_version INT NOT NULL DEFAULT 0,' : ''}${options.userId ? '\n      user_id VARCHAR(255) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NULL,' : ''}${options.client ? '\n      client TEXT CHARACTER SET utf8mb4 NULL,' : ''}
      PRIMARY KEY (id),
      KEY ${quoteMysql(`${table.name}_expires_at_idx`)} (expires_at)${options.userId ? `,\n      KEY ${quoteMysql(`${table.name}_user_id_idx`)} (user_id)` : ''}
    ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin`,
      [],
    );
  },

  dataColumn: () => DATA_COLUMN,

  /**
   * A lease row beside the sessions (`sql/lease.ts`), not GET_LOCK: a named
   * lock belongs to one connection on one server, and each node of a Galera
   * cluster grants it on its own. Two nodes inserting the same lease row
   * collide at certification instead, and one of them loses.
   */
  purgeLock: leaseLock({
    placeholder: () => '?',
    numbered: false,
    quote: quoteMysql,
    // InnoDB with a primary key: a cluster replicates nothing else. UNTIL is a reserved word in MySQL, hence the quotes.
    createLockTable: (qualified) =>
      `CREATE TABLE IF NOT EXISTS ${qualified} (
      ${quoteMysql('name')} VARCHAR(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
      ${quoteMysql('holder')} VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
      ${quoteMysql('until')} BIGINT NOT NULL,
      PRIMARY KEY (${quoteMysql('name')})
    ) ENGINE=InnoDB`,
    insertIgnore: 'INSERT IGNORE INTO',
    // ER_NO_SUCH_TABLE
    isMissingTable: (error) => (error as { errno?: unknown } | null)?.errno === 1146,
  }),

  async deleteExpired(runner, { table, expires, cutoff }, size) {
    // Expired ids first, read without locks; then a delete by primary key. A ranged DELETE ... LIMIT may scan
    // (and lock) live rows too, and deadlock with saves holding them.
    const select = compile(sql`SELECT id FROM ${table} WHERE ${expires} <= ${cutoff} LIMIT ${size}`, mysqlDialect);
    const ids = (await runner.query(select.text, select.bind())).map((row) => row['id']);
    if (ids.length === 0) return { removed: 0, found: 0 };
    // mysql2 expands an array parameter into a list. What the DELETE removed is counted, not what the SELECT saw: a
    // row renewed meanwhile stays, and on a cluster a row another node removed already is no longer there.
    const remove = compile(sql`DELETE FROM ${table} WHERE id IN (${ids}) AND ${expires} <= ${cutoff}`, mysqlDialect);
    return { removed: await runner.execute(remove.text, remove.bind()), found: ids.length };
  },

  async deleteExpiredInStorageOrder(runner, { table, expires, cutoff, storageOrder }, size, after) {
    const order = storageOrder ?? raw('id');
    // A read without locks, in primary-key order: the rows of a few pages of the clustered index.
    const from = after === undefined ? EMPTY : sql`WHERE ${order} > ${after}`;
    const select = compile(sql`SELECT ${order} AS k, ${expires} <= ${cutoff} AS expired FROM ${table} ${from} ORDER BY ${order} LIMIT ${size}`, mysqlDialect);
    const rows = await runner.query(select.text, select.bind());
    const ids = rows.filter((row) => Number(row['expired']) === 1).map((row) => row['k']);
    // By primary key, as in deleteExpired: a ranged delete would lock the live rows of the window too.
    const remove = compile(sql`DELETE FROM ${table} WHERE ${order} IN (${ids}) AND ${expires} <= ${cutoff}`, mysqlDialect);
    const removed = ids.length === 0 ? 0 : await runner.execute(remove.text, remove.bind());
    return { examined: rows.length, expired: ids.length, removed, last: rows.at(-1)?.['k'] };
  },
};
