/**
 * How long to spin for the other side of a channel before sleeping, learned from what spinning
 * got us. Spinning pays only while both threads are on a core at once: then an answer or the
 * next request comes within microseconds. On a machine with fewer free cores than busy threads
 * the other side cannot run while we spin, so every spin is lost time taken from it. A spin
 * that ended with what it waited for doubles the next budget; one that ran out halves it; and
 * every {@link PROBE_EVERY}th spin uses the full budget, to notice when cores free up again.
 */
const PROBE_EVERY = 32;

export class AdaptiveSpin {
  readonly #min: number;
  readonly #max: number;
  #ms: number;
  #count = 0;

  /** Budgets in milliseconds. */
  constructor(minMs: number, maxMs: number) {
    this.#min = minMs;
    this.#max = maxMs;
    this.#ms = maxMs;
  }

  /** The budget for the next spin. */
  budget(): number {
    return ++this.#count % PROBE_EVERY === 0 ? this.#max : this.#ms;
  }

  /** The spin ended with what it waited for. */
  hit(): void {
    this.#ms = Math.min(this.#max, this.#ms * 2);
  }

  /** The spin ran out. */
  miss(): void {
    this.#ms = Math.max(this.#min, this.#ms / 2);
  }
}
