#!/usr/bin/env node
/**
 * Rewrites the Markdown report and the charts of a results file, without
 * measuring again (after a change to the report's layout):
 *
 *   node bench/tools/report.mjs bench/results/2026-11-22.json
 *
 * A published results file (under bench/results/) rewrites docs/*.svg; a
 * smoke or partial one (bench/results/quick/) rewrites its charts beside it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { BENCH_DIR } from '../lib/drivers.mjs';
import { writeReports } from '../lib/report.mjs';

const file = process.argv[2];
if (file === undefined) {
  console.error('usage: report.mjs bench/results/<date>.json');
  process.exit(2);
}
const results = JSON.parse(readFileSync(file, 'utf8'));
const resultsDir = path.dirname(path.resolve(file));
const published = resultsDir === path.join(BENCH_DIR, 'results');
const chartsDir = published ? path.resolve(BENCH_DIR, '..', 'docs') : resultsDir;
for (const written of writeReports(results, { resultsDir, chartsDir, published })) console.log(`wrote ${path.relative(process.cwd(), written)}`);
