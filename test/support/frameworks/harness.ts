/**
 * What each framework's test app must offer, so that one suite
 * (`test/frameworks.test.ts`) runs against every framework adapter. Each file
 * beside this one exports a `harness` for one framework; the suite finds
 * them by itself, so adding a framework adds a file here and nothing else.
 *
 * Every app answers JSON on these routes, its sessions kept by this
 * project's adapter for the framework:
 *
 * - `POST /start`: sets `started: true`; answers `{ id }`, the session id
 * - `POST /set/:key`: waits 0 to 20 ms at random, sets `k_<key>` to `<key>`; answers `{ ok: true }`
 * - `GET /keys`: answers `{ id, keys }`, the session's `k_` keys, sorted
 * - `POST /login`: regenerates the session (a new id, nothing of the old one), sets `user`; answers `{ id }`
 * - `POST /rotate`: moves the session to a new id keeping its data (`rotate`), sets `user`; answers `{ id }`;
 *   only where the session layer has rotation ({@link FrameworkHarness.rotates})
 * - `POST /logout`: destroys the session; answers `{ ok: true }`
 * - `GET /read`: reads the session and changes nothing; answers `{ started }`
 */
import type { SessionStoreOptions } from '../../../src/index.js';
import type { RunningServer } from '../http.js';

/** One framework's test app. */
export interface FrameworkHarness {
  /** The framework, as `FRAMEWORK=` names it: `express`, `fastify`, ... */
  readonly name: string;
  /** The session layer can rotate a session's id keeping its data (ours; not the frameworks' own session packages). */
  readonly rotates: boolean;
  /** Starts the app; its store is made from `options` (the table exists) and closed with the app. */
  start(options: SessionStoreOptions): Promise<RunningServer>;
}

/** The wait of a `/set` route: enough to make requests overlap. */
export function handlerDelay(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * 20));
}

/** The `k_` keys of a session, sorted. */
export function keysOf(session: object): string[] {
  return Object.keys(session)
    .filter((key) => key.startsWith('k_'))
    .sort();
}
