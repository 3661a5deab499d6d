/**
 * The command line:
 *
 *   smart-session-store create-table | purge | stats | check  (--url URL | --config FILE)
 *   smart-session-store import --from STORE --source-url URL  (--url URL | --config FILE)
 *
 * Exit codes: 0 done, 1 the database refused, could not be reached, or a
 * check failed, 2 the command line or configuration was wrong.
 */
import { loadConfig } from './config.js';
import { optionHelp } from './options-doc.js';
import type { SessionStoreOptions } from './options.js';
import { backendNamed } from './backends/registry.js';
import { SessionStore } from './store.js';
import { SessionStoreError } from './errors.js';
import { type ImportSummary, importSessions } from './migrate/import.js';
import { checkPeerOptions, PEER_STORES } from './migrate/peers.js';

/** Exit codes of the command line. */
export const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

/** A flag of the command line. */
interface Flag {
  readonly name: string;
  /** What it takes, for the usage line (`URL`); none for a switch. */
  readonly value?: string;
  readonly help: string;
}

const CONNECTION_FLAGS: readonly Flag[] = [
  {
    name: 'url',
    value: 'URL',
    help: 'postgres://user@host:5432/db, mysql://user@host:3306/db, sqlite:./sessions.db, redis://host:6379/0 (also from SESSION_STORE_URL)',
  },
  { name: 'config', value: 'FILE', help: 'a YAML or JSON file in the Prancer shape (session.store.driver, session.store.options)' },
  { name: 'table', value: 'NAME', help: optionHelp('table') },
];
const JSON_FLAG: Flag = { name: 'json', help: 'print JSON' };
const HELP_FLAG: Flag = { name: 'help', help: 'show this help' };

/** Each command: what it does and the flags it takes. */
const COMMANDS = {
  'create-table': {
    summary: 'create the sessions table and its indexes (if missing)',
    flags: [
      ...CONNECTION_FLAGS,
      { name: 'locking', value: 'MODE', help: `optimistic adds a lock_version column; ${optionHelp('locking')}` },
      { name: 'user-id-key', value: 'KEY', help: `add the user_id column; ${optionHelp('userIdKey')}` },
    ],
  },
  purge: {
    summary: 'delete expired sessions in batches, with progress',
    flags: [...CONNECTION_FLAGS, { name: 'batch-size', value: 'N', help: 'sessions deleted per statement (default 1000)' }],
  },
  stats: { summary: 'count live and expired sessions; size, pending changes, the users with most sessions', flags: [...CONNECTION_FLAGS, JSON_FLAG] },
  check: { summary: 'verify connectivity and the table, and say what is wrong', flags: [...CONNECTION_FLAGS, JSON_FLAG] },
  import: {
    summary: 'copy every live session of another session store into this one, keeping those it has (run again to resume)',
    flags: [
      { name: 'from', value: 'STORE', help: `the store used before: ${PEER_STORES.join(', ')}` },
      { name: 'source-url', value: 'URL', help: 'its database: postgres://..., mysql://..., sqlite:./file.db or redis://... (only read)' },
      { name: 'source-table', value: 'NAME', help: "its table (default: the store's own: session for connect-pg-simple, else sessions)" },
      { name: 'source-prefix', value: 'PREFIX', help: "connect-redis's key prefix (default sess:)" },
      ...CONNECTION_FLAGS,
      { name: 'user-id-key', value: 'KEY', help: `fill the user_id column; ${optionHelp('userIdKey')}` },
      { name: 'batch-size', value: 'N', help: 'sessions read per query (default 500)' },
      JSON_FLAG,
    ],
  },
} as const satisfies Record<string, { summary: string; flags: readonly Flag[] }>;
type Command = keyof typeof COMMANDS;

const EXIT_CODES = 'Exit codes: 0 done, 1 database error or failed check, 2 wrong command line or configuration.';

function flagLines(flags: readonly Flag[]): string {
  const labels = flags.map((flag) => `--${flag.name}${flag.value === undefined ? '' : ` ${flag.value}`}`);
  const width = Math.max(...labels.map((label) => label.length)) + 2;
  return flags.map((flag, index) => `  ${(labels[index] as string).padEnd(width)}${flag.help}`).join('\n');
}

/** The help of the whole command line. */
const HELP = `Usage: smart-session-store <command> (--url URL | --config FILE) [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, command]) => `  ${name.padEnd(14)}${command.summary}`)
  .join('\n')}

Run "smart-session-store <command> --help" for the options of one command.
${EXIT_CODES}
`;

/** The help of one command. */
function commandHelp(name: Command): string {
  const command = COMMANDS[name];
  return `Usage: smart-session-store ${name} (--url URL | --config FILE) [options]

${command.summary[0]?.toUpperCase()}${command.summary.slice(1)}.

Options:
${flagLines([...command.flags, HELP_FLAG])}

${EXIT_CODES}
`;
}

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

/** A wrong command line: said in our words, with the usage of the command. */
class UsageError extends Error {
  constructor(
    message: string,
    readonly command: Command | undefined,
  ) {
    super(message);
  }
}

/** A progress bar drawn in place on a terminal: `[#####-----]  50%  500/1000`. */
export function progressBar(done: number, total: number, width = 30): string {
  const share = total > 0 ? Math.min(1, done / total) : 1;
  const filled = Math.round(share * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${String(Math.round(share * 100)).padStart(3)}%  ${done}/${total}`;
}

/** Edit distance, for "did you mean". */
function distance(left: string, right: string): number {
  const row = Array.from({ length: right.length + 1 }, (_, index) => index);
  for (let i = 1; i <= left.length; i++) {
    let diagonal = row[0] as number;
    row[0] = i;
    for (let j = 1; j <= right.length; j++) {
      const above = row[j] as number;
      row[j] = Math.min(above + 1, (row[j - 1] as number) + 1, diagonal + (left[i - 1] === right[j - 1] ? 0 : 1));
      diagonal = above;
    }
  }
  return row[right.length] as number;
}

function didYouMean(given: string, known: readonly string[], prefix = ''): string {
  const [closest] = [...known].sort((a, b) => distance(given, a) - distance(given, b));
  return closest !== undefined && distance(given, closest) <= 2 ? ` (did you mean ${prefix}${closest}?)` : '';
}

interface ParsedLine {
  readonly command: Command | undefined;
  readonly values: ReadonlyMap<string, string | true>;
  readonly help: boolean;
}

/**
 * Reads `<command> --flag value --flag=value --switch`. A flag's value is
 * taken as it is, even when it starts with a dash (`--batch-size -5` is a
 * negative number, refused as such, not an "ambiguous argument").
 */
function parseLine(argv: readonly string[]): ParsedLine {
  const values = new Map<string, string | true>();
  let command: Command | undefined;
  let help = false;
  for (let index = 0; index < argv.length; index++) {
    const token = argv[index] as string;
    if (token === '-h' || token === '--help') {
      help = true;
      continue;
    }
    if (!token.startsWith('-')) {
      if (command !== undefined) throw new UsageError(`one command at a time: "${command}" and "${token}"`, command);
      if (!(token in COMMANDS)) throw new UsageError(`unknown command "${token}"${didYouMean(token, Object.keys(COMMANDS))}`, undefined);
      command = token as Command;
      continue;
    }
    const [name = '', inline] = token.replace(/^--?/, '').split(/=(.*)/s, 2);
    const allowed: readonly Flag[] =
      command === undefined
        ? [
            ...new Map(
              Object.values(COMMANDS)
                .flatMap((known) => known.flags)
                .map((flag) => [flag.name, flag]),
            ).values(),
          ]
        : COMMANDS[command].flags;
    const flag = allowed.find((known) => known.name === name);
    if (flag === undefined) {
      const where = command === undefined ? '' : ` of ${command}`;
      throw new UsageError(
        `unknown option --${name}${where}${didYouMean(
          name,
          allowed.map((known) => known.name),
          '--',
        )}`,
        command,
      );
    }
    if (flag.value === undefined) {
      if (inline !== undefined) throw new UsageError(`--${name} takes no value`, command);
      values.set(name, true);
      continue;
    }
    const value = inline ?? argv[++index];
    if (value === undefined || value === '') throw new UsageError(`--${name} needs a value: --${name} ${flag.value}`, command);
    values.set(name, value);
  }
  return { command, values, help };
}

async function storeOptions(command: Command, values: ReadonlyMap<string, string | true>): Promise<SessionStoreOptions> {
  const config = values.get('config') as string | undefined;
  const url = (values.get('url') as string | undefined) ?? (config === undefined ? process.env['SESSION_STORE_URL'] : undefined);
  if (url !== undefined && config !== undefined) throw new UsageError('give --url or --config, not both', command);
  let options: SessionStoreOptions;
  if (config !== undefined) options = await loadConfig(config);
  else if (url !== undefined) options = { url };
  else throw new UsageError('--url or --config is required (or SESSION_STORE_URL)', command);
  const overrides: Record<string, unknown> = {};
  if (values.has('table')) overrides['table'] = values.get('table');
  if (values.has('locking')) overrides['locking'] = values.get('locking');
  if (values.has('user-id-key')) overrides['userIdKey'] = values.get('user-id-key');
  // A command is one short run: no background purge of its own.
  return { ...options, ...overrides, autopurge: false };
}

function tableName(store: SessionStore): string {
  const { schema, name } = store.options.table;
  return schema === undefined ? name : `${schema}.${name}`;
}

/** Where the store keeps its sessions, in words: `table sessions`, `keys under "sessions:"`. */
function place(store: SessionStore): string {
  return backendNamed(store.dialect)?.place?.(tableName(store)) ?? `table ${tableName(store)}`;
}

/** True when the backend expires sessions by itself: nothing to create, nothing to purge. */
function expiresItself(store: SessionStore): boolean {
  return backendNamed(store.dialect)?.expiresItself === true;
}

/** What went wrong, in the words of a one-shot command (the store's own retries mean nothing here). */
function failureText(error: unknown): string {
  if (!(error instanceof SessionStoreError)) return (error as Error).message;
  if (error.code === 'ERR_UNAVAILABLE') return error.message.replace(/; the store keeps checking and recovers by itself$/, '');
  return error.message;
}

/** A byte count as a person reads it. */
function bytes(count: number): string {
  if (count < 1024) return `${count} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let value = count / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(1)} ${units[unit]}`;
}

/** A positive `--batch-size`, or none given. */
function batchSizeOf(command: Command, values: ReadonlyMap<string, string | true>): number | undefined {
  const given = values.get('batch-size');
  const batchSize = given === undefined ? undefined : Number(given);
  if (batchSize !== undefined && (!Number.isInteger(batchSize) || batchSize <= 0)) {
    throw new UsageError(`--batch-size must be a positive integer, got ${String(given)}`, command);
  }
  return batchSize;
}

/** `n thing` or `n things`. */
function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? '' : 's'}`;
}

/** The import command: flags checked, progress on stderr (a bar on a terminal, a line per tenth elsewhere), a summary. */
async function runImport(store: SessionStore, values: ReadonlyMap<string, string | true>, io: CliIo): Promise<number> {
  const flag = (name: string): string | undefined => values.get(name) as string | undefined;
  const from = flag('from');
  if (from === undefined) throw new UsageError(`--from is required: one of ${PEER_STORES.join(', ')}`, 'import');
  const url = flag('source-url');
  if (url === undefined) throw new UsageError(`--source-url is required: the database ${from} keeps its sessions in`, 'import');
  let source: ReturnType<typeof checkPeerOptions>;
  try {
    source = checkPeerOptions({ store: from, url, table: flag('source-table'), prefix: flag('source-prefix') }, 'source');
  } catch (error) {
    const message = (error as Error).message
      .replace(/option "source\.store"/, '--from')
      .replace(/option "source\.url"/, '--source-url')
      .replace(/option "source\.table"/, '--source-table')
      .replace(/option "source\.prefix"/, '--source-prefix')
      .replace(/takes "(table|prefix)"/, 'takes --source-$1');
    throw new UsageError(message, 'import');
  }
  const batchSize = batchSizeOf('import', values);
  let nextLine = 0.1;
  let batches = 0;
  const summary = await importSessions(store, source, {
    ...(batchSize === undefined ? {} : { batchSize }),
    onProgress: (counts, total) => {
      const done = counts.copied + counts.expired + counts.present + counts.unreadable;
      batches++;
      if (io.interactive) {
        io.err(total === undefined ? `\rread ${done}, copied ${counts.copied}` : `\r${progressBar(done, Math.max(total, done))}`);
      } else if (total === undefined ? batches % 10 === 0 : total > 0 && done / total >= nextLine) {
        // Plain lines for logs: one per tenth (or per ten batches where the source cannot count), not one per batch.
        io.err(`read ${done}${total === undefined ? '' : ` of ${total}`}, copied ${counts.copied}\n`);
        if (total !== undefined) while (done / total >= nextLine) nextLine += 0.1;
      }
    },
  });
  if (io.interactive) io.err('\n');
  if (values.get('json') === true) {
    io.out(`${JSON.stringify({ from: source.store, table: tableName(store), ...summary } satisfies ImportSummary & Record<string, unknown>)}\n`);
  } else {
    io.out(
      `imported from ${source.store} into ${place(store)}: ${plural(summary.copied, 'session')} copied, ${summary.expired} skipped as expired, ${summary.present} skipped as already present, ${summary.unreadable} unreadable\n`,
    );
  }
  return EXIT.ok;
}

async function run(command: Command, store: SessionStore, values: ReadonlyMap<string, string | true>, io: CliIo): Promise<number> {
  const json = values.get('json') === true;
  switch (command) {
    case 'create-table': {
      await store.createTable();
      const locking = await store.lockingMode();
      io.out(
        expiresItself(store)
          ? `nothing to create on ${store.dialect}: sessions are ${place(store)}, which ${store.dialect} expires itself (locking ${locking})\n`
          : `${place(store)} is ready (${store.dialect}, locking ${locking})\n`,
      );
      return EXIT.ok;
    }
    case 'stats': {
      const { live, expired, dataBytes, indexBytes, pendingChanges, topUsers, locking } = await store.report();
      if (json) {
        io.out(`${JSON.stringify({ table: tableName(store), live, expired, locking, dataBytes, indexBytes, pendingChanges, topUsers })}\n`);
        return EXIT.ok;
      }
      const lines = [`${place(store)}: ${live} live, ${expired} expired`];
      if (dataBytes !== undefined) lines.push(`  size: ${bytes(dataBytes)} of sessions, ${bytes(indexBytes ?? 0)} of indexes`);
      if (pendingChanges !== undefined) {
        lines.push(
          `  pending changes: ${pendingChanges.sessions} session${pendingChanges.sessions === 1 ? '' : 's'}, ${pendingChanges.length} characters not yet folded in`,
        );
      }
      if (topUsers !== undefined && topUsers.length > 0) {
        lines.push(`  most sessions: ${topUsers.map(({ userId, sessions }) => `${JSON.stringify(userId)} (${sessions})`).join(', ')}`);
      }
      io.out(`${lines.join('\n')}\n`);
      return EXIT.ok;
    }
    case 'import':
      return runImport(store, values, io);
    case 'purge': {
      const batchSize = batchSizeOf(command, values);
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
      if (expiresItself(store) && removed === 0) io.out(`nothing to purge in ${place(store)}: ${store.dialect} removes expired sessions itself\n`);
      else io.out(`purged ${removed} expired session${removed === 1 ? '' : 's'} from ${place(store)}\n`);
      return EXIT.ok;
    }
    case 'check': {
      const report: Record<string, unknown> = { dialect: store.dialect, table: tableName(store) };
      try {
        await store.ready();
        const stats = await store.stats();
        Object.assign(report, { ok: true, locking: await store.lockingMode(), ...stats });
        io.out(
          json
            ? `${JSON.stringify(report)}\n`
            : `ok: ${store.dialect} reachable, ${place(store)} usable (locking ${String(report['locking'])}), ${stats.live} live and ${stats.expired} expired sessions\n`,
        );
        return EXIT.ok;
      } catch (error) {
        const code = error instanceof SessionStoreError ? error.code : 'ERR_DATABASE';
        const problem =
          code === 'ERR_UNAVAILABLE'
            ? 'the database cannot be reached'
            : code === 'ERR_LOGIN_FAILED'
              ? 'the database refused the login'
              : code === 'ERR_TABLE_MISSING'
                ? `table ${tableName(store)} is missing: run create-table`
                : code === 'ERR_SCHEMA'
                  ? `table ${tableName(store)} has the wrong shape`
                  : code === 'ERR_DRIVER_MISSING'
                    ? 'the database driver is not installed'
                    : 'the database refused';
        Object.assign(report, { ok: false, code, problem, detail: failureText(error) });
        io.out(json ? `${JSON.stringify(report)}\n` : `not ok: ${problem}\n  [${code}] ${failureText(error)}\n`);
        return EXIT.failed;
      }
    }
  }
}

/** Runs the command line; resolves to the exit code. */
export async function main(argv: readonly string[], io: CliIo = processIo): Promise<number> {
  let line: ParsedLine;
  try {
    line = parseLine(argv);
  } catch (error) {
    const usage = error instanceof UsageError && error.command !== undefined ? commandHelp(error.command) : HELP;
    io.err(`smart-session-store: ${(error as Error).message}\n\n${usage}`);
    return EXIT.usage;
  }
  const { command, values, help } = line;
  if (help) {
    io.out(command === undefined ? HELP : commandHelp(command));
    return EXIT.ok;
  }
  if (command === undefined) {
    io.err(`smart-session-store: no command given\n\n${HELP}`);
    return EXIT.usage;
  }
  let store: SessionStore;
  try {
    store = new SessionStore(await storeOptions(command, values));
  } catch (error) {
    io.err(`smart-session-store ${command}: ${(error as Error).message}\n\n${commandHelp(command)}`);
    return EXIT.usage;
  }
  try {
    return await run(command, store, values, io);
  } catch (error) {
    if (error instanceof UsageError) {
      io.err(`smart-session-store ${command}: ${error.message}\n\n${commandHelp(command)}`);
      return EXIT.usage;
    }
    const code = error instanceof SessionStoreError ? ` [${error.code}]` : '';
    io.err(`${command} failed${code}: ${failureText(error)}\n`);
    return EXIT.failed;
  } finally {
    await store.close().catch(() => undefined);
  }
}
