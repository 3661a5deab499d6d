/**
 * The command line:
 *
 *   smart-session-store create-table | purge | stats | check  (--url URL | --config FILE)
 *
 * Exit codes: 0 done, 1 the database refused, could not be reached, or a
 * check failed, 2 the command line or configuration was wrong.
 */
import { parseArgs } from 'node:util';
import { loadConfig } from './config.js';
import { optionHelp } from './options-doc.js';
import type { LockingMode } from './core/options.js';
import type { SessionStoreOptions } from './options.js';
import { SessionStore } from './store.js';
import { SessionStoreError } from './errors.js';

/** Exit codes of the command line. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

const COMMANDS = ['create-table', 'purge', 'stats', 'check'] as const;
type Command = (typeof COMMANDS)[number];

const HELP = `Usage: smart-session-store <command> (--url URL | --config FILE) [options]

Commands:
  create-table   create the sessions table and its indexes (if missing)
  purge          delete expired sessions in batches, with progress
  stats          count live and expired sessions
  check          verify connectivity and the table, and say what is wrong

Options:
  --url URL          postgres://user@host:5432/db, mysql://user@host:3306/db,
                     sqlite:./sessions.db (also from SESSION_STORE_URL)
  --config FILE      a YAML or JSON file in the Prancer shape
                     (session.store.driver, session.store.options)
  --table NAME       ${optionHelp('table')}
  --locking MODE     create-table: optimistic adds a lock_version column;
                     ${optionHelp('locking')}
  --user-id-key KEY  create-table: add the user_id column; ${optionHelp('userIdKey')}
  --batch-size N     purge: rows per statement (default 1000)
  --json             stats, check: print JSON
  -h, --help         show this help

Exit codes: 0 done, 1 database error or failed check, 2 wrong command line or configuration.
`;

/** Output streams, replaceable in tests. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  /** True when progress can be drawn in place (an interactive terminal). */
  readonly interactive: boolean;
}

const processIo: CliIo = {
  out: (text) => process.stdout.write(text),
  err: (text) => process.stderr.write(text),
  interactive: process.stderr.isTTY === true,
};

class UsageError extends Error {}

/** A progress bar drawn in place on a terminal: `[#####-----]  50%  500/1000`. */
export function progressBar(done: number, total: number, width = 30): string {
  const share = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(share * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.round(share * 100)).padStart(3)}%  ${done}/${total}`;
}

async function storeOptions(values: Record<string, string | boolean | undefined>): Promise<SessionStoreOptions> {
  const url = (values['url'] as string | undefined) ?? (values['config'] === undefined ? process.env['SESSION_STORE_URL'] : undefined);
  if (url !== undefined && values['config'] !== undefined) throw new UsageError('give --url or --config, not both');
  let options: SessionStoreOptions;
  if (values['config'] !== undefined) options = await loadConfig(values['config'] as string);
  else if (url !== undefined) options = { url };
  else throw new UsageError('--url or --config is required');
  const overrides: Record<string, unknown> = {};
  if (values['table'] !== undefined) overrides['table'] = values['table'];
  if (values['locking'] !== undefined) overrides['locking'] = values['locking'] as LockingMode;
  if (values['user-id-key'] !== undefined) overrides['userIdKey'] = values['user-id-key'];
  // A command is one short run: no background purge of its own.
  return { ...options, ...overrides, autopurge: false };
}

function tableName(store: SessionStore): string {
  const { schema, name } = store.options.table;
  return schema === undefined ? name : `${schema}.${name}`;
}

async function run(command: Command, store: SessionStore, values: Record<string, string | boolean | undefined>, io: CliIo): Promise<number> {
  const json = values['json'] === true;
  switch (command) {
    case 'create-table': {
      await store.createTable();
      io.out(`table ${tableName(store)} is ready (${store.dialect}, locking ${await store.lockingMode()})\n`);
      return EXIT.ok;
    }
    case 'stats': {
      const stats = await store.stats();
      io.out(json ? `${JSON.stringify({ table: tableName(store), ...stats })}\n` : `table ${tableName(store)}: ${stats.live} live, ${stats.expired} expired\n`);
      return EXIT.ok;
    }
    case 'purge': {
      const batchSize = values['batch-size'] === undefined ? undefined : Number(values['batch-size']);
      if (batchSize !== undefined && (!Number.isInteger(batchSize) || batchSize <= 0)) throw new UsageError('--batch-size must be a positive integer');
      const { expired } = await store.stats();
      let nextLine = 0.1;
      const removed = await store.purge({
        ...(batchSize === undefined ? {} : { batchSize }),
        onProgress: (count) => {
          if (io.interactive) {
            io.err(`\r${progressBar(count, Math.max(expired, count))}`);
          } else if (expired > 0 && count / expired >= nextLine) {
            // Plain lines for logs: one per tenth, not one per batch.
            io.err(`purged ${count} of ${expired}\n`);
            while (count / expired >= nextLine) nextLine += 0.1;
          }
        },
      });
      if (io.interactive) io.err('\n');
      io.out(`purged ${removed} expired session${removed === 1 ? '' : 's'} from ${tableName(store)}\n`);
      return EXIT.ok;
    }
    case 'check': {
      const report: Record<string, unknown> = { dialect: store.dialect, table: tableName(store) };
      try {
        await store.ready();
        const stats = await store.stats();
        Object.assign(report, { ok: true, locking: await store.lockingMode(), ...stats });
        io.out(json ? `${JSON.stringify(report)}\n` : `ok: ${store.dialect} reachable, table ${tableName(store)} usable (locking ${String(report['locking'])}), ${stats.live} live and ${stats.expired} expired sessions\n`);
        return EXIT.ok;
      } catch (error) {
        const code = error instanceof SessionStoreError ? error.code : 'ERR_DATABASE';
        const problem =
          code === 'ERR_UNAVAILABLE' ? 'the database cannot be reached'
          : code === 'ERR_TABLE_MISSING' ? `table ${tableName(store)} is missing: run create-table`
          : code === 'ERR_SCHEMA' ? `table ${tableName(store)} has the wrong shape`
          : code === 'ERR_DRIVER_MISSING' ? 'the database driver is not installed'
          : 'the database refused';
        Object.assign(report, { ok: false, code, problem, detail: (error as Error).message });
        io.out(json ? `${JSON.stringify(report)}\n` : `not ok: ${problem}\n  [${code}] ${(error as Error).message}\n`);
        return EXIT.failed;
      }
    }
  }
}

/** Runs the command line; resolves to the exit code. */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({
      args: [...argv],
      allowPositionals: true,
      options: {
        url: { type: 'string' },
        config: { type: 'string' },
        table: { type: 'string' },
        locking: { type: 'string' },
        'user-id-key': { type: 'string' },
        'batch-size': { type: 'string' },
        json: { type: 'boolean' },
        help: { type: 'boolean', short: 'h' },
      },
    }));
  } catch (error) {
    io.err(`${(error as Error).message}\n\n${HELP}`);
    return EXIT.usage;
  }
  if (values['help'] === true) {
    io.out(HELP);
    return EXIT.ok;
  }
  const [command, ...extra] = positionals;
  if (command === undefined || !(COMMANDS as readonly string[]).includes(command) || extra.length > 0) {
    io.err(`${command === undefined ? 'no command given' : `unknown command: ${positionals.join(' ')}`}\n\n${HELP}`);
    return EXIT.usage;
  }
  let store: SessionStore;
  try {
    store = new SessionStore(await storeOptions(values));
  } catch (error) {
    io.err(`${(error as Error).message}\n${error instanceof UsageError ? `\n${HELP}` : ''}`);
    return EXIT.usage;
  }
  try {
    return await run(command as Command, store, values, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`${error.message}\n\n${HELP}`);
      return EXIT.usage;
    }
    const code = error instanceof SessionStoreError ? ` [${error.code}]` : '';
    io.err(`${command} failed${code}: ${(error as Error).message}\n`);
    return EXIT.failed;
  } finally {
    await store.close().catch(() => undefined);
  }
}
