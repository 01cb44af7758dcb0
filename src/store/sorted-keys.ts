/**
 * Keys in byte order for `list`, kept up to date as keys come and go. A flat sorted array
 * would cost a memmove of the whole array per insert (about 1 ms per insert at 1M keys), so the
 * keys live in sorted chunks of at most {@link MAX_CHUNK}: an insert or delete is a binary
 * search over the chunks, one within a chunk and a splice of at most MAX_CHUNK slots, and a
 * page is a binary search plus a walk over the keys it returns.
 *
 * Byte strings (one char per byte, see src/bytes.ts) compare in byte order with JS `<`,
 * because every char code is 0..255.
 */

/** Largest chunk; a chunk that grows past it splits in two halves. */
const MAX_CHUNK = 512;

export class SortedKeys {
  /** Non-empty sorted chunks; every key of a chunk sorts before every key of the next. */
  #chunks: string[][] = [];
  #size = 0;

  /** An index of `keys`, which must be distinct. */
  static from(keys: Iterable<string>): SortedKeys {
    const index = new SortedKeys();
    const all = Array.from(keys).sort(compareKeys);
    for (let i = 0; i < all.length; i += MAX_CHUNK) index.#chunks.push(all.slice(i, i + MAX_CHUNK));
    index.#size = all.length;
    return index;
  }

  get size(): number {
    return this.#size;
  }

  /** Adds `key`; false when it was already there. */
  insert(key: string): boolean {
    const chunks = this.#chunks;
    if (chunks.length === 0) {
      chunks.push([key]);
      this.#size = 1;
      return true;
    }
    // The first chunk whose last key is >= key, or the last chunk for a key above them all.
    const c = Math.min(this.#chunkAtOrAfter(key), chunks.length - 1);
    const chunk = chunks[c]!;
    const i = lowerBound(chunk, key);
    if (chunk[i] === key) return false;
    // A hand-written shift beats splice, which allocates its (empty) result array.
    let j = chunk.length;
    chunk.push(key);
    for (; j > i; j--) chunk[j] = chunk[j - 1]!;
    chunk[i] = key;
    this.#size++;
    if (chunk.length > MAX_CHUNK) chunks.splice(c + 1, 0, chunk.splice(chunk.length >> 1));
    return true;
  }

  /** Removes `key`; false when it was not there. */
  delete(key: string): boolean {
    const chunks = this.#chunks;
    const c = this.#chunkAtOrAfter(key);
    const chunk = chunks[c];
    if (chunk === undefined) return false;
    const i = lowerBound(chunk, key);
    if (chunk[i] !== key) return false;
    const last = chunk.length - 1;
    for (let j = i; j < last; j++) chunk[j] = chunk[j + 1]!;
    chunk.pop();
    this.#size--;
    if (chunk.length === 0) chunks.splice(c, 1);
    return true;
  }

  clear(): void {
    this.#chunks = [];
    this.#size = 0;
  }

  /**
   * Calls `visit` with each key from `start` on (including `start` itself when `inclusive`) in
   * byte order, until it returns false. `visit` must not insert or delete keys.
   */
  scan(start: string, inclusive: boolean, visit: (key: string) => boolean): void {
    const chunks = this.#chunks;
    let c = this.#chunkAtOrAfter(start);
    if (c >= chunks.length) return;
    let i = lowerBound(chunks[c]!, start);
    if (!inclusive && chunks[c]![i] === start) i++;
    for (; c < chunks.length; c++, i = 0) {
      const chunk = chunks[c]!;
      for (; i < chunk.length; i++) if (!visit(chunk[i]!)) return;
    }
  }

  /** Index of the first chunk whose last key is >= key (chunks.length when none is). */
  #chunkAtOrAfter(key: string): number {
    const chunks = this.#chunks;
    let lo = 0;
    let hi = chunks.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      const chunk = chunks[mid]!;
      if (chunk[chunk.length - 1]! < key) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  }
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Index of the first key >= `key` in the sorted `keys` (keys.length when none is). */
function lowerBound(keys: readonly string[], key: string): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (keys[mid]! < key) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
