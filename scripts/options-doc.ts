// Rewrites the options table of docs/options.md from the option tables in src/ (npm run docs:options).
// With --print, prints the table instead, writing nothing.
import { readFileSync, writeFileSync } from 'node:fs';
import { optionsMarkdown } from '../src/options-doc.js';

if (process.argv.includes('--print')) {
  process.stdout.write(`${optionsMarkdown()}\n`);
} else {
  const page = new URL('../docs/options.md', import.meta.url);
  const text = readFileSync(page, 'utf8');
  const updated = text.replace(/(<!-- options:begin -->\n)[\s\S]*?(<!-- options:end -->)/, `$1${optionsMarkdown()}\n$2`);
  if (updated === text && !text.includes('<!-- options:begin -->')) throw new Error('docs/options.md has no <!-- options:begin --> marker');
  writeFileSync(page, updated);
}
