/**
 * Options are declared once, in tables: the table of docs/options.md, the command
 * line's help and the seed names the options type accepts must all agree
 * with them.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import type { SeedOptionNames, SessionStoreOptions } from '../src/index.js';
import { documentedOptions, optionHelp, optionsMarkdown } from '../src/options-doc.js';
import { runCli } from './support/cli.js';

test('the options table of docs/options.md is the one the option tables make (npm run docs:options rewrites it)', () => {
  const page = readFileSync(new URL('../docs/options.md', import.meta.url), 'utf8');
  const table = /<!-- options:begin -->\n([\s\S]*?)\n<!-- options:end -->/.exec(page)?.[1];
  assert.equal(table, optionsMarkdown());
});

test('every seed name the tables accept is a typed option name, and no other', () => {
  // Listing a key that SeedOptionNames lacks, or leaving one of its keys out, fails to compile.
  const typed: Record<keyof SeedOptionNames, true> = {
    driver: true,
    session_class: true,
    username: true,
    hostname: true,
    expiration_timeout: true,
    timeout: true,
    connection_check_threshold: true,
    autopurge_probability: true,
    connect_timeout: true,
    touch_after: true,
    max_size: true,
    pool_size: true,
    create_table: true,
    hash_session_ids: true,
    user_id_key: true,
  };
  const aliases = documentedOptions().flatMap(([, rule]) => rule.aliases);
  assert.deepStrictEqual([...aliases].sort(), Object.keys(typed).sort());
  // A seed name is accepted by the options type as written.
  const seedStyle: SessionStoreOptions = { driver: 'Pg', database: 'test', expiration_timeout: 3600, connection_check_threshold: 10 };
  assert.equal(seedStyle.expiration_timeout, 3600);
});

test("the command line's help describes its flags from the same tables", async () => {
  const { stdout, code } = await runCli('create-table', '--help');
  assert.equal(code, 0);
  for (const option of ['table', 'locking', 'userIdKey']) assert.ok(stdout.replace(/\s+/g, ' ').includes(optionHelp(option)), option);
});
