/**
 * `node --import ./test/support/without-express-session.mjs`: express-session
 * cannot be found, by `import` or `require`, from anywhere, as in an
 * application that never installed it (express-middleware.test.ts).
 */
import { registerHooks } from 'node:module';

registerHooks({
  resolve(specifier, context, nextResolve) {
    if (specifier === 'express-session' || specifier.startsWith('express-session/')) {
      const error = new Error(`Cannot find module '${specifier}'`);
      error.code = context.conditions?.includes('require') ? 'MODULE_NOT_FOUND' : 'ERR_MODULE_NOT_FOUND';
      throw error;
    }
    return nextResolve(specifier, context);
  },
});
