/**
 * Optional peers an adapter can do without: `smart-session-store/express`
 * gives its own session middleware whether or not express-session is
 * installed, and its express-session Store only when it is. The peer is
 * loaded synchronously (a class must know its base when it is defined), and
 * resolved from the package's own files, as an `import` of it would be.
 */
import { createRequire } from 'node:module';

/**
 * Where this file was loaded from: a path under CommonJS, a `file:` URL
 * under ESM. The source is compiled to both, and neither `__filename` nor
 * `import.meta` is valid in the other, so it is read from V8's call sites.
 */
function ownLocation(): string | undefined {
  const { prepareStackTrace, stackTraceLimit } = Error;
  try {
    Error.stackTraceLimit = 1;
    Error.prepareStackTrace = (_error, sites) => sites;
    const sites = new Error().stack as unknown as readonly NodeJS.CallSite[] | undefined;
    return sites?.[0]?.getFileName() ?? undefined;
  } finally {
    Error.prepareStackTrace = prepareStackTrace;
    Error.stackTraceLimit = stackTraceLimit;
  }
}

/** A `require` resolving from this package (CommonJS has its own; ESM gets one made for this file). */
function packageRequire(): NodeJS.Require {
  if (typeof require === 'function') return require;
  return createRequire(ownLocation() ?? `${process.cwd()}/`);
}

/**
 * The peer `name`, or `undefined` when it is not installed. A peer that is
 * installed but fails to load (one of its own dependencies missing, a
 * syntax error) throws: only its own absence is taken as "not installed".
 */
export function optionalPeer<Module>(name: string): Module | undefined {
  try {
    return packageRequire()(name) as Module;
  } catch (error) {
    const { code, message } = (error ?? {}) as { code?: unknown; message?: unknown };
    const missing = (code === 'MODULE_NOT_FOUND' || code === 'ERR_MODULE_NOT_FOUND') && typeof message === 'string' && message.includes(`'${name}'`);
    if (missing) return undefined;
    throw error;
  }
}
