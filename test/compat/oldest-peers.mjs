/**
 * `node --import ./test/compat/oldest-peers.mjs`: the peers named in
 * `test/compat/oldest/package.json` (React Router 7.9, node-redis 5,
 * ioredis 5) are loaded from that folder instead of the root's current
 * majors, by the store's code and the tests' alike. `npm run
 * test:oldest-peers` installs the folder and runs the suites that use them.
 */
import { readFileSync } from 'node:fs';
import { registerHooks } from 'node:module';

const folder = new URL('./oldest/', import.meta.url);
const { dependencies } = JSON.parse(readFileSync(new URL('package.json', folder), 'utf8'));
const versions = Object.keys(dependencies).map((name) => {
  let version;
  try {
    version = JSON.parse(readFileSync(new URL(`node_modules/${name}/package.json`, folder), 'utf8')).version;
  } catch {
    throw new Error(`${name} is not installed in test/compat/oldest: run npm ci --prefix test/compat/oldest`);
  }
  return `${name} ${version}`;
});
const packages = Object.keys(dependencies);
const parentURL = new URL('package.json', folder).href;
registerHooks({
  // A bare import or require of one of the packages (or of a subpath of it) resolves from the folder.
  resolve(specifier, context, nextResolve) {
    const redirected = packages.some((name) => specifier === name || specifier.startsWith(`${name}/`));
    return nextResolve(specifier, redirected ? { ...context, parentURL } : context);
  },
});
process.stderr.write(`# peers from test/compat/oldest: ${versions.join(', ')}\n`);
