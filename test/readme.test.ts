/**
 * Every JavaScript block of the README runs as written: pasted into a file
 * of its own and run with node, against the real databases, it exits 0.
 * Every TypeScript block of the README and of docs/*.md type-checks as
 * written (strict, NodeNext, against the package as built); the README's
 * also run the same way. The type check is one tsc run over all the blocks,
 * each a file of its own, and it is shown to catch what pasting a block
 * into an app would (a Hono app without the middleware's environment, as the
 * README once had it). The framework apps (long-running servers) are the
 * files in examples/, shown verbatim and run by examples.test.ts. The
 * README's YAML block is saved where its first line says, so the block that
 * loads it finds it. The `allowScripts` entry the README gives for npm 11's
 * install-script warning is what npm takes.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, describe, test } from 'node:test';

const root = join(import.meta.dirname, '..');
const examples = new Set(readdirSync(join(root, 'examples')).map((file) => readFileSync(join(root, 'examples', file), 'utf8')));
/** The Markdown files whose TypeScript blocks are type-checked, as paths from the package root. */
const documents = ['README.md', ...readdirSync(join(root, 'docs')).filter((file) => file.endsWith('.md')).sort().map((file) => `docs/${file}`)];

/** A code block: the document it is in, the line its opening fence is on, its code. */
interface CodeBlock {
  readonly document: string;
  readonly line: number;
  readonly code: string;
}

/** The code blocks of one language in a document. */
function blocks(language: string, document = 'README.md'): CodeBlock[] {
  const text = readFileSync(join(root, document), 'utf8');
  const found: CodeBlock[] = [];
  const fence = new RegExp(`^\`\`\`${language}\\n([\\s\\S]*?)^\`\`\`$`, 'gm');
  for (const match of text.matchAll(fence)) found.push({ document, line: text.slice(0, match.index).split('\n').length, code: match[1] as string });
  return found;
}

const yaml = blocks('yaml');

/** A fresh folder for one block, inside the package so that `smart-session-store` resolves to this build, as it would once installed. */
function folderFor(line: number): string {
  const directory = join(root, '.readme-check', `line-${line}`);
  rmSync(directory, { recursive: true, force: true });
  mkdirSync(directory, { recursive: true });
  for (const block of yaml) {
    const path = /^# (\S+\.ya?ml)\n/.exec(block.code)?.[1];
    if (path === undefined) continue;
    mkdirSync(join(directory, dirname(path)), { recursive: true });
    writeFileSync(join(directory, path), block.code);
  }
  return directory;
}

/** Runs a block's file; it must exit 0 and write nothing to stderr. */
function runs(directory: string, line: number, args: readonly string[]): void {
  const run = spawnSync(process.execPath, args, { cwd: directory, encoding: 'utf8', timeout: 60_000 });
  assert.equal(run.status, 0, `README.md:${line} exited with ${String(run.status)}${run.signal === null ? '' : ` (${run.signal})`}:\n${run.stdout}${run.stderr}`);
  assert.equal(run.stderr, '', `README.md:${line} wrote to stderr:\n${run.stderr}`);
}

/**
 * The Hono app as the README had it, typed: `new Hono()` knows nothing of
 * the middleware's `c.var.session` (TS2339). The type check must refuse it,
 * or it would let such a block through.
 */
const UNTYPED_HONO_APP: CodeBlock = {
  document: 'the Hono app without its environment',
  line: 0,
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

/** Every TypeScript block of the README and docs/, and the one that must fail. */
const typescriptBlocks = [...documents.flatMap((document) => blocks('ts', document)), UNTYPED_HONO_APP];

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
  const compilerOptions = { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, types: ['node'], skipLibCheck: true };
  writeFileSync(join(typecheckDirectory, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: typescriptBlocks.map(fileNameOf) }));
  const checked = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', typecheckDirectory, '--pretty', 'false'], { encoding: 'utf8' });
  const errors = new Map<string, string[]>();
  let current: string[] | undefined;
  for (const line of `${checked.stdout}${checked.stderr}`.split('\n')) {
    if (line.trim() === '') continue;
    // `file.ts(line,column): error TS...`, then indented lines that go on with the same error.
    const located = /^(?:.*[\\/])?([^\\/(]+\.ts)\((\d+),(\d+)\): (.*)$/.exec(line);
    if (located !== null) {
      const [, file = '', row = '', column = '', message = ''] = located;
      const block = typescriptBlocks.find((candidate) => fileNameOf(candidate) === file);
      const where = block === undefined ? `${file}:${row}:${column}` : `${block.document}:${block.line + Number(row)}:${column}`;
      current = errors.get(block === undefined ? '' : file) ?? [];
      errors.set(block === undefined ? '' : file, current);
      current.push(`${where} ${message}`);
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

describe('README code blocks', () => {
  for (const { code, line } of blocks('js')) {
    if (examples.has(code)) continue;
    test(`the JavaScript block at README.md:${line} runs as written`, () => {
      const directory = folderFor(line);
      writeFileSync(join(directory, 'snippet.mjs'), code);
      runs(directory, line, ['snippet.mjs']);
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
    test(`the TypeScript block at ${block.document}:${block.line} type-checks${runnable ? ' and runs' : ''} as written`, () => {
      const errors = typeErrorsOf(block);
      assert.deepStrictEqual(errors, [], `${block.document}:${block.line} does not type-check as pasted into an app (blocks import the package as built: npm run build first):\n${errors.join('\n')}`);
      if (!runnable) return;
      const directory = folderFor(block.line);
      writeFileSync(join(directory, 'snippet.ts'), block.code);
      runs(directory, block.line, ['--import', 'tsx', 'snippet.ts']);
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

describe('npm 11\'s install-script warning, as the README explains it', () => {
  test('the allowScripts entry the README gives, in an app\'s package.json, covers better-sqlite3\'s install script for npm', (t) => {
    const readme = readFileSync(join(root, 'README.md'), 'utf8');
    const entry = /`("allowScripts": \{[^`]*\})`/.exec(readme)?.[1];
    assert.ok(entry !== undefined, 'README.md must show the "allowScripts" entry of package.json that allows better-sqlite3');
    const { allowScripts } = JSON.parse(`{${entry}}`) as { allowScripts: unknown };
    // An app with better-sqlite3 12 installed, as far as npm's review of install scripts looks: its manifest's script.
    const app = mkdtempSync(join(tmpdir(), 'readme-allow-scripts-'));
    t.after(() => rmSync(app, { recursive: true, force: true }));
    mkdirSync(join(app, 'node_modules', 'better-sqlite3'), { recursive: true });
    const installScript = { install: 'prebuild-install || node-gyp rebuild --release' };
    writeFileSync(join(app, 'node_modules', 'better-sqlite3', 'package.json'), JSON.stringify({ name: 'better-sqlite3', version: '12.11.1', scripts: installScript }));
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
