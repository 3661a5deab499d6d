/**
 * The load ledger: which load each save of a framework's session store
 * belongs to, for the adapters whose framework owns the session object and
 * calls the store's `get`, `set` and `destroy` (express-session, koa-session,
 * @fastify/session).
 *
 * A save is written as the delta between what its request loaded and what it
 * saves, so it must go through the handle of that very load: the handle of
 * another request's load of the same session would diff against another
 * snapshot, and a handle made fresh stores the session whole
 * (last-write-wins). The frameworks hand the store a session id, a session
 * object and, depending on the framework, the request. The ledger files each
 * load under what the adapter can tell again at the save:
 *
 * - under the **request** (koa-session's `ctx`, the Fastify request), one
 *   handle per session id, since a request may load one session and create
 *   another (a regenerate);
 * - under the **session object** the framework hands back to `set`
 *   (express-session's, @fastify/session's), one handle per object;
 * - as **untied**, by id, when it came with neither: a save that finds no
 *   load then warns once (`SMART_SESSION_STORE_UNTIED_SESSION`) before
 *   storing the session whole, instead of silently losing concurrent changes.
 *
 * The loaded state itself stays inside the handle, as JSON text: the
 * frameworks copy the loaded values into their session by reference, and the
 * application's changes to them never touch it.
 */
import type { SessionHandle } from '../../core/session-handle.js';
import type { SessionStore } from '../../store.js';
import { ObjectSlot } from './object-slot.js';
import { warnUntiedSession } from './untied.js';

/** How many untied loads are remembered before the list starts over. */
const UNTIED_LIMIT = 10_000;

/** Where each load of one adapter's store was filed, until the save that belongs to it. */
export class LoadLedger {
  readonly #store: SessionStore;
  readonly #adapter: string;
  readonly #remedy: string | undefined;
  /** What each request loaded or created, by session id: the handle its saves go through. */
  readonly #byRequest: ObjectSlot<Map<string, SessionHandle>>;
  /** The handle each of the framework's session objects saves through, for as long as the object lives. */
  readonly #bySession: ObjectSlot<SessionHandle>;
  /** Handles the ledger made for a session new to its request (as opposed to those of a load). */
  readonly #created: ObjectSlot<true>;
  /** Ids loaded with nothing to file them under, until a save claims them. */
  readonly #untied = new Set<string>();

  /**
   * @param store The store the handles come from.
   * @param adapter The adapter's module, as the untied-session warning names it: `smart-session-store/koa`.
   * @param remedy What the warning tells the application to do; by default, to use the adapter made for its framework.
   */
  constructor(store: SessionStore, adapter: string, remedy?: string) {
    this.#store = store;
    this.#adapter = adapter;
    this.#remedy = remedy;
    this.#byRequest = new ObjectSlot(`${adapter} loads`);
    this.#bySession = new ObjectSlot(`${adapter} handle`);
    this.#created = new ObjectSlot(`${adapter} created`);
  }

  /**
   * Files a load: under the request that made it (a reload in the same
   * request replaces what it loaded before), or, with no request to file it
   * under, as untied until a save claims it.
   */
  loaded(handle: SessionHandle, request: object | undefined): void {
    if (request !== undefined) {
      this.#loadsOf(request).set(handle.id, handle);
      return;
    }
    // Bounded: ids loaded outside requests and never saved would otherwise pile up.
    if (this.#untied.size >= UNTIED_LIMIT) this.#untied.clear();
    this.#untied.add(handle.id);
  }

  /** An untied load of `id` has found its session object some other way (express-session's `createSession`). */
  claimed(id: string): void {
    this.#untied.delete(id);
  }

  /** The handle `request` loaded or created under `id`. */
  handleOf(id: string, request: object | undefined): SessionHandle | undefined {
    return request === undefined ? undefined : this.#byRequest.get(request)?.get(id);
  }

  /** True when `request` loaded the session `id` from the store (rather than made it new). */
  loadedBy(id: string, request: object): boolean {
    const handle = this.handleOf(id, request);
    return handle !== undefined && !this.#created.has(handle);
  }

  /** Ties a session object to a handle: its saves go through it. */
  bind(session: object, handle: SessionHandle): void {
    this.#bySession.set(session, handle);
  }

  /** The handle a session object is tied to; with `id`, only when it is that session's. */
  boundTo(session: object, id?: string): SessionHandle | undefined {
    const handle = this.#bySession.get(session);
    return id === undefined || handle?.id === id ? handle : undefined;
  }

  /**
   * The handle a save of `session` under `id` by `request` goes through: the
   * one the request loaded or created; else, for a session new to the
   * request (a first visit, a regenerate), a new handle, which stores it
   * whole, as it must be, filed under the request. A session loaded untied
   * gets the same, with the warning.
   */
  forSave(id: string, session: object, request: object | undefined): SessionHandle {
    const loaded = this.handleOf(id, request);
    if (loaded !== undefined) return loaded;
    // Loaded, but by no request the adapter knows: all that is left is to store it whole.
    if (this.#untied.delete(id)) warnUntiedSession(this.#adapter, session, this.#remedy);
    const created = this.#store.create(id);
    // Marked only where loadedBy() can find it: under a request.
    if (request !== undefined) {
      this.#created.set(created, true);
      this.#loadsOf(request).set(id, created);
    }
    return created;
  }

  /**
   * {@link forSave} for a framework that hands the same session object to
   * every save of a request: the handle the object is tied to, else the one
   * {@link forSave} gives, which the object is then tied to.
   */
  forSessionSave(id: string, session: object, request: object | undefined): SessionHandle {
    const bound = this.boundTo(session, id);
    if (bound !== undefined) return bound;
    const handle = this.forSave(id, session, request);
    this.bind(session, handle);
    return handle;
  }

  /**
   * Deletes the session `id` (concurrent saves do not bring it back), through
   * the request's handle when it has one, so that a later save of the same
   * request through that handle writes nothing either.
   */
  destroy(id: string, request: object | undefined): Promise<void> {
    const handle = this.handleOf(id, request);
    return handle === undefined ? this.#store.destroy(id) : handle.destroy();
  }

  #loadsOf(request: object): Map<string, SessionHandle> {
    let loads = this.#byRequest.get(request);
    if (loads === undefined) this.#byRequest.set(request, (loads = new Map()));
    return loads;
  }
}
