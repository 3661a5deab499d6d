/**
 * The README and the pages of docs/ say what runs, and link where they say.
 *
 * Every code block of README.md and of docs/ (every .md under it) is checked,
 * according to its language:
 * - `js`: an app of examples/, shown whole (examples.test.ts runs it on every
 *   database); or lines of a block shown whole on the page the text after it
 *   links to (the README's short framework examples), in the same order; or
 *   else it runs as written: pasted into a file of its own and run with node,
 *   against the real databases, it exits 0 and writes nothing to stderr.
 * - `ts`: lines of a block of the page it links to, as above; or else it
 *   type-checks as written (strict, NodeNext, against the package as built),
 *   the README's also running as written. The type check is one tsc run over
 *   all the blocks, each a file of its own, and it is shown to catch what
 *   pasting a block into an app would (a Hono app without the middleware's
 *   environment, as the README once had it).
 * - `yaml`: a configuration file, saved where its first line says in the
 *   folder of every block that runs, and loaded by a block of its page.
 * - `sh`: every command names what exists: npm scripts, packages the project
 *   knows, the command line's commands and their flags, the project's scripts.
 * - `sql`: the seed's table, created on PostgreSQL and used by the store.
 * - `text`: a diagram, not code (docs/architecture.md's layers).
 * A block in any other language fails, and so does a block the checks did not
 * find (each page's fences are counted line by line, apart from the parser).
 *
 * A block that talks to a server of this machine (PostgreSQL, MariaDB, Redis)
 * is skipped when `DATABASE` names other backends only, as the suite is.
 *
 * Every relative link of README.md and docs/ points to a file that exists,
 * and a `#fragment` to a heading of it; every page of docs/ is reachable from
 * the README by following links. The `allowScripts` entry the README gives
 * for npm 11's install-script warning is what npm takes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, posix, relative } from 'node:path';
import { after, describe, test } from 'node:test';

const root = join(import.meta.dirname, '..');
const examplesDirectory = join(root, 'examples');
const exampleFiles = readdirSync(examplesDirectory)
  .filter((file) => file.endsWith('.mjs'))
  .sort();
const examples = new Map(exampleFiles.map((file) => [readFileSync(join(examplesDirectory, file), 'utf8'), file]));

/** The Markdown files under `folder` (a path from the package root), every depth, sorted. */
function markdownUnder(folder: string): string[] {
  return readdirSync(join(root, folder), { recursive: true, encoding: 'utf8' })
    .filter((file) => file.endsWith('.md'))
    .map((file) => posix.join(folder, file.split('\\').join('/')))
    .sort();
}

/** The documents checked here, as paths from the package root: the README and every page of docs/. */
const documents = ['README.md', ...markdownUnder('docs')];
const texts = new Map(documents.map((document) => [document, readFileSync(join(root, document), 'utf8')]));
function textOf(document: string): string {
  const text = texts.get(document);
  if (text === undefined) throw new Error(`${document} is not a checked document`);
  return text;
}

/** A code block: the document it is in, the line its opening fence is on, its language, its code, and the text after it up to the next heading or block. */
interface CodeBlock {
  readonly document: string;
  readonly line: number;
  readonly language: string;
  readonly code: string;
  readonly after: string;
}

/** The code blocks of a document. */
function blocksOf(document: string): CodeBlock[] {
  const text = textOf(document);
  const found: CodeBlock[] = [];
  for (const match of text.matchAll(/^```([^\n`]*)\n([\s\S]*?)^```$/gm)) {
    const end = (match.index ?? 0) + match[0].length;
    const rest = text.slice(end);
    const next = /^(?:#{1,6} |```)/m.exec(rest);
    found.push({
      document,
      line: text.slice(0, match.index).split('\n').length,
      language: (match[1] as string).trim(),
      code: match[2] as string,
      after: next === null ? rest : rest.slice(0, next.index),
    });
  }
  return found;
}

const allBlocks = documents.flatMap(blocksOf);
const where = (block: CodeBlock): string => `${block.document}:${block.line}`;

/** Markdown with its fenced blocks and code spans blanked out, so that neither yields links or headings. */
function prose(text: string): string {
  return text.replace(/^```[^\n]*\n[\s\S]*?^```$/gm, (block) => block.replace(/[^\n]/g, ' ')).replace(/`[^`\n]*`/g, 'code');
}

/** The relative links of a document: `[text](target)`, `![alt](target)` and `[label]: target`. */
function linksOf(document: string): string[] {
  const text = prose(textOf(document));
  const inline = text.matchAll(/\]\(<?([^)\s>]+)>?(?:\s+"[^"]*")?\)/g);
  const definitions = text.matchAll(/^\s*\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm);
  const targets = [...inline, ...definitions].map((match) => match[1] as string);
  return targets.filter((target) => !/^[a-z][a-z0-9+.-]*:/i.test(target));
}

/** GitHub's anchor for a heading's text. */
function slug(heading: string): string {
  const text = heading
    .replace(/!?\[([^\]]*)\]\([^)]*\)/g, '$1')
    .replace(/<[^>]+>/g, '')
    .replace(/`/g, '')
    .trim()
    .toLowerCase();
  return text.replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '').replace(/ /g, '-');
}

/** The anchors of a Markdown file's headings (outside code blocks; repeated headings get -1, -2, ... as on GitHub). */
function anchorsOf(path: string): Set<string> {
  const text = prose(readFileSync(path, 'utf8'));
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const match of text.matchAll(/^#{1,6}\s+(.*?)\s*#*\s*$/gm)) {
    const base = slug(match[1] as string);
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** The pages of the package a block's following text links to (Markdown files, as paths from the root). */
function pagesLinkedAfter(block: CodeBlock): string[] {
  const pages: string[] = [];
  for (const match of prose(block.after).matchAll(/\]\(([^)#\s]+\.md)(?:#[^)\s]*)?\)/g)) {
    const page = posix.normalize(posix.join(posix.dirname(block.document), match[1] as string));
    if (texts.has(page)) pages.push(page);
  }
  return pages;
}

/** A line an excerpt may add to mark what it leaves out: `// ...`, indented or not, with or without words after. */
const ELISION = /^\s*\/\/ \.\.\./;

/** Whether every line of `part` (blank lines and elisions aside) is a line of `whole`, in the same order. */
function isExcerpt(part: string, whole: string): boolean {
  const lines = whole.split('\n');
  let next = 0;
  let matched = 0;
  for (const line of part.split('\n')) {
    if (line.trim() === '' || ELISION.test(line)) continue;
    const at = lines.indexOf(line, next);
    if (at === -1) return false;
    next = at + 1;
    matched += 1;
  }
  return matched >= 3;
}

/** The block shown whole, on a page the text after `block` links to, that `block` shows lines of; undefined when it is none. */
function excerptSource(block: CodeBlock, visiting: ReadonlySet<CodeBlock> = new Set()): CodeBlock | undefined {
  if (block.language !== 'js' && block.language !== 'ts') return undefined;
  for (const page of pagesLinkedAfter(block)) {
    if (page === block.document) continue;
    for (const candidate of blocksOf(page)) {
      if (candidate.language !== block.language || !isExcerpt(block.code, candidate.code)) continue;
      // The source must be checked whole itself, not be lines of yet another block.
      const seen = new Set([...visiting, block]);
      if ([...seen].some((other) => other.document === candidate.document && other.line === candidate.line)) continue;
      if (excerptSource(candidate, seen) === undefined) return candidate;
    }
  }
  return undefined;
}

/** What each block is checked as. */
type Check = 'example' | 'excerpt' | 'run' | 'typecheck' | 'config' | 'shell' | 'sql' | 'diagram';
function checkOf(block: CodeBlock): Check | undefined {
  switch (block.language) {
    case 'js':
      if (examples.has(block.code)) return 'example';
      return excerptSource(block) === undefined ? 'run' : 'excerpt';
    case 'ts':
      return excerptSource(block) === undefined ? 'typecheck' : 'excerpt';
    case 'yaml':
      return 'config';
    case 'sh':
      return 'shell';
    case 'sql':
      return 'sql';
    case 'text':
      return 'diagram';
    default:
      return undefined;
  }
}
const checks = new Map(allBlocks.map((block) => [block, checkOf(block)]));
const blocksChecked = (check: Check): CodeBlock[] => allBlocks.filter((block) => checks.get(block) === check);

const yaml = blocksChecked('config');

/** The backends of this machine a block talks to (besides SQLite), from the URLs in it and in the configuration files it loads. */
function serversOf(block: CodeBlock): string[] {
  const loaded = yaml.filter((config) => block.code.includes(configPath(config) ?? '\0')).map((config) => config.code);
  const text = [block.code, ...loaded].join('\n');
  const local = String.raw`(?:[^\s'"\`/@]*@)?(?:127\.0\.0\.1|localhost)`;
  const servers: string[] = [];
  if (new RegExp(`postgres(?:ql)?://${local}`).test(text) || /driver:\s*\S*\b(?:Pg|pg|postgres)\b/.test(text)) servers.push('postgres');
  if (new RegExp(`(?:mysql|mariadb)://${local}`).test(text) || /driver:\s*\S*\b(?:mysql|mysql2)\b/.test(text)) servers.push('mysql');
  if (new RegExp(`rediss?://${local}`).test(text)) servers.push('redis');
  return servers;
}

/** The backends `DATABASE` selects, by the names the suite takes (undefined: all of them). */
function selectedBackends(): Set<string> | undefined {
  const wanted = process.env['DATABASE'];
  if (wanted === undefined || wanted.trim() === '') return undefined;
  const aliases: Record<string, string> = {
    postgresql: 'postgres',
    pg: 'postgres',
    mariadb: 'mysql',
    mysql2: 'mysql',
    ioredis: 'redis',
    'node-redis': 'redis',
    sqlite3: 'sqlite',
  };
  return new Set(
    wanted
      .split(',')
      .map((given) => given.trim().toLowerCase())
      .map((name) => aliases[name] ?? name),
  );
}

/** Why a block is skipped on this run, if it is. */
function skipReason(block: CodeBlock): string | undefined {
  const selected = selectedBackends();
  const missing = serversOf(block).filter((server) => selected !== undefined && !selected.has(server));
  return missing.length === 0 ? undefined : `it talks to ${missing.join(' and ')}, not in DATABASE=${process.env['DATABASE']}`;
}

/** The path a configuration block says it is saved at (`# config/session.yml`). */
function configPath(block: CodeBlock): string | undefined {
  return /^# (\S+\.(?:ya?ml|json))\n/.exec(block.code)?.[1];
}

/** A fresh folder for one block, inside the package so that `smart-session-store` resolves to this build, as it would once installed. */
function folderFor(block: CodeBlock): string {
  const directory = join(root, '.readme-check', `${block.document.replace(/[^A-Za-z0-9]+/g, '-')}-${block.line}`);
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(directory, { recursive: true });
  for (const config of yaml) {
    const path = configPath(config);
    if (path === undefined) continue;
    mkdirSync(join(directory, dirname(path)), { recursive: true });
    writeFileSync(join(directory, path), config.code);
  }
  return directory;
}

/** Runs a block's file; it must exit 0 and write nothing to stderr. */
function runs(directory: string, block: CodeBlock, args: readonly string[]): void {
  const run = spawnSync(process.execPath, args, { cwd: directory, encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, `${where(block)} exited with ${String(run.status)}${run.signal === null ? '' : ` (${run.signal})`}:\n${run.stdout}${run.stderr}`);
  assert.equal(run.stderr, '', `${where(block)} wrote to stderr:\n${run.stderr}`);
}

/**
 * The Hono app as the README had it, typed: `new Hono()` knows nothing of
 * the middleware's `c.var.session` (TS2339). The type check must refuse it,
 * or it would let such a block through.
 */
const UNTYPED_HONO_APP: CodeBlock = {
  document: 'the Hono app without its environment',
  line: 0,
  language: 'ts',
  after: '',
  code: [
    "import { Hono } from 'hono';",
    "import { HonoSessionStore } from 'smart-session-store/hono';",
    '',
    "const sessions = new HonoSessionStore({ url: 'sqlite:./sessions.db', secret: 'a secret' });",
    'const app = new Hono();',
    'app.use(sessions.middleware);',
    "app.get('/cart', (c) => c.json(c.var.session.data));",
    '',
  ].join('\n'),
};

/** Every TypeScript block to type-check, and the one that must fail. */
const typescriptBlocks = [...blocksChecked('typecheck'), UNTYPED_HONO_APP];

/** The file a block is type-checked as: named after where it comes from, so the tsc output says it too. */
function fileNameOf(block: CodeBlock): string {
  return `${block.document.replace(/[^A-Za-z0-9]+/g, '-')}-${block.line}.ts`;
}

/** Where the blocks are written for the type check: inside the package, as {@link folderFor} says why. */
const typecheckDirectory = join(root, '.readme-check', 'typescript');

/** tsc's errors, by file name of the block they are in; `''` holds those of no block (a broken setup). */
type TypeErrors = ReadonlyMap<string, readonly string[]>;

/**
 * Type-checks every block in one tsc run: each its own file (its own
 * module), strict, NodeNext as an app on Node has it, with
 * `smart-session-store` resolving to this package as built.
 */
function typeCheckAll(): TypeErrors {
  rmSync(typecheckDirectory, { recursive: true, force: true });
  mkdirSync(typecheckDirectory, { recursive: true });
  for (const block of typescriptBlocks) writeFileSync(join(typecheckDirectory, fileNameOf(block)), block.code);
  const compilerOptions = {
    module: 'nodenext',
    moduleResolution: 'nodenext',
    target: 'es2022',
    strict: true,
    noEmit: true,
    types: ['node'],
    skipLibCheck: true,
  };
  writeFileSync(join(typecheckDirectory, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: typescriptBlocks.map(fileNameOf) }));
  const checked = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', typecheckDirectory, '--pretty', 'false'], {
    encoding: 'utf8',
  });
  const errors = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of `${checked.stdout}${checked.stderr}`.split('\n')) {
    if (line.trim() === '') continue;
    // `file.ts(line,column): error TS...`, then indented lines that go on with the same error.
    const located = /^(?:.*[\\/])?([^\\/(]+\.ts)\((\d+),(\d+)\): (.*)$/.exec(line);
    if (located !== null) {
      const [, file = '', row = '', column = '', message = ''] = located;
      const block = typescriptBlocks.find((candidate) => fileNameOf(candidate) === file);
      const at = block === undefined ? `${file}:${row}:${column}` : `${block.document}:${block.line + Number(row)}:${column}`;
      current = errors.get(block === undefined ? '' : file) ?? [];
      errors.set(block === undefined ? '' : file, current);
      current.push(`${at} ${message}`);
    } else if (/^\s/.test(line) && current !== undefined) {
      current.push(line);
    } else {
      current = errors.get('') ?? [];
      errors.set('', current);
      current.push(line);
    }
  }
  if (checked.status !== 0 && errors.size === 0) errors.set('', [`tsc exited with ${String(checked.status)} and said nothing`]);
  return errors;
}

let typeErrors: TypeErrors | undefined;
/** tsc's errors for a block's file, from the one run (made by the first test that asks). */
function typeErrorsOf(block: CodeBlock): readonly string[] {
  typeErrors ??= typeCheckAll();
  return [...(typeErrors.get('') ?? []), ...(typeErrors.get(fileNameOf(block)) ?? [])];
}

describe('every code block of the README and docs/ is checked', () => {
  test("each page's fences, counted line by line, are the blocks checked, and each is in a language the checks know", () => {
    for (const document of documents) {
      const fences = textOf(document)
        .split('\n')
        .filter((line) => /^\s*(?:```|~~~)/.test(line)).length;
      const found = allBlocks.filter((block) => block.document === document);
      const why = 'an indented fence, a ~~~ fence or an unclosed one is not checked';
      assert.equal(fences, 2 * found.length, `${document}: ${fences} fence lines, but ${found.length} blocks found (${why})`);
    }
    const unknown = allBlocks.filter((block) => checks.get(block) === undefined).map((block) => `${where(block)} (\`\`\`${block.language})`);
    assert.deepStrictEqual(unknown, [], 'blocks in a language no check knows: give them js, ts, yaml, sh, sql (or text for a diagram), or teach this test');
  });

  test('every app of examples/ is shown whole on the page of its framework (docs/<name>.md), which the README links to', () => {
    for (const file of exampleFiles) {
      const page = `docs/${file.replace(/\.mjs$/, '')}.md`;
      assert.ok(texts.has(page), `examples/${file} needs its page, ${page}`);
      const code = readFileSync(join(examplesDirectory, file), 'utf8');
      const shown = blocksOf(page).some((block) => block.language === 'js' && block.code === code);
      assert.ok(shown, `${page} must show examples/${file} as it is, in a js code block`);
    }
  });

  test("the README's js and ts blocks are short examples: lines of a block shown whole on the page the text after each links to", () => {
    const readmeBlocks = allBlocks.filter((block) => block.document === 'README.md' && (block.language === 'js' || block.language === 'ts'));
    const problems = readmeBlocks
      .filter((block) => checks.get(block) !== 'excerpt')
      .map((block) => {
        const pages = pagesLinkedAfter(block);
        if (pages.length === 0) return `${where(block)}: the text after it links to no page of docs/`;
        const candidates = pages.flatMap(blocksOf).filter((candidate) => candidate.language === block.language);
        const nowhere = (line: string) => !candidates.some((candidate) => candidate.code.split('\n').includes(line));
        const missing = block.code.split('\n').find((line) => line.trim() !== '' && !ELISION.test(line) && nowhere(line));
        return `${where(block)}: not lines of a ${block.language} block of ${pages.join(', ')} in order${missing === undefined ? '' : `; not there: ${missing}`}`;
      });
    assert.deepStrictEqual(problems, []);
  });

  for (const block of blocksChecked('excerpt')) {
    const source = excerptSource(block) as CodeBlock;
    test(`the ${block.language} block at ${where(block)} shows lines of the block at ${where(source)}, in order`, () => {
      assert.ok(isExcerpt(block.code, source.code));
      assert.notEqual(checks.get(source), 'excerpt');
    });
  }
});

describe('JavaScript blocks of the README and docs/ run as written', () => {
  for (const block of blocksChecked('run')) {
    test(`the JavaScript block at ${where(block)} runs as written`, { skip: skipReason(block) ?? false }, () => {
      const directory = folderFor(block);
      writeFileSync(join(directory, 'snippet.mjs'), block.code);
      runs(directory, block, ['snippet.mjs']);
      rmSync(directory, { recursive: true, force: true });
    });
  }
});

describe('TypeScript blocks of the README and docs/ (one tsc run over all, strict, against the package as built)', () => {
  // The errors name the document's lines, so the files are of no use once checked.
  after(() => rmSync(typecheckDirectory, { recursive: true, force: true }));
  for (const block of typescriptBlocks) {
    if (block === UNTYPED_HONO_APP) continue;
    const runnable = block.document === 'README.md';
    test(`the TypeScript block at ${where(block)} type-checks${runnable ? ' and runs' : ''} as written`, () => {
      const errors = typeErrorsOf(block);
      const why = 'blocks import the package as built: npm run build first';
      assert.deepStrictEqual(errors, [], `${where(block)} does not type-check as pasted into an app (${why}):\n${errors.join('\n')}`);
      if (!runnable) return;
      const skip = skipReason(block);
      if (skip !== undefined) return;
      const directory = folderFor(block);
      writeFileSync(join(directory, 'snippet.ts'), block.code);
      runs(directory, block, ['--import', 'tsx', 'snippet.ts']);
      rmSync(directory, { recursive: true, force: true });
    });
  }

  test('the check catches what pasting into an app would: a Hono app made with new Hono(), not new Hono<SessionEnv>(), has no c.var.session (TS2339)', () => {
    const errors = typeErrorsOf(UNTYPED_HONO_APP);
    assert.ok(
      errors.some((error) => error.includes("error TS2339: Property 'session' does not exist")),
      `expected TS2339 on c.var.session, got:\n${errors.join('\n') || '(no error)'}`,
    );
  });
});

describe('configuration, shell and SQL blocks', () => {
  for (const block of yaml) {
    test(`the configuration block at ${where(block)} says where it is saved, and a block of its page loads it`, () => {
      const path = configPath(block);
      assert.ok(path !== undefined, `${where(block)} must start with "# <path>.yml", the file a block loads`);
      const loads = (other: CodeBlock) => other.document === block.document && checks.get(other) === 'run' && other.code.includes(`'${path}'`);
      assert.ok(allBlocks.some(loads), `no block of ${block.document} that runs loads '${path}'`);
    });
  }

  type Manifest = { name: string; scripts: Record<string, string>; peerDependencies?: Record<string, string>; devDependencies?: Record<string, string> };
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Manifest;
  const knownPackages = new Set([manifest.name, ...Object.keys(manifest.peerDependencies ?? {}), ...Object.keys(manifest.devDependencies ?? {})]);
  const helpOf = new Map<string, string>();
  /** The command line's help for one of its commands (empty when there is no such command). */
  function cliHelp(command: string): string {
    let help = helpOf.get(command);
    if (help === undefined) {
      const run = spawnSync(process.execPath, [join(root, 'bin', 'smart-session-store.cjs'), command, '--help'], { encoding: 'utf8', timeout: 30_000 });
      help = run.status === 0 ? run.stdout : '';
      helpOf.set(command, help);
    }
    return help;
  }

  /** What is wrong with one command of a shell block, if anything. */
  function commandProblem(command: string): string | undefined {
    const words = command
      .replace(/^(?:[A-Z_][A-Z0-9_]*=\S*\s+)+/, '')
      .split(/\s+/)
      .filter((word) => word !== '');
    const [program, verb, ...rest] = words;
    if (program === 'npm' && (verb === 'test' || verb === 'start')) return verb in manifest.scripts ? undefined : `package.json has no "${verb}" script`;
    if (program === 'npm' && verb === 'run') {
      return rest[0] !== undefined && rest[0] in manifest.scripts ? undefined : `package.json has no "${rest[0]}" script`;
    }
    if (program === 'npm' && (verb === 'install' || verb === 'i')) {
      const unknown = rest.filter((word) => !word.startsWith('-') && !knownPackages.has(word.replace(/(?<=.)@[^/]*$/, '')));
      return unknown.length === 0 ? undefined : `not a package this one knows (itself, a peer or a dev dependency): ${unknown.join(', ')}`;
    }
    if (program === 'npx' && verb === manifest.name) {
      const [subcommand = '', ...flags] = rest;
      const help = cliHelp(subcommand);
      if (help === '') return `the command line has no command "${subcommand}"`;
      const missing = flags.map((flag) => /--[a-z-]+/.exec(flag)?.[0]).filter((flag): flag is string => flag !== undefined && !help.includes(`${flag} `));
      return missing.length === 0 ? undefined : `${subcommand} --help lists no ${missing.join(', ')}`;
    }
    if (program !== undefined && /^scripts\/[\w.-]+\.sh$/.test(program)) return existsSync(join(root, program)) ? undefined : `${program} does not exist`;
    return `no check knows this command: ${command}`;
  }

  for (const block of blocksChecked('shell')) {
    test(`the shell block at ${where(block)} names commands, scripts, packages and flags that exist`, () => {
      const problems: string[] = [];
      for (const line of block.code.split('\n')) {
        const command = line.replace(/(?:^|\s)#.*$/, '').trim();
        if (command === '') continue;
        for (const part of command.split('&&')) {
          const problem = commandProblem(part.trim());
          if (problem !== undefined) problems.push(`${line.trim()}: ${problem}`);
        }
      }
      assert.deepStrictEqual(problems, []);
    });
  }

  for (const block of blocksChecked('sql')) {
    const postgresSelected = selectedBackends()?.has('postgres') ?? true;
    const skip = postgresSelected ? false : `DATABASE=${process.env['DATABASE']} leaves PostgreSQL out`;
    test(`the SQL block at ${where(block)} (the seed's table) is created on PostgreSQL, and the store keeps sessions in it`, { skip }, async (t) => {
      const { default: pg } = await import('pg');
      const { SessionStore } = await import('../src/index.js');
      const url = process.env['POSTGRES_URL'] ?? 'postgres://postgres@127.0.0.1:5432/test';
      const client = new pg.Client({ connectionString: url });
      try {
        await client.connect();
      } catch (error) {
        if (process.env['CI'] === 'true' || (process.env['REQUIRED_BACKENDS'] ?? '').split(',').includes('postgres')) throw error;
        return t.skip(`PostgreSQL is not reachable: ${(error as Error).message}`);
      }
      const table = `ssn_readme_seed_${process.pid}`;
      const statement = block.code.replace(/CREATE TABLE sessions\b/, `CREATE TABLE ${table}`);
      assert.notEqual(statement, block.code, 'the block must create a table named sessions');
      try {
        await client.query(`DROP TABLE IF EXISTS ${table}`);
        await client.query(statement);
        const store = new SessionStore({ url, table });
        try {
          const session = store.create('a-session-id');
          session.data['cart'] = { apple: 1 };
          await session.commit();
          assert.deepStrictEqual((await store.open('a-session-id'))?.data, { cart: { apple: 1 } });
        } finally {
          await store.close();
        }
      } finally {
        await client.query(`DROP TABLE IF EXISTS ${table}`);
        await client.end();
      }
    });
  }
});

describe('links of the README and docs/', () => {
  test('every relative link points to a file that exists, and every #fragment to a heading of it', () => {
    const broken: string[] = [];
    for (const document of documents) {
      for (const target of linksOf(document)) {
        const [path = '', fragment] = target.split('#', 2);
        const file = path === '' ? join(root, document) : join(root, dirname(document), decodeURIComponent(path));
        if (!existsSync(file)) {
          broken.push(`${document}: ${target} (no ${relative(root, file)})`);
          continue;
        }
        if (fragment === undefined || fragment === '') continue;
        if (!file.endsWith('.md') || statSync(file).isDirectory()) {
          broken.push(`${document}: ${target} (a #fragment on a file that is not Markdown)`);
          continue;
        }
        if (!anchorsOf(file).has(decodeURIComponent(fragment))) broken.push(`${document}: ${target} (${relative(root, file)} has no heading #${fragment})`);
      }
    }
    assert.deepStrictEqual(broken, []);
  });

  test('every page of docs/ is reachable from the README, following links', () => {
    const reached = new Set(['README.md']);
    const queue = ['README.md'];
    for (let document = queue.shift(); document !== undefined; document = queue.shift()) {
      for (const target of linksOf(document)) {
        const path = target.split('#', 1)[0] ?? '';
        if (!path.endsWith('.md')) continue;
        const page = posix.normalize(posix.join(posix.dirname(document), decodeURIComponent(path)));
        if (texts.has(page) && !reached.has(page)) {
          reached.add(page);
          queue.push(page);
        }
      }
    }
    assert.deepStrictEqual(
      documents.filter((document) => !reached.has(document)),
      [],
      'pages no chain of links from README.md reaches',
    );
  });

  test('the check finds broken links: a missing file, a missing heading', () => {
    const links = '[gone](missing.md), [no such heading](guarantees.md#no-such-heading), [fine](guarantees.md#the-promises), `[code](not-a-link.md)`';
    texts.set('docs/a-page-for-this-test.md', `# A page\n\n${links}\n`);
    try {
      assert.deepStrictEqual(linksOf('docs/a-page-for-this-test.md'), ['missing.md', 'guarantees.md#no-such-heading', 'guarantees.md#the-promises']);
      assert.ok(anchorsOf(join(root, 'docs', 'guarantees.md')).has('the-promises'));
      assert.ok(!anchorsOf(join(root, 'docs', 'guarantees.md')).has('no-such-heading'));
      assert.equal(slug('Any Fetch-API server (Next.js, Bun, Deno, ...)'), 'any-fetch-api-server-nextjs-bun-deno-');
      assert.equal(slug("What the server's settings mean for `sessions`"), 'what-the-servers-settings-mean-for-sessions');
    } finally {
      texts.delete('docs/a-page-for-this-test.md');
    }
  });
});

describe("npm 11's install-script warning, as the README explains it", () => {
  test("the allowScripts entry the README gives, in an app's package.json, covers better-sqlite3's install script for npm", (t) => {
    const readme = textOf('README.md');
    const entry = /`("allowScripts": \{[^`]*\})`/.exec(readme)?.[1];
    assert.ok(entry !== undefined, 'README.md must show the "allowScripts" entry of package.json that allows better-sqlite3');
    const { allowScripts } = JSON.parse(`{${entry}}`) as { allowScripts: unknown };
    // An app with better-sqlite3 12 installed, as far as npm's review of install scripts looks: its manifest's script.
    const app = mkdtempSync(join(tmpdir(), 'readme-allow-scripts-'));
    t.after(() => rmSync(app, { recursive: true, force: true }));
    mkdirSync(join(app, 'node_modules', 'better-sqlite3'), { recursive: true });
    const installScript = { install: 'prebuild-install || node-gyp rebuild --release' };
    writeFileSync(
      join(app, 'node_modules', 'better-sqlite3', 'package.json'),
      JSON.stringify({ name: 'better-sqlite3', version: '12.11.1', scripts: installScript }),
    );
    const unreviewed = (manifest: object) => {
      writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', dependencies: { 'better-sqlite3': '^12.0.0' }, ...manifest }));
      return spawnSync('npm', ['install-scripts', 'ls', '--offline'], { cwd: app, encoding: 'utf8', timeout: 60_000 });
    };
    const without = unreviewed({});
    if (/Unknown command/i.test(`${without.stdout}${without.stderr}`)) return t.skip('this npm has no install-script review (npm 11 has it)');
    assert.match(without.stdout, /not yet covered by allowScripts:\s+better-sqlite3@12\.11\.1/, `${without.stdout}${without.stderr}`);
    const allowed = unreviewed({ allowScripts });
    assert.equal(allowed.status, 0, allowed.stderr);
    assert.match(allowed.stdout, /No packages with unreviewed install scripts/, `${allowed.stdout}${allowed.stderr}`);
  });
});
