/**
 * A bounded pool of store handles for one registry entry. `store.get(id)` acquires, `release()`
 * gives back; handles a run did not release are released by the host when the run ends
 * (fengari has no __gc, so nothing else would).
 */
export interface PoolStats {
  id: string;
  max: number;
  /** Handles acquired and not yet released. */
  inUse: number;
  /** Handles acquired since the pool was created. */
  acquired: number;
  /** Handles given back by the script. */
  released: number;
  /** Handles given back by the host at the end of a run. */
  autoReleased: number;
  /** Acquisitions refused because the pool was exhausted. */
  refused: number;
}

export class HandlePool {
  readonly id: string;
  readonly max: number;
  #inUse = 0;
  #acquired = 0;
  #released = 0;
  #autoReleased = 0;
  #refused = 0;

  constructor(id: string, max: number) {
    this.id = id;
    this.max = max;
  }

  /** Takes a slot; false when all `max` handles are in use. */
  tryAcquire(): boolean {
    if (this.#inUse >= this.max) {
      this.#refused++;
      return false;
    }
    this.#inUse++;
    this.#acquired++;
    return true;
  }

  /** Gives a slot back; `auto` marks a release done by the host at the end of a run. */
  release(auto: boolean): void {
    if (this.#inUse === 0) throw new Error(`pool ${this.id}: release without acquire`);
    this.#inUse--;
    if (auto) this.#autoReleased++;
    else this.#released++;
  }

  stats(): PoolStats {
    return {
      id: this.id,
      max: this.max,
      inUse: this.#inUse,
      acquired: this.#acquired,
      released: this.#released,
      autoReleased: this.#autoReleased,
      refused: this.#refused,
    };
  }
}
