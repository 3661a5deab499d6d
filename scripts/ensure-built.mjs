// Builds the library when dist/ is missing or older than src/: `npm start` on a fresh clone needs the build,
// and the package installs with no lifecycle script of its own.
import { execFileSync } from 'node:child_process';
import { readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';

function newest(directory) {
  let latest = 0;
  for (const entry of readdirSync(directory, { withFileTypes: true })) {
    const path = join(directory, entry.name);
    latest = Math.max(latest, entry.isDirectory() ? newest(path) : statSync(path).mtimeMs);
  }
  return latest;
}

let built = 0;
try {
  built = statSync('dist/esm/index.js').mtimeMs;
} catch {
  // not built yet
}
if (built < newest('src')) execFileSync(process.execPath, ['scripts/build.mjs'], { stdio: 'inherit' });
