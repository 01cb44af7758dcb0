/**
 * Time as a parameter. Stores, pools, the `time` module and the test harness read time
 * from a Clock so tests move time instead of sleeping.
 */
export interface Clock {
  /** Milliseconds since the Unix epoch; may be fractional. */
  now(): number;
  /**
   * Resolves after `ms` milliseconds of this clock's time. `signal` cancels the wait
   * (the promise then rejects with the signal's reason). Any `ms` is accepted: NaN and
   * negative values wait no time, and a wait too long for one timer (or Infinity) must still
   * not end early.
   */
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
  /**
   * Calls `listener` with the new time whenever the time is set or advanced (clocks that move
   * only when told to). A worker-isolated host uses it to mirror the time into its store and
   * Lua threads; a clock without it is read when each run starts and after each sleep.
   * Returns a function that removes the listener.
   */
  watch?(listener: (now: number) => void): () => void;
}

/**
 * The longest delay one Node timer takes (2^31 - 1 ms, about 24.8 days). A longer one fires
 * after 1 ms with a TimeoutOverflowWarning on stderr, so longer sleeps are chained.
 */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** The real wall clock. */
export const systemClock: Clock = {
  now: () => Date.now(),
  sleep(ms, signal) {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      let left = ms > 0 ? ms : 0; // NaN and negative: no wait
      let timer: ReturnType<typeof setTimeout> | undefined;
      const step = (): void => {
        if (left <= 0) {
          signal?.removeEventListener("abort", onAbort);
          return resolve();
        }
        const delay = Math.min(left, MAX_TIMER_MS);
        left -= delay; // Infinity stays Infinity: a sleep that ends only by its signal
        timer = setTimeout(step, delay);
      };
      const onAbort = (): void => {
        clearTimeout(timer);
        reject(signal?.reason);
      };
      signal?.addEventListener("abort", onAbort, { once: true });
      if (left === 0) timer = setTimeout(step, 0);
      else step();
    });
  },
};

interface Sleeper {
  until: number;
  resolve: () => void;
}

/**
 * A clock that only moves when told to. `sleep` resolves as soon as `advance`/`set`
 * moves time past its deadline, so `time.sleep(3600)` under the harness returns at once
 * once the harness advances time (and {@link ManualClock.autoAdvance} makes sleeps jump
 * the clock forward by themselves).
 */
export class ManualClock implements Clock {
  #now: number;
  #sleepers: Sleeper[] = [];
  #watchers: ((now: number) => void)[] = [];
  /** When true, a sleep moves the clock forward to its own deadline and resolves at once. */
  autoAdvance: boolean;

  constructor(startMs = 0, options?: { autoAdvance?: boolean }) {
    this.#now = startMs;
    this.autoAdvance = options?.autoAdvance ?? false;
  }

  now(): number {
    return this.#now;
  }

  /** Moves time forward by `ms` (must be >= 0) and wakes sleepers whose deadline passed. */
  advance(ms: number): void {
    if (!(ms >= 0) || !Number.isFinite(ms)) throw new RangeError(`advance: expected ms >= 0, got ${ms}`);
    this.set(this.#now + ms);
  }

  /** Sets the time (may move backwards, which wakes nobody). */
  set(ms: number): void {
    if (!Number.isFinite(ms)) throw new RangeError(`set: expected a finite time, got ${ms}`);
    this.#now = ms;
    for (const watcher of this.#watchers) watcher(ms);
    const due = this.#sleepers.filter((s) => s.until <= ms);
    if (due.length === 0) return;
    this.#sleepers = this.#sleepers.filter((s) => s.until > ms);
    for (const s of due) s.resolve();
  }

  watch(listener: (now: number) => void): () => void {
    this.#watchers = [...this.#watchers, listener];
    return () => {
      this.#watchers = this.#watchers.filter((w) => w !== listener);
    };
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    if (signal?.aborted) return Promise.reject(signal.reason);
    const until = this.#now + (ms > 0 ? ms : 0); // NaN and negative: no wait
    if (this.autoAdvance && Number.isFinite(until)) {
      if (until > this.#now) this.set(until);
      return Promise.resolve();
    }
    if (until <= this.#now) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const sleeper: Sleeper = { until, resolve };
      this.#sleepers.push(sleeper);
      signal?.addEventListener(
        "abort",
        () => {
          this.#sleepers = this.#sleepers.filter((s) => s !== sleeper);
          reject(signal.reason);
        },
        { once: true },
      );
    });
  }
}
