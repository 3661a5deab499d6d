/**
 * The command line: `smart-session-store create-table --url URL`.
 *
 * Exit codes: 0 done, 1 the database refused or could not be reached,
 * 2 the command line was wrong.
 */
import { parseArgs } from 'node:util';
import { SessionStore } from './core/session-store.js';
import { SessionStoreError } from './errors.js';
import type { LockingMode } from './core/options.js';

/** Exit codes of the command line. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

const HELP = `Usage: smart-session-store <command> --url URL [options]

Commands:
  create-table   Create the sessions table and its expiry index (if missing)

Options:
  --url URL          postgres://user@host:5432/db, mysql://user@host:3306/db,
                     sqlite:./sessions.db (also from SESSION_STORE_URL)
  --table NAME       table or schema.table (default: sessions)
  --locking MODE     optimistic adds a lock_version column (default: atomic)
  -h, --help         show this help

Exit codes: 0 done, 1 database error, 2 wrong command line.
`;

/** Output streams, replaceable in tests. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
};

/** Runs the command line; resolves to the exit code. */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        table: { type: 'string' },
        locking: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
    });
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${HELP}`);
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  if (values.help || positionals.length === 0) {
    (values.help ? io.out : io.err)(HELP);
    return values.help ? EXIT.ok : EXIT.usage;
  }
  const [command, ...extra] = positionals;
  if (command !== 'create-table' || extra.length > 0) {
    io.err(`unknown command: ${positionals.join(' ')}\n\n${HELP}`);
    return EXIT.usage;
  }
  const url = values.url ?? process.env['SESSION_STORE_URL'];
  if (url === undefined) {
    io.err(`--url is required\n\n${HELP}`);
    return EXIT.usage;
  }
  let store: SessionStore;
  try {
    store = new SessionStore({
      url,
      ...(values.table === undefined ? {} : { table: values.table }),
      ...(values.locking === undefined ? {} : { locking: values.locking as LockingMode }),
    });
  } catch (error) {
    io.err(`${(error as Error).message}\n`);
    return EXIT.usage;
  }
  try {
    await store.createTable();
    const { schema, name } = store.options.table;
    io.out(`table ${schema === undefined ? name : `${schema}.${name}`} is ready (${store.dialect}, locking ${await store.lockingMode()})\n`);
    return EXIT.ok;
  } catch (error) {
    const code = error instanceof SessionStoreError ? ` [${error.code}]` : '';
    io.err(`create-table failed${code}: ${(error as Error).message}\n`);
    return EXIT.failed;
  } finally {
    await store.close().catch(() => undefined);
  }
}
