/**
 * Every JavaScript block of the README runs as written: pasted into a file
 * of its own and run with node, against the real databases, it exits 0.
 * Every TypeScript block type-checks (strict, NodeNext) and runs the same way.
 * The framework apps (long-running servers) are the files in examples/,
 * shown verbatim and run by examples.test.ts. The README's YAML block is
 * saved where its first line says, so the block that loads it finds it.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';

const root = join(import.meta.dirname, '..');
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const examples = new Set(readdirSync(join(root, 'examples')).map((file) => readFileSync(join(root, 'examples', file), 'utf8')));

/** The code blocks of one language, with the line each starts on. */
function blocks(language: string): { code: string; line: number }[] {
  const found: { code: string; line: number }[] = [];
  const fence = new RegExp(`^\`\`\`${language}\\n([\\s\\S]*?)^\`\`\`$`, 'gm');
  for (const match of readme.matchAll(fence)) found.push({ code: match[1] as string, line: readme.slice(0, match.index).split('\n').length });
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

  for (const { code, line } of blocks('ts')) {
    test(`the TypeScript block at README.md:${line} type-checks and runs as written`, () => {
      const directory = folderFor(line);
      writeFileSync(join(directory, 'snippet.ts'), code);
      const compilerOptions = { module: 'nodenext', moduleResolution: 'nodenext', target: 'es2022', strict: true, noEmit: true, types: ['node'], skipLibCheck: true };
      writeFileSync(join(directory, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['snippet.ts'] }));
      const checked = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', directory], { encoding: 'utf8' });
      assert.equal(checked.status, 0, `README.md:${line} does not type-check:\n${checked.stdout}${checked.stderr}`);
      runs(directory, line, ['--import', 'tsx', 'snippet.ts']);
      rmSync(directory, { recursive: true, force: true });
    });
  }
});
