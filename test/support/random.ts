/**
 * Randomness the tests can replay: one seed per test process, printed, and
 * taken from `TEST_SEED` when given. fast-check's properties and the
 * randomised concurrency tests both draw from it.
 */
import fc from 'fast-check';

/** The seed of this run: `TEST_SEED`, or a fresh one. */
export const seed = process.env['TEST_SEED'] === undefined ? Math.floor(Math.random() * 2 ** 31) : Number(process.env['TEST_SEED']);
if (!Number.isInteger(seed)) throw new Error(`TEST_SEED must be an integer, got ${process.env['TEST_SEED']}`);

// A TAP comment: shown with the results, and the way to run this file again with the same draws.
console.log(`random seed ${seed}: rerun with TEST_SEED=${seed}`);
fc.configureGlobal({ seed });

let state = seed >>> 0;

/** A number in [0, 1) from the seeded sequence (mulberry32). */
export function random(): number {
  state = (state + 0x6d2b79f5) >>> 0;
  let t = state;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
