/**
 * The example apps in examples/, one per framework, run as a user would run
 * them (the package imported by its name), on every backend: 20 parallel
 * requests on one session each add an item, and all 20 are kept. Each
 * framework's page, docs/<name>.md, shows its example verbatim, so what it
 * shows is what runs here (the README shows lines of it: readme.test.ts).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { keepsTwentyParallelItems, startExample } from './support/examples.js';
import { backendsForThisFile, dropTable, LOCAL_SQL } from './support/backends.js';

const backends = await backendsForThisFile(LOCAL_SQL);
const examplesDirectory = new URL('../examples/', import.meta.url);
const examples = readdirSync(examplesDirectory)
  .filter((file) => file.endsWith('.mjs'))
  .sort();

describe('examples/', () => {
  for (const file of examples) {
    const page = `docs/${file.replace(/\.mjs$/, '')}.md`;
    test(`${file} is on its page, ${page}, verbatim`, () => {
      const code = readFileSync(new URL(file, examplesDirectory), 'utf8');
      const text = readFileSync(new URL(`../${page}`, import.meta.url), 'utf8');
      assert.ok(text.includes(`\`\`\`js\n${code}\`\`\``), `${page} must show examples/${file} as it is, in a js code block`);
    });

    for (const backend of backends) {
      test(`${file} on ${backend.name}: 20 parallel requests on one session, all 20 items kept`, async () => {
        await dropTable(backend, 'sessions');
        const app = await startExample(new URL(file, examplesDirectory).pathname, backend.url);
        after(() => app.stop());
        try {
          await keepsTwentyParallelItems(app.base);
        } finally {
          await app.stop();
          await dropTable(backend, 'sessions');
        }
      });
    }
  }
});
