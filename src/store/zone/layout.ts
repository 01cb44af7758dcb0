/**
 * The byte layout of a zone: one SharedArrayBuffer that the host thread and every Lua worker map,
 * read as Int32 words (`i32`), Float64 words (`f64`) and bytes (`u8`). Every offset stored in the
 * zone is a byte offset below 2^30 (max_memory is at most 1 GiB), 8-aligned for blocks.
 *
 * ```
 * [ header words | hash buckets | expiry heap | undo log | blocks ... top | free ... end ]
 * ```
 *
 * - **Header** (word indexes `H_*`): magic, layout version, the lock word (owner's token), the
 *   sequence word of lock-free reads, per-thread read counters,
 *   waiters, the version counter (two u32: never rolled back, so a version never repeats), entry
 *   count and bytes, counters (f64), the allocator (`top`, free bytes, one free-list head per
 *   size class), the index roots (LRU sentinel, skip-list head, heap size), the undo log's
 *   length and the redo intent, and the liveness table (one word per attached thread).
 * - **Hash buckets**: a power of two of words, each the offset of the first entry of its chain
 *   (0 = empty; offset 0 is the header, never an entry).
 * - **Expiry heap**: a binary min-heap of entry offsets ordered by `expiresAt`; an entry keeps its
 *   heap position, so a TTL change or delete costs O(log n) and a sweep pops only expired keys.
 * - **Undo log**: pairs (word index, old value) written before each word of an operation changes.
 * - **Blocks**: each starts with a header word, its size in bytes with bit 0 set while free; a
 *   free block's second word links the free list of its size class. Sizes are multiples of 8:
 *   exact up to 2048 bytes, then four classes per power of two.
 *
 * An **entry** record (word offsets `R_*` from its first word):
 * ```
 *  0 block header      1 hash chain next    2 LRU prev          3 LRU next
 *  4 version lo        5 version hi         6-7 expiresAt (f64, clock ms; 0 = never)
 *  8 heap position (-1 = no TTL)            9 value block offset
 * 10 value length     11 metadata length   12 share (0 = none; reserved for quotas)
 * 13 key length (bits 0-15) | type tag (bits 16-23) | skip-list level (bits 24-31)
 * 14.. skip-list forward offsets, one per level, then the key bytes
 * ```
 * A value block is a header word then the value bytes (MessagePack) and the metadata bytes.
 * A new value gets a new block and the entry keeps its place in every index.
 *
 * **Type tags.** `TAG_STRING` (one MessagePack value) is the only tag written today; `TAG_LIST`
 * and `TAG_ZSET` are reserved. How they will hang off an entry (word 9 then points at a
 * structure block instead of a value block, so hash, LRU, expiry and the key index stay as they are):
 * - a list: a deque descriptor block `{ header, length, byte total, first chunk, last chunk }`
 *   and doubly linked chunk blocks `{ header, prev, next, count, used bytes, items }` of up to
 *   ~512 bytes, each item a u32 length and its MessagePack bytes; push and pop touch one end
 *   chunk, `lrange` walks chunks skipping by count;
 * - a sorted set: a descriptor `{ header, cardinality, level, head forwards[16], member hash
 *   buckets offset }` and one node block per member `{ header, score (f64), member length,
 *   level, forwards with spans (for rank) ..., member bytes }` ordered by (score, member bytes),
 *   plus a small member → node hash table block for `zscore`, so rank and range cost
 *   O(log n + k). Every change goes through the same undo log, so recovery needs nothing new.
 */

export const MAGIC = 0x6e6f7a6c; // "lzon"
export const LAYOUT_VERSION = 1;

// Header words.
export const H_MAGIC = 0;
export const H_LAYOUT = 1;
/** 0 = free, else the holder's thread token. */
export const H_LOCK = 2;
/** Threads blocked in Atomics.wait / waitAsync on H_LOCK. */
export const H_WAITERS = 3;
export const H_VERSION_LO = 4;
export const H_VERSION_HI = 5;
export const H_SIZE = 6;
export const H_BYTES = 7;
/** Float64 indexes of the write counters (words 12..19; 8..11 unused: reads count per thread, H_READ_COUNTERS). */
export const F_SETS = 6;
export const F_DELETES = 7;
export const F_EXPIRED = 8;
export const F_EVICTED = 9;
export const H_TOP = 20;
export const H_HEAP_START = 21;
export const H_END = 22;
export const H_FREE_BYTES = 23;
export const H_BUCKETS = 24;
export const H_BUCKET_MASK = 25;
export const H_EXP_BASE = 26;
export const H_EXP_CAP = 27;
export const H_EXP_SIZE = 28;
export const H_LOG_BASE = 29;
export const H_LOG_CAP = 30;
/** Entries in the undo log; non-zero while an operation is under way. */
export const H_LOG_N = 31;
/** A redo intent (REDO_*): an idempotent operation that recovery runs again from the start. */
export const H_REDO = 32;
export const H_SKIP_LEVEL = 33;
export const H_MAX_SIZE = 34;
export const H_FLAGS = 35;
/**
 * The sequence word: odd while a writer changes the zone. A get under eviction none reads without
 * the lock and keeps what it read only when this word was even and unchanged around the read.
 */
export const H_SEQ = 38;
/** The LRU sentinel's prev (least recent) and next (most recent): a pseudo-entry at word 34. */
export const H_LRU_PREV = 36;
export const H_LRU_NEXT = 37;
/** Skip-list head forwards (a pseudo-entry at word 26: its R_FWD + i lands on 40 + i). */
export const H_SKIP_HEAD = 40;
export const SKIP_MAX_LEVEL = 16;
/** Liveness table: one word per attached thread, holding its token (0 = free). */
export const H_THREADS = 64;
export const THREAD_SLOTS = 256;
export const H_FREE_HEADS = H_THREADS + THREAD_SLOTS;

export const FLAG_LRU = 1;

export const REDO_NONE = 0;
export const REDO_CLEAR = 1;
export const REDO_COALESCE = 2;

// Entry record words.
export const R_HEAD = 0;
export const R_HNEXT = 1;
export const R_PREV = 2;
export const R_NEXT = 3;
export const R_VLO = 4;
export const R_VHI = 5;
export const R_EXPIRES = 6;
export const R_HEAPIDX = 8;
export const R_VALUE = 9;
export const R_VLEN = 10;
export const R_MLEN = 11;
export const R_SHARE = 12;
export const R_INFO = 13;
export const R_FWD = 14;

export const TAG_STRING = 0;
export const TAG_LIST = 1;
export const TAG_ZSET = 2;

/** Byte offset of the LRU sentinel pseudo-entry. */
export const LRU_SENTINEL = (H_LRU_PREV - R_PREV) * 4;
/** Byte offset of the skip-list head pseudo-entry. */
export const SKIP_HEAD = (H_SKIP_HEAD - R_FWD) * 4;

export const MIN_BLOCK = 16;
const SMALL_LIMIT = 2048;
const LARGE_LIMIT = 1 << 30;

/** Block size of each size class: 8-byte steps up to 2048, then four per power of two. */
export const CLASS_SIZE: readonly number[] = (() => {
  const sizes: number[] = [];
  for (let s = 0; s <= SMALL_LIMIT; s += 8) sizes.push(s);
  for (let base = SMALL_LIMIT; base < LARGE_LIMIT; base *= 2) {
    for (let k = 1; k <= 4; k++) sizes.push(base + (base / 4) * k);
  }
  return sizes;
})();
export const CLASS_COUNT = CLASS_SIZE.length;

/**
 * Per liveness slot, two float64 read counters (hits, misses): a lock-free get counts in its
 * own thread's slot, so readers never write a shared word.
 */
export const H_READ_COUNTERS = (H_FREE_HEADS + CLASS_COUNT + 1) & ~1;
/** Header words (an even count, so what follows is 8-aligned). */
export const HEADER_WORDS = H_READ_COUNTERS + 4 * THREAD_SLOTS;

/** The smallest class whose blocks all hold `bytes` (a multiple of 8). */
export function classUp(bytes: number): number {
  if (bytes <= SMALL_LIMIT) return bytes >>> 3;
  let lo = SMALL_LIMIT >>> 3;
  let hi = CLASS_COUNT - 1;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (CLASS_SIZE[mid]! >= bytes) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}

/** The class a free block of `bytes` is listed in: the largest class size not above it. */
export function classDown(bytes: number): number {
  if (bytes <= SMALL_LIMIT) return bytes >>> 3;
  let lo = SMALL_LIMIT >>> 3;
  let hi = CLASS_COUNT - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >>> 1;
    if (CLASS_SIZE[mid]! <= bytes) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

export function align8(n: number): number {
  return (n + 7) & ~7;
}

/** Bytes of an entry record with `keyLength` key bytes and `level` skip-list forwards. */
export function entryBytes(keyLength: number, level: number): number {
  return align8(4 * (R_FWD + level) + keyLength);
}

/** Bytes of a value block holding `length` value and metadata bytes. */
export function valueBlockBytes(length: number): number {
  return Math.max(MIN_BLOCK, align8(4 + length));
}
