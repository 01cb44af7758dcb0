/**
 * Expiry without a timer per key: keys with a TTL are grouped into buckets by their expiry
 * time rounded up to a quantum, and a min-heap orders the bucket times. A sweep pops only the
 * buckets whose time has passed, so its cost grows with the number of expired keys, never
 * with the size of the store (the idea of @isaacs/ttlcache's expiration buckets).
 */
export class ExpiryIndex {
  readonly #quantumMs: number;
  readonly #buckets = new Map<number, Set<string>>();
  /** Min-heap of bucket times present in #buckets. */
  readonly #heap: number[] = [];
  #size = 0;
  #visited = 0;

  /** `quantumMs`: the width of a bucket; a sweep looks at the keys of at most one unexpired bucket. */
  constructor(quantumMs = 100) {
    if (!(quantumMs > 0)) throw new RangeError(`quantumMs must be > 0, got ${quantumMs}`);
    this.#quantumMs = quantumMs;
  }

  /** Number of keys indexed. */
  get size(): number {
    return this.#size;
  }

  /** Keys looked at by all sweeps so far: the measure of sweep cost (expired keys plus at most one partial bucket each). */
  get visited(): number {
    return this.#visited;
  }

  /** Bucket times still in the heap, including emptied buckets not popped yet (for tests). */
  get bucketCount(): number {
    return this.#heap.length;
  }

  #bucketOf(expiresAt: number): number {
    return Math.ceil(expiresAt / this.#quantumMs) * this.#quantumMs;
  }

  /** Indexes `key` as expiring at `expiresAt` (ms); the key must not be indexed already. */
  add(key: string, expiresAt: number): void {
    const t = this.#bucketOf(expiresAt);
    let bucket = this.#buckets.get(t);
    if (bucket === undefined) {
      bucket = new Set();
      this.#buckets.set(t, bucket);
      this.#push(t);
    }
    const before = bucket.size;
    bucket.add(key);
    this.#size += bucket.size - before;
  }

  /** Removes `key` from the bucket of its previous expiry time. */
  remove(key: string, expiresAt: number): void {
    const t = this.#bucketOf(expiresAt);
    const bucket = this.#buckets.get(t);
    if (bucket === undefined) return;
    if (bucket.delete(key)) this.#size--;
    // An empty bucket stays in the heap until popped; popping skips it cheaply.
  }

  /**
   * Calls `expire(key)` for every key in buckets whose time is <= now, plus the keys of
   * the next (partly expired) bucket for which `isExpired(key)` holds. Returns the count.
   */
  sweep(now: number, expire: (key: string) => void, isExpired: (key: string) => boolean): number {
    let n = 0;
    const heap = this.#heap;
    while (heap.length > 0 && heap[0]! <= now) {
      const t = this.#pop();
      const bucket = this.#buckets.get(t);
      this.#buckets.delete(t);
      if (bucket === undefined) continue;
      this.#size -= bucket.size;
      this.#visited += bucket.size;
      for (const key of bucket) {
        expire(key);
        n++;
      }
    }
    if (heap.length > 0) {
      const next = heap[0]!;
      if (next - this.#quantumMs < now) {
        const bucket = this.#buckets.get(next);
        if (bucket !== undefined) {
          this.#visited += bucket.size;
          for (const key of bucket) {
            if (isExpired(key)) {
              bucket.delete(key);
              this.#size--;
              expire(key);
              n++;
            }
          }
        }
      }
    }
    return n;
  }

  clear(): void {
    this.#buckets.clear();
    this.#heap.length = 0;
    this.#size = 0;
  }

  #push(t: number): void {
    const heap = this.#heap;
    let i = heap.length;
    heap.push(t);
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]! <= t) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = t;
  }

  #pop(): number {
    const heap = this.#heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    const n = heap.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        const l = 2 * i + 1;
        if (l >= n) break;
        const r = l + 1;
        const c = r < n && heap[r]! < heap[l]! ? r : l;
        if (heap[c]! >= last) break;
        heap[i] = heap[c]!;
        i = c;
      }
      heap[i] = last;
    }
    return top;
  }
}
