import { performance } from 'node:perf_hooks';

export const range = (n) => Array.from({ length: n }, (_, i) => i);

export function median(values) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

export const round = (value, digits = 0) => (value === null || value === undefined || !Number.isFinite(value) ? null : +value.toFixed(digits));

/** Turns a Node-style callback call into a promise. */
export const viaCallback = (fn) => new Promise((resolve, reject) => fn((error, value) => (error ? reject(error) : resolve(value))));

/**
 * Runs `callers` concurrent loops of `op(callerIndex)` for `seconds`; resolves
 * to { ops, seconds, opsPerSec, cpuMicrosPerOp, errors }.
 */
export async function runFor(seconds, callers, op) {
  const deadline = performance.now() + seconds * 1000;
  let ops = 0;
  let errors = 0;
  let firstError;
  const start = performance.now();
  const cpuBefore = process.cpuUsage();
  await Promise.all(
    range(callers).map(async (i) => {
      while (performance.now() < deadline) {
        try {
          await op(i);
          ops++;
        } catch (error) {
          errors++;
          firstError ??= error;
          if (errors > 1000) throw error;
        }
      }
    }),
  );
  const elapsed = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuBefore);
  // CPU time of this process (user + system, which includes the loopback network stack) per operation.
  const cpuMicrosPerOp = ops === 0 ? null : (cpu.user + cpu.system) / ops;
  return {
    ops,
    seconds: elapsed,
    opsPerSec: ops / elapsed,
    cpuMicrosPerOp,
    errors,
    firstError: firstError === undefined ? undefined : String(firstError.message ?? firstError),
  };
}

export function log(...args) {
  process.stderr.write(`${args.join(' ')}\n`);
}
