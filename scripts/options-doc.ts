// Rewrites the README's options table from the option tables in src/ (npm run docs:options).
import { readFileSync, writeFileSync } from 'node:fs';
import { optionsMarkdown } from '../src/options-doc.js';

const README = new URL('../README.md', import.meta.url);
const text = readFileSync(README, 'utf8');
const updated = text.replace(/(<!-- options:begin -->\n)[\s\S]*?(<!-- options:end -->)/, `$1${optionsMarkdown()}\n$2`);
if (updated === text && !text.includes('<!-- options:begin -->')) throw new Error('README.md has no <!-- options:begin --> marker');
writeFileSync(README, updated);
