#!/usr/bin/env node
/**
 * Summarises a V8 .cpuprofile (from node --cpu-prof): self time by package /
 * area, the top functions by self time, and the inclusive time of the
 * library's own functions.
 *
 *   node bench/tools/cpuprofile-summary.mjs /tmp/prof/CPU.*.cpuprofile [top=25]
 */
import { readFileSync } from 'node:fs';

const [file, topArg = '25'] = process.argv.slice(2);
if (file === undefined) {
  console.error('usage: cpuprofile-summary.mjs FILE.cpuprofile [top]');
  process.exit(2);
}
const profile = JSON.parse(readFileSync(file, 'utf8'));
const nodes = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

// Time per sample: the following delta (microseconds).
const selfUs = new Map();
for (let i = 0; i < profile.samples.length; i++) {
  const dt = profile.timeDeltas[i + 1] ?? 0;
  selfUs.set(profile.samples[i], (selfUs.get(profile.samples[i]) ?? 0) + dt);
}
const total = [...selfUs.values()].reduce((a, b) => a + b, 0);

function area(url, name) {
  if (name === '(idle)') return '(idle)';
  if (name === '(garbage collector)') return '(garbage collector)';
  if (name === '(program)') return '(program: native, not JS)';
  if (!url) return '(native / builtin)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (/\/dist\/(esm|cjs)\//.test(url) && !/node_modules/.test(url.split('/dist/')[0]))
    return `smart-session-store: ${url.split('/dist/')[1].replace(/^(esm|cjs)\//, '')}`;
  if (m) return m[1];
  if (url.startsWith('node:')) return 'node internals';
  if (url.includes('/bench/')) return 'bench harness';
  return url;
}

const byArea = new Map();
const byFunction = new Map();
for (const [id, us] of selfUs) {
  const n = nodes.get(id);
  const { functionName, url, lineNumber } = n.callFrame;
  const name = functionName || '(anonymous)';
  const a = area(url, name);
  byArea.set(a, (byArea.get(a) ?? 0) + us);
  const key = `${name}  ${url ? `${url.replace(/^file:\/\//, '').replace(/^.*node_modules\//, '')}:${lineNumber + 1}` : ''}`;
  byFunction.set(key, (byFunction.get(key) ?? 0) + us);
}

// Inclusive time of library functions: a sample counts once for each distinct library function on its stack.
const inclusive = new Map();
for (const [id, us] of selfUs) {
  const seen = new Set();
  for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
    const { functionName, url, lineNumber } = nodes.get(cur).callFrame;
    if (!/\/dist\/(esm|cjs)\//.test(url) || /node_modules\/(?!smart-session-store)/.test(url)) continue;
    const key = `${functionName || '(anonymous)'}  ${url.split('/dist/')[1]}:${lineNumber + 1}`;
    if (seen.has(key)) continue;
    seen.add(key);
    inclusive.set(key, (inclusive.get(key) ?? 0) + us);
  }
}

const pct = (us) => `${((us / total) * 100).toFixed(1).padStart(5)} %`;
const print = (title, map, top) => {
  console.log(`\n${title}`);
  for (const [k, us] of [...map].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`  ${pct(us)}  ${k}`);
};
console.log(`${file}: ${(total / 1e6).toFixed(2)} s sampled`);
print('self time by area', byArea, 30);
print(`top ${topArg} functions by self time`, byFunction, Number(topArg));
print('inclusive time of smart-session-store functions', inclusive, Number(topArg));
