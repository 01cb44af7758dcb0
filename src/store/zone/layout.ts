/**
 * The byte layout of a zone: one SharedArrayBuffer that the host thread and every Lua worker map,
 * read as Int32 words (`i32`), Float64 words (`f64`) and bytes (`u8`). Every offset stored in the
 * zone is a byte offset below 2^30 (max_memory is at most 1 GiB), 8-aligned for blocks.
 *
 * ```
 * [ header words | hash buckets | expiry heap | undo log | blocks ... top | free ... end ]
 * ```
 *
 * - **Header** (word indexes `H_*`): magic, layout version, the global lock word (owner's token)
 *   and its waiters, the recovery word, the entry count and bytes, the allocator (`top`, free
 *   bytes, one free-list head per size class), the index roots (LRU sentinel, skip-list head, heap
 *   size), the wide undo log's length and the redo intent, the liveness table (one word per
 *   attached thread), the shard table and the per-thread read counters.
 * - **Shards** (`S_*`, one 128-byte stretch each, so no two share a cache line or its prefetched
 *   pair): a key belongs to shard `hashKey & (SHARDS - 1)`, and so does its hash bucket. Each shard
 *   has the sequence word of its lock-free reads on one line, and on the next its lock word and
 *   waiters, its undo log's length and first pairs, its version counter (two u32: never rolled
 *   back). Everything a set of an existing key writes is on its shard's lock line, its entry, its
 *   value block and the thread's own counters: two threads writing keys of different shards share
 *   no word, and readers of a shard share nothing a set writes but the entry it sets.
 * - **Hash buckets**: a power of two of words, each the offset of the first entry of its chain
 *   (0 = empty; offset 0 is the header, never an entry).
 * - **Expiry heap**: a binary min-heap of entry offsets ordered by `expiresAt`; an entry keeps its
 *   heap position, so a TTL change or delete costs O(log n) and a sweep pops only expired keys.
 * - **Undo logs**: pairs (word index, old value) written before each word of an operation changes:
 *   the wide log (operations holding every shard) and one smaller log per shard.
 * - **Blocks**: each starts with a header word, its size in bytes with bit 0 set while free; a
 *   free block's second word links the free list of its size class. Sizes are multiples of 8:
 *   exact up to 2048 bytes, then four classes per power of two.
 *
 * An **entry** record (word offsets `R_*` from its first word):
 * ```
 *  0 block header      1 hash chain next    2 LRU prev          3 LRU next
 *  4 version lo        5 version hi         6-7 expiresAt (f64, clock ms; 0 = never)
 *  8 heap position (-1 = no TTL)            9 value block offset
 * 10 value length     11 metadata length   12 sequence (even; odd while rewritten in place)
 * 13 key length (bits 0-15) | type tag (bits 16-23) | skip-list level (bits 24-31)
 * 14.. skip-list forward offsets, one per level, then the key bytes
 * ```
 * A value block is a header word then the value bytes (MessagePack) and the metadata bytes.
 * A new value gets a new block and the entry keeps its place in every index.
 *
 * **Type tags.** An entry's tag says what word 9 points at; hash, LRU, expiry and the key index
 * treat every entry alike. `TAG_STRING`: a value block. `TAG_LIST` and `TAG_ZSET`: a collection
 * descriptor, whose first words every collection shares (`D_*`: the first block of its chain, the
 * next descriptor on the garbage list, its tag, its item count); word 10 then holds the items'
 * bytes (what stats count) and word 11 is 0.
 * - A **list** (`L_*`, `C_*`) is a chunked deque: its descriptor names the first and last chunk,
 *   and doubly linked chunk blocks (`C_NEXT` is word 1, the chain) of at least CHUNK_BYTES hold a
 *   run of items between a start and an end offset, each item its length (u32), its bytes padded
 *   to 4 and its length again, so both ends read in O(1). A push writes into the free bytes past
 *   one end of the end chunk (bytes no reader looks at, so only the offsets and counts are logged)
 *   or links a new chunk; a pop moves an offset or unlinks an emptied chunk. lrange walks chunks,
 *   skipping a whole chunk by its count.
 * - A **sorted set** (`Z_*`, `N_*`) is a skip list with spans (as Redis's zskiplist) whose nodes
 *   are zone blocks: a node holds its level-0 forward at word 1 (the chain, in score order), a
 *   backward link, its level and member length, its score (f64), its member's hash, a
 *   forward and a span per level, then the member bytes. The descriptor doubles as the head node
 *   (the same forward and span words) and adds the level, the tail and a member hash table block
 *   (open addressing, at most half full, doubled into a fresh block: `zscore` in O(1)). Order is (score, member bytes), so rank
 *   and range cost O(log n + k).
 * - **Garbage.** A collection that is deleted, evicted, expired or overwritten leaves its hash,
 *   LRU and expiry links in one step, and its descriptor goes onto the garbage list (H_GARBAGE,
 *   linked by D_GARBAGE) with its whole chain: freeing a million items must not have to fit one
 *   operation's undo log. Later steps, each its own logged and committed operation, free the chain
 *   a block at a time (C_NEXT and N_FWD0 are both word 1), then the hash table, then the descriptor.
 */

export const MAGIC = 0x6e6f7a6c; // "lzon"
export const LAYOUT_VERSION = 3;

// Header words.
export const H_MAGIC = 0;
export const H_LAYOUT = 1;
/**
 * The global lock: 0 = free, else the holder's thread token. It guards what every shard shares
 * (allocator, LRU list, expiry heap, skip list, entry count and bytes, garbage list). Only a
 * holder of a shard lock takes it (always after the shard's), and never waits for a shard while
 * holding it; an operation holding every shard needs it not, since its holder holds a shard too.
 */
export const H_LOCK = 2;
/** Threads blocked in Atomics.wait / waitAsync on H_LOCK. */
export const H_WAITERS = 3;
/** 0, or the token of the thread recovering dead threads' locks (one at a time). */
export const H_RECOVER = 4;
export const H_SIZE = 6;
export const H_BYTES = 7;
export const H_TOP = 20;
export const H_HEAP_START = 21;
export const H_END = 22;
export const H_FREE_BYTES = 23;
export const H_BUCKETS = 24;
export const H_BUCKET_MASK = 25;
export const H_EXP_BASE = 26;
export const H_EXP_CAP = 27;
export const H_EXP_SIZE = 28;
/** The wide undo log (operations that hold every shard). */
export const H_LOG_BASE = 29;
export const H_LOG_CAP = 30;
/** Entries in the wide undo log; non-zero while such an operation is under way. */
export const H_LOG_N = 31;
/** A redo intent (REDO_*): an idempotent operation that recovery runs again from the start. */
export const H_REDO = 32;
export const H_SKIP_LEVEL = 33;
export const H_MAX_SIZE = 34;
export const H_FLAGS = 35;
/** The first word of the shard undo logs, SHARD_LOG_CAP pairs each. */
export const H_SHARD_LOGS = 38;
/** The LRU sentinel's prev (least recent) and next (most recent): a pseudo-entry at word 34. */
export const H_LRU_PREV = 36;
export const H_LRU_NEXT = 37;
/** Skip-list head forwards (a pseudo-entry at word 26: its R_FWD + i lands on 40 + i). */
export const H_SKIP_HEAD = 40;
export const SKIP_MAX_LEVEL = 16;
/** The first descriptor of collections waiting to be freed (see Garbage above), 0 = none. */
export const H_GARBAGE = 56;
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
/**
 * The entry's sequence word: odd while a call rewrites its value in place (without the global
 * lock), so a lock-free get of it retries; never rolled back. (It was reserved for quotas: a
 * zone quota needs a word of its own when it comes.)
 */
export const R_SEQ = 12;
export const R_INFO = 13;
export const R_FWD = 14;

export const TAG_STRING = 0;
export const TAG_LIST = 1;
export const TAG_ZSET = 2;

// Collection descriptor words (every collection).
/** The first block of the structure's chain: a list's first chunk, a sorted set's lowest node. */
export const D_CHAIN = 1;
/** The next descriptor on the garbage list. */
export const D_GARBAGE = 2;
/** TAG_LIST or TAG_ZSET. */
export const D_KIND = 3;
/** Items: list elements or sorted-set members. */
export const D_COUNT = 4;

// List descriptor and chunks.
export const L_LAST = 5;
export const LIST_DESC_BYTES = 24;
export const C_NEXT = 1;
export const C_PREV = 2;
export const C_COUNT = 3;
/** Byte offsets, from the chunk's start, of its first item and of the end of its last. */
export const C_START = 4;
export const C_END = 5;
export const CHUNK_HEADER = 24;
/** A chunk's size unless one item needs more: pushes and pops touch one such block. */
export const CHUNK_BYTES = 512;

/** Bytes an item of `length` bytes takes in a chunk: both length words and the bytes padded to 4. */
export function listItemBytes(length: number): number {
  return 8 + ((length + 3) & ~3);
}

// Sorted-set nodes (and the descriptor, which is the head node: it has the same forward and span words).
export const N_FWD0 = 1;
export const N_BACK = 2;
/** Level (bits 0-7) | member length (bits 8-31). */
export const N_INFO = 3;
/** The score, a float64 at words 4-5 (a block is 8-aligned). */
export const N_SCORE = 4;
/** The member's hashKey (its place in the member hash table). */
export const N_HASH = 6;
export const ZSET_MAX_LEVEL = 16;
/** Descriptor words (besides D_*): the list's level, its last node, the member hash table block and its mask. */
export const Z_LEVEL = 5;
export const Z_TAIL = 6;
export const Z_HASH = 38;
export const Z_HASH_MASK = 39;
export const ZSET_DESC_BYTES = 160;
/** Slots of a new set's member hash table (a power of two; doubled before it is half full). */
export const ZSET_MIN_BUCKETS = 8;

/** Word of a node's (or the head's) forward link at `level`. */
export function nodeFwd(level: number): number {
  return level === 0 ? N_FWD0 : 6 + 2 * level;
}

/** Word of a node's (or the head's) span at `level`: how many members that forward link moves on. */
export function nodeSpan(level: number): number {
  return 7 + 2 * level;
}

/** Bytes of a node of `level` levels and `memberLength` member bytes. */
export function nodeBytes(level: number, memberLength: number): number {
  return align8(4 * (6 + 2 * level) + memberLength);
}

/** Byte offset of a node's member bytes from its start. */
export function nodeMemberOffset(level: number): number {
  return 4 * (6 + 2 * level);
}

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

/** Shards (a power of two, at most the fewest hash buckets, 16). */
export const SHARDS = 16;
export const SHARD_MASK = SHARDS - 1;
/** Words from one shard's header to the next: 128 bytes, two cache lines. */
export const SHARD_WORDS = 32;
/** The shard table: word of shard 0's header, 32-word aligned (so every shard starts a 128-byte line pair). */
export const H_SHARDS = (H_FREE_HEADS + CLASS_COUNT + 31) & ~31;
/**
 * Shard words (from `H_SHARDS + SHARD_WORDS * s`), on two cache lines. The first holds the
 * sequence word of lock-free reads, which only a change to the shard's structure writes; the
 * second what every call of the shard writes (lock, log, version counter), so that readers of
 * a shard keep their copy of its sequence while writers take turns at its lock.
 *
 * The sequence word is odd while a writer changes the shard's structure: its chains, entries
 * other than by an in-place rewrite, their blocks (any call that takes the global lock, or
 * holds every shard). A get under eviction none reads without a lock and keeps what it read
 * only when its shard's word and its entry's (R_SEQ) were even and unchanged around the read.
 */
export const S_SEQ = 0;
/** The lock (0 or the holder's token) and its waiters. */
export const S_LOCK = 16;
export const S_WAITERS = 17;
/** Entries in the shard's undo log; non-zero while an operation of the shard is under way. */
export const S_LOG_N = 18;
/** The shard's version counter c (two u32): its versions are c * SHARDS + shard, so no two shards give the same. */
export const S_VERSION_LO = 19;
export const S_VERSION_HI = 20;
/** The entry whose R_SEQ the holder made odd (an in-place rewrite), 0 = none: recovery makes it even. */
export const S_ENTRY = 21;
/** The shard log's first S_LOG_HEAD_PAIRS pairs, on the lock's line: a set's version change is logged there. */
export const S_LOG_HEAD = 22;
export const S_LOG_HEAD_PAIRS = 5;
/** Pairs in each shard's undo log past its head: a one-key operation that outgrows it runs again holding every shard, with the wide log. */
export const SHARD_LOG_CAP = 1024;

/**
 * Per liveness slot, float64 counters (F_*): a call counts in its own thread's slot, so counting
 * writes no shared word. Each slot has a 64-byte cache line of its own: two workers counting in
 * one line made every get of each a cache miss for the other (measured: 2 workers no faster than
 * 1). Write counts are added at the commit of the operation that made them (a rolled-back one
 * counts nothing), unlogged: a thread that dies between its commit and its count loses one.
 */
export const H_READ_COUNTERS = (H_SHARDS + SHARDS * SHARD_WORDS + 15) & ~15;
/** Counters of a thread slot, float64 indexes from its first: reads (hits, misses), then writes; stats sums every slot. */
export const F_HITS = 0;
export const F_MISSES = 1;
export const F_SETS = 2;
export const F_DELETES = 3;
export const F_EXPIRED = 4;
export const F_EVICTED = 5;
/** Float64 words from one slot's counters to the next (one cache line). */
export const READ_COUNTER_STRIDE = 8;
/** Header words (an even count, so what follows is 8-aligned). */
export const HEADER_WORDS = H_READ_COUNTERS + 2 * READ_COUNTER_STRIDE * THREAD_SLOTS;

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
