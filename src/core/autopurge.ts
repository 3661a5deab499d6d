/**
 * When expired sessions are removed without anyone asking: by chance on a
 * share of store calls (the seeds' "10 % of requests"), at most once per
 * `minInterval`, or by the clock. The purge itself runs off the response path.
 */
import type { ResolvedAutopurge } from './options.js';

/** The autopurge policy of one store. */
export class Autopurge {
  readonly #settings: ResolvedAutopurge;
  readonly #start: () => void;
  readonly #timer: NodeJS.Timeout | undefined;
  #lastStarted = 0;

  constructor(settings: ResolvedAutopurge, start: () => void) {
    this.#settings = settings;
    this.#start = start;
    // The timer must not keep a process alive that has nothing else to do.
    this.#timer = settings.intervalMs > 0 ? setInterval(start, settings.intervalMs).unref() : undefined;
  }

  /** Called after each store call: about one in `1 / probability` starts a purge, after the call has answered. */
  maybeStart(purging: boolean): void {
    const { probability, minIntervalMs } = this.#settings;
    if (probability === 0 || purging || Math.random() >= probability) return;
    const now = Date.now();
    if (now - this.#lastStarted < minIntervalMs) return;
    this.#lastStarted = now;
    setImmediate(this.#start);
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
