/**
 * The zone engine: one SharedArrayBuffer laid out as in ./layout.ts, shared by the host thread
 * and the Lua workers, with sharded writer locks, undo logs that make every operation all or
 * nothing even when its thread dies at any instruction, an allocator, and the four indexes of a
 * store (hash chains, LRU list, expiry heap, skip list). ZoneStore (./zone-store.ts) gives it the
 * Store semantics; this file knows entries, not TTL rules or errors.
 *
 * - **Locks.** A key belongs to one of SHARDS shards (`hashKey & 15`), and so does its hash
 *   bucket. A call on one key takes its shard's lock word (0 or the holder's token, its
 *   `threadId + 1`, taken with `Atomics.compareExchange`); a call on many keys, or on the order
 *   across them (list, sweep, making room, clear), takes every shard's, in shard order. What the
 *   shards share (allocator, LRU list, expiry heap, skip list, entry count and bytes, garbage)
 *   is guarded by the global lock H_LOCK, which a one-shard call takes only when it changes one
 *   of those (`global()`: a new key, a delete, a TTL change, a value that needs another block, an
 *   LRU touch), after its shard's and never the other way round; holding every shard covers it.
 *   A set of an existing key with a value of its block's size, its TTL unchanged, writes only
 *   its shard's words (lock, sequence, log, version counter, write counters), its entry and its
 *   value block: two writers of different shards share no cache line. A waiter spins briefly,
 *   then sleeps in `Atomics.wait` (a worker) or `Atomics.waitAsync` (the host thread, whose event
 *   loop must keep running to see a worker exit; it never waits while holding a lock, so a
 *   one-shard call there that finds the global lock busy runs again holding every shard).
 * - **Lock-free reads.** A get under eviction none reads without a lock, checked by its shard's
 *   sequence word, which a writer makes odd at its first change and even at unlock: a write
 *   sends back only the reads of its own shard. Under LRU a get takes its shard's lock and the
 *   global one (it writes the recency list).
 * - **Undo logs.** Every word an operation changes in the zone's structures goes through `w`,
 *   which first appends (word, old value) to the operation's log (its shard's, or the wide log
 *   when it holds every shard; a one-shard operation that outgrows its log runs again so) and
 *   bumps that log's length; the commit sets it to 0. The global lock's changes go into the log
 *   of the shard its holder holds. A fresh block's words need no log (rolling back returns the
 *   block to where it came from; `alloc` logs the two words a free block carries), which holds
 *   because a block freed by an operation goes back to the allocator only at its commit, so it
 *   is never handed out again within the operation that still needs its old words for a
 *   rollback. Recovery restores the logged words newest first, so an unfinished operation leaves
 *   no trace. Version counters are not logged: they only grow, so a version never repeats even
 *   across a rollback; shard s gives versions c × SHARDS + s, so no two shards give the same.
 * - **Redo intents** cover the two operations too large to log: `clear` and the free-space merge
 *   (`coalesce`) record their intent in H_REDO first; both are idempotent, and recovery runs an
 *   unfinished one again from the start.
 * - **Garbage.** A list or sorted set that leaves the store (`remove`, or `rewrite` with a value)
 *   goes onto the garbage list whole; `reclaim` frees its blocks later in small logged steps, so
 *   no operation has to log the freeing of a big collection (layout.ts, Garbage).
 * - **Liveness.** Each thread that maps the zone writes its token into a slot of the liveness
 *   table; the host clears a worker's slot on its 'exit' event (`threadExited`). A lock whose
 *   holder has no slot belongs to a dead thread: whoever sees that (a waiter, or the host on the
 *   exit) takes the recovery word H_RECOVER, takes over with a compareExchange every lock a dead
 *   thread holds, rolls back the logs those locks guard (every shard's it took; the wide log and
 *   a redo intent when it took every shard), evens their sequence words and releases them. A
 *   recoverer that dies holding H_RECOVER is recovered in turn: rolling back is idempotent.
 */
import { isMainThread, threadId } from "node:worker_threads";
import { zoneFault } from "./fault.js";
import { hashKey } from "./hash-key.js";
import { verifyList } from "./zone-list.js";
import { verifyZset } from "./zone-zset.js";
import {
  align8,
  CLASS_COUNT,
  CLASS_SIZE,
  classDown,
  classUp,
  D_CHAIN,
  D_GARBAGE,
  D_KIND,
  entryBytes,
  FLAG_LRU,
  H_BUCKET_MASK,
  H_BUCKETS,
  H_BYTES,
  H_END,
  H_EXP_BASE,
  H_EXP_CAP,
  H_EXP_SIZE,
  H_FLAGS,
  H_FREE_BYTES,
  H_FREE_HEADS,
  H_GARBAGE,
  H_HEAP_START,
  H_LAYOUT,
  H_LOCK,
  H_LOG_BASE,
  H_LOG_CAP,
  H_LOG_N,
  H_LRU_NEXT,
  H_LRU_PREV,
  H_MAGIC,
  H_MAX_SIZE,
  H_READ_COUNTERS,
  F_EVICTED,
  F_SETS,
  READ_COUNTER_STRIDE,
  H_RECOVER,
  H_REDO,
  H_SHARD_LOGS,
  H_SHARDS,
  H_SIZE,
  H_SKIP_HEAD,
  H_SKIP_LEVEL,
  H_THREADS,
  H_TOP,
  H_WAITERS,
  HEADER_WORDS,
  LAYOUT_VERSION,
  LRU_SENTINEL,
  MAGIC,
  MIN_BLOCK,
  R_EXPIRES,
  R_FWD,
  R_HEAPIDX,
  R_HNEXT,
  R_INFO,
  R_MLEN,
  R_NEXT,
  R_PREV,
  R_SEQ,
  R_VALUE,
  R_VHI,
  R_VLEN,
  R_VLO,
  REDO_CLEAR,
  REDO_COALESCE,
  REDO_NONE,
  S_ENTRY,
  S_LOG_HEAD,
  S_LOG_HEAD_PAIRS,
  S_LOCK,
  S_LOG_N,
  S_SEQ,
  S_VERSION_HI,
  S_VERSION_LO,
  SHARD_LOG_CAP,
  SHARD_MASK,
  SHARD_WORDS,
  SHARDS,
  SKIP_HEAD,
  SKIP_MAX_LEVEL,
  TAG_LIST,
  TAG_STRING,
  TAG_ZSET,
  THREAD_SLOTS,
  Z_HASH,
  valueBlockBytes,
} from "./layout.js";

/** Bit 0 of a block header: the block is free. */
const BLOCK_FREE = 1;
/** Bit 1 of a block header: the block is an entry record (else a value block). */
const BLOCK_ENTRY = 2;
const BLOCK_FLAGS = 7;

/** Thrown by `w` when an operation would outgrow the undo log; the caller rolls back. */
export const LOG_FULL = new Error("zone undo log full");

/** Spins before sleeping on the lock: long enough to ride out a short hold, short enough on a busy machine. */
const LOCK_SPINS = 2000;
/** Values (with their metadata) up to this many bytes may be rewritten in their block (see #rewriteInPlace). */
const IN_PLACE_BYTES = 256;
/** Lock-free tries of a get before it takes the lock (each one waits out a writer's change first). */
const READ_ATTEMPTS = 4;
/** Loads of the sequence word a lock-free get waits for a writer to finish before giving up. */
const SEQ_SPINS = 1000;
/** A sleeping waiter looks at the holder's liveness at least this often (ms). */
const LOCK_WAIT_MS = 20;

/** This thread's token: what it writes into the lock word and its liveness slot. */
export const THREAD_TOKEN = threadId + 1;

export interface ZoneLayoutOptions {
  /** The store's max_size: bounds the entries, and sizes the hash buckets and expiry heap. */
  maxSize: number;
  lru: boolean;
}

export { hashKey };

/**
 * Values up to this many bytes are copied out byte by byte into an array V8 keeps on its heap:
 * `slice` gives every copy, however small, a new ArrayBuffer of its own, which costs more than a
 * get's lookup.
 */
const SMALL_COPY = 32;

/** A copy of `length` bytes of `u8` from `start`. */
function copyBytes(u8: Uint8Array, start: number, length: number): Uint8Array {
  if (length > SMALL_COPY) return u8.slice(start, start + length);
  const out = new Uint8Array(length);
  for (let i = 0; i < length; i++) out[i] = u8[start + i]!;
  return out;
}

/** A skip-list level: 1 + one more with probability 1/4 each, at most SKIP_MAX_LEVEL. */
export function randomLevel(): number {
  let level = 1;
  while (level < SKIP_MAX_LEVEL && Math.random() < 0.25) level++;
  return level;
}

/** Thrown by `global` on the host thread when a live worker holds the global lock past a spin: the caller runs the operation again holding every shard. */
export const NEED_ALL = new Error("zone: the global lock is busy");

const NO_LOCK = 0;
const ONE_SHARD = 1;
const ALL_SHARDS = 2;

export class Zone {
  readonly buffer: SharedArrayBuffer;
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly u8: Uint8Array;
  /** What this thread writes into the lock words and its liveness slot. */
  readonly token: number;
  /** Steps of the current call, for the fault hook (the caller sets it to 0). */
  step = 0;
  /** NO_LOCK, ONE_SHARD (#shard's lock) or ALL_SHARDS (every shard's lock, the wide log). */
  #mode = NO_LOCK;
  /** The shard held (ONE_SHARD), or 0 (ALL_SHARDS: its counters take what the operation counts). */
  #shard = 0;
  /** True while this thread holds the global lock (H_LOCK), in ONE_SHARD mode. */
  #global = false;
  /** The current operation's undo log: its first word, capacity, and the word holding its length. */
  #logBase = 0;
  #logCap = 0;
  #logNWord = H_LOG_N;
  /** Mirror of the current log's length (the zone's word is the truth; this one saves a load per write). */
  #logN = 0;
  /** A shard log's first pairs sit on its lock line (S_LOG_HEAD): their first word, and how many (0 for the wide log). */
  #headBase = 0;
  #headN = 0;
  /** The entry whose R_SEQ this hold made odd (an in-place rewrite without the global lock), 0 = none. */
  #marked = 0;
  /** Write counts (F_*) of the current operation, added to this thread's slot at its commit. */
  readonly #pending = new Float64Array(READ_COUNTER_STRIDE);
  #counted = false;
  readonly #wideLogBase: number;
  readonly #wideLogCap: number;
  readonly #shardLogs: number;
  readonly #bucketBase: number;
  readonly #bucketMask: number;
  readonly #expBase: number;
  readonly #update = new Int32Array(SKIP_MAX_LEVEL);
  /** One word, and its bytes, for #rewriteInPlace to build a word of value bytes in. */
  readonly #word = new Int32Array(1);
  readonly #wordBytes = new Uint8Array(this.#word.buffer);
  /** This thread's liveness slot (its read counters live there too). */
  #slot = 0;
  /** True once the current lock hold made the held shards' sequence words odd (its first change); unlock makes them even. */
  #writing = false;
  readonly #heapStart: number;
  readonly #end: number;
  /** Blocks the current operation freed, released to the allocator at its commit. */
  readonly #freed: number[] = [];

  /** Lays out a fresh zone of `bytes` in a new SharedArrayBuffer. */
  static create(bytes: number, options: ZoneLayoutOptions, token = THREAD_TOKEN): Zone {
    const buffer = new SharedArrayBuffer(bytes);
    const i32 = new Int32Array(buffer);
    // An entry takes at least 72 bytes (record and value block), so no more fit than this.
    const capacity = Math.max(16, Math.min(options.maxSize, Math.floor(bytes / 64)));
    // At least one bucket per shard: a bucket's keys are all of one shard.
    let buckets = Math.max(16, SHARDS);
    while (buckets < capacity) buckets *= 2;
    const logCap = Math.min(1 << 19, Math.max(4096, Math.floor(bytes / 128)));
    const bucketBase = HEADER_WORDS;
    const expBase = bucketBase + buckets;
    const logBase = (expBase + capacity + 1) & ~1;
    // Each shard's log starts a 128-byte line pair of its own.
    const shardLogs = (logBase + 2 * logCap + 31) & ~31;
    const heapStart = align8((shardLogs + 2 * SHARD_LOG_CAP * SHARDS) * 4);
    if (heapStart + 64 * 1024 > bytes) {
      throw new RangeError(`a zone of ${bytes} bytes has no room for entries after its indexes (${heapStart} bytes)`);
    }
    i32[H_LAYOUT] = LAYOUT_VERSION;
    i32[H_HEAP_START] = heapStart;
    i32[H_END] = bytes;
    i32[H_BUCKETS] = bucketBase;
    i32[H_BUCKET_MASK] = buckets - 1;
    i32[H_EXP_BASE] = expBase;
    i32[H_EXP_CAP] = capacity;
    i32[H_LOG_BASE] = logBase;
    i32[H_LOG_CAP] = logCap;
    i32[H_SHARD_LOGS] = shardLogs;
    i32[H_MAX_SIZE] = options.maxSize;
    i32[H_FLAGS] = options.lru ? FLAG_LRU : 0;
    const zone = new Zone(buffer, false, token);
    zone.#reset();
    Atomics.store(i32, H_MAGIC, MAGIC);
    return zone;
  }

  /**
   * Maps an existing zone (made by `create` in another thread). `token` is the thread's
   * identity in the zone; tests give one thread several (each a thread that may "die").
   */
  static attach(buffer: SharedArrayBuffer, token = THREAD_TOKEN): Zone {
    return new Zone(buffer, true, token);
  }

  private constructor(buffer: SharedArrayBuffer, check: boolean, token: number) {
    this.buffer = buffer;
    this.token = token;
    this.i32 = new Int32Array(buffer);
    this.f64 = new Float64Array(buffer);
    this.u8 = new Uint8Array(buffer);
    const i32 = this.i32;
    if (check) {
      if (Atomics.load(i32, H_MAGIC) !== MAGIC) throw new TypeError("not a luastore zone (bad magic)");
      if (i32[H_LAYOUT] !== LAYOUT_VERSION) throw new TypeError(`zone layout ${i32[H_LAYOUT]}, this code reads ${LAYOUT_VERSION}`);
    }
    this.#wideLogBase = i32[H_LOG_BASE]!;
    this.#wideLogCap = i32[H_LOG_CAP]!;
    this.#shardLogs = i32[H_SHARD_LOGS]!;
    this.#bucketBase = i32[H_BUCKETS]!;
    this.#bucketMask = i32[H_BUCKET_MASK]!;
    this.#expBase = i32[H_EXP_BASE]!;
    this.#heapStart = i32[H_HEAP_START]!;
    this.#end = i32[H_END]!;
    this.#slot = this.#claimSlot();
  }

  get maxSize(): number {
    return this.i32[H_MAX_SIZE]!;
  }

  get lru(): boolean {
    return (this.i32[H_FLAGS]! & FLAG_LRU) !== 0;
  }

  /** The shard of a key whose hashKey is `h`. */
  static shardOf(h: number): number {
    return h & SHARD_MASK;
  }

  // -------------------------------------------------------------------------------------------
  // Liveness and the locks
  // -------------------------------------------------------------------------------------------

  #claimSlot(): number {
    const i32 = this.i32;
    for (let s = 0; s < THREAD_SLOTS; s++) if (Atomics.load(i32, H_THREADS + s) === this.token) return s;
    for (let s = 0; s < THREAD_SLOTS; s++) {
      if (Atomics.compareExchange(i32, H_THREADS + s, 0, this.token) === 0) return s;
    }
    throw new RangeError(`a zone serves at most ${THREAD_SLOTS} threads at once`);
  }

  /** True while the thread holding `token` has a liveness slot (the host clears it on exit). */
  isAlive(token: number): boolean {
    const i32 = this.i32;
    for (let s = 0; s < THREAD_SLOTS; s++) if (Atomics.load(i32, H_THREADS + s) === token) return true;
    return false;
  }

  /**
   * The host calls this on a worker's 'exit' event: the thread is gone, so its slot is freed and,
   * when it died holding locks, its half-done operations are rolled back and the locks released.
   * True when it had to recover a held lock.
   */
  threadExited(exitedThreadId: number): boolean {
    return this.tokenExited(exitedThreadId + 1);
  }

  /** threadExited by token (a thread's identity in the zone). */
  tokenExited(token: number): boolean {
    const i32 = this.i32;
    for (let s = 0; s < THREAD_SLOTS; s++) Atomics.compareExchange(i32, H_THREADS + s, token, 0);
    if (!this.#heldBy(token)) return false;
    // Another thread may be recovering at this moment: it releases the recovery word within a spin.
    for (let spin = 0; spin < 100 * LOCK_SPINS; spin++) {
      const recovered = this.#recoverDead();
      if (recovered !== undefined) return recovered;
    }
    return false;
  }

  /** True when `token` holds the global lock, some shard's, or the recovery word. */
  #heldBy(token: number): boolean {
    const i32 = this.i32;
    if (Atomics.load(i32, H_LOCK) === token || Atomics.load(i32, H_RECOVER) === token) return true;
    for (let s = 0; s < SHARDS; s++) if (Atomics.load(i32, H_SHARDS + SHARD_WORDS * s + S_LOCK) === token) return true;
    return false;
  }

  /** The lock word of shard `s`. */
  static shardLock(s: number): number {
    return H_SHARDS + SHARD_WORDS * s + S_LOCK;
  }

  /** Takes shard `s`'s lock without waiting; false when another thread holds it. */
  tryLockShard(s: number): boolean {
    if (Atomics.compareExchange(this.i32, H_SHARDS + SHARD_WORDS * s + S_LOCK, 0, this.token) !== 0) return false;
    this.#enterShard(s);
    return true;
  }

  #enterShard(s: number): void {
    this.#mode = ONE_SHARD;
    this.#shard = s;
    this.#headBase = H_SHARDS + SHARD_WORDS * s + S_LOG_HEAD;
    this.#headN = S_LOG_HEAD_PAIRS;
    this.#logBase = this.#shardLogs + 2 * SHARD_LOG_CAP * s;
    this.#logCap = S_LOG_HEAD_PAIRS + SHARD_LOG_CAP;
    this.#logNWord = H_SHARDS + SHARD_WORDS * s + S_LOG_N;
    this.#logN = 0;
  }

  #enterAll(): void {
    this.#mode = ALL_SHARDS;
    this.#shard = 0;
    this.#headN = 0;
    this.#logBase = this.#wideLogBase;
    this.#logCap = this.#wideLogCap;
    this.#logNWord = H_LOG_N;
    this.#logN = 0;
  }

  /**
   * Spins for the lock at word `word`, recovering a dead holder's locks; false when a live thread
   * still holds it (a worker then sleeps on it, the host thread waits without blocking its loop).
   */
  #spin(word: number): boolean {
    const i32 = this.i32;
    let owner = 0;
    for (let spin = 0; spin < LOCK_SPINS; spin++) {
      owner = Atomics.load(i32, word);
      if (owner === 0) {
        if (Atomics.compareExchange(i32, word, 0, this.token) === 0) return true;
      } else if (owner === this.token) {
        throw new Error("zone lock re-entered by its holder");
      }
    }
    // The holder's liveness once the spin is over, not at every turn of it: that walk of the
    // liveness table was a third of a waiter's time, and made the spin too short for a hold.
    if (owner !== 0 && !this.isAlive(owner)) this.#recoverDead();
    return Atomics.compareExchange(i32, word, 0, this.token) === 0;
  }

  /** Waits (Atomics.wait) until this thread holds the lock at `word`: for workers. */
  #block(word: number): void {
    const i32 = this.i32;
    while (!this.#spin(word)) {
      const owner = Atomics.load(i32, word);
      if (owner === 0) continue;
      Atomics.add(i32, word + 1, 1);
      Atomics.wait(i32, word, owner, LOCK_WAIT_MS);
      Atomics.sub(i32, word + 1, 1);
    }
  }

  /** Waits without blocking the event loop (the host thread) until the lock at `word` looks free. */
  async #waitFree(word: number): Promise<void> {
    const i32 = this.i32;
    const owner = Atomics.load(i32, word);
    if (owner === 0) return;
    Atomics.add(i32, word + 1, 1);
    const waited = Atomics.waitAsync(i32, word, owner, LOCK_WAIT_MS);
    if (waited.async) await waited.value;
    Atomics.sub(i32, word + 1, 1);
    if (Atomics.load(i32, word) === owner && !this.isAlive(owner)) this.#recoverDead();
  }

  /** Takes shard `s`'s lock; false only on the host thread while a live worker holds it (then use lockShardAsync). */
  lockShard(s: number): boolean {
    const word = H_SHARDS + SHARD_WORDS * s + S_LOCK;
    if (isMainThread) {
      if (!this.#spin(word)) return false;
    } else {
      this.#block(word);
    }
    this.#enterShard(s);
    return true;
  }

  /**
   * Takes shard `s`'s lock without blocking the event loop (the host thread) and runs `locked` at
   * once, in the same turn: a lock is never held across an await, so no other task of this thread
   * can find it held by its own token. `locked` releases it.
   */
  async lockShardAsync<T>(s: number, locked: () => T | Promise<T>): Promise<T> {
    const word = H_SHARDS + SHARD_WORDS * s + S_LOCK;
    while (!this.#spin(word)) await this.#waitFree(word);
    this.#enterShard(s);
    return locked();
  }

  /**
   * Takes every shard's lock, in shard order (so two threads doing so cannot deadlock); false only
   * on the host thread while a live worker holds one past a spin: then it holds none (use lockAllAsync).
   */
  lockAll(): boolean {
    return this.#lockAllNow() < 0;
  }

  /** -1 once every shard is held; else (host thread) the shard a live worker holds, with none held. */
  #lockAllNow(): number {
    for (let s = 0; s < SHARDS; s++) {
      const word = H_SHARDS + SHARD_WORDS * s + S_LOCK;
      if (!isMainThread) this.#block(word);
      else if (!this.#spin(word)) {
        for (let t = s - 1; t >= 0; t--) this.#release(H_SHARDS + SHARD_WORDS * t + S_LOCK);
        return s;
      }
    }
    this.#enterAll();
    return -1;
  }

  /** lockAll for the host thread: waits without blocking its loop, holding no shard across an await. */
  async lockAllAsync<T>(locked: () => T | Promise<T>): Promise<T> {
    for (let busy = this.#lockAllNow(); busy >= 0; busy = this.#lockAllNow()) await this.#waitFree(H_SHARDS + SHARD_WORDS * busy + S_LOCK);
    return locked();
  }

  /**
   * From one shard to all of them, for an operation that must run again holding every shard
   * (the shard's undo log is empty: the caller rolled back). False on the host thread when a live
   * worker holds a shard: then this thread holds no lock (use lockAllAsync).
   */
  widen(): boolean {
    this.unlock();
    return this.lockAll();
  }

  /** True while this thread holds one shard's lock only. */
  get oneShard(): boolean {
    return this.#mode === ONE_SHARD;
  }

  /**
   * Takes the global lock, if the operation holds one shard and not yet the global lock: every
   * change to what the shards share (allocator, LRU, expiry heap, skip list, size, bytes,
   * garbage) first calls this. On the host thread a live worker holding it past a spin makes it
   * throw NEED_ALL (the caller rolls back and runs the operation again holding every shard).
   */
  global(): void {
    if (this.#global || this.#mode !== ONE_SHARD) return;
    if (Atomics.compareExchange(this.i32, H_LOCK, 0, this.token) !== 0) {
      if (!isMainThread) this.#block(H_LOCK);
      else if (!this.#spin(H_LOCK)) throw NEED_ALL;
    }
    this.#global = true;
    // What the global lock guards is the shard's structure: its readers retry from now on.
    if (!this.#writing) this.#beginWriting();
  }

  /**
   * Before an in-place rewrite of `rec`'s value (holding its shard, maybe not the global lock):
   * its lock-free readers retry from now on. The entry goes into S_ENTRY first, so recovery can
   * make its sequence even again.
   */
  #markEntry(rec: number): void {
    if (this.#mode !== ONE_SHARD || this.#writing || this.#marked === rec) return;
    if (this.#marked !== 0) return this.global(); // a second entry: the shard's sequence covers both
    const i32 = this.i32;
    i32[H_SHARDS + SHARD_WORDS * this.#shard + S_ENTRY] = rec;
    Atomics.add(i32, (rec >> 2) + R_SEQ, 1);
    this.#marked = rec;
  }

  /** Makes the marked entry's sequence even again (its rewrite is over, or it is about to be removed). */
  #unmark(): void {
    const rec = this.#marked;
    if (rec === 0) return;
    this.#marked = 0;
    Atomics.add(this.i32, (rec >> 2) + R_SEQ, 1);
    this.i32[H_SHARDS + SHARD_WORDS * this.#shard + S_ENTRY] = 0;
  }

  #releaseGlobal(): void {
    if (!this.#global) return;
    this.#global = false;
    this.#release(H_LOCK);
  }

  #release(word: number): void {
    Atomics.store(this.i32, word, 0);
    if (Atomics.load(this.i32, word + 1) !== 0) Atomics.notify(this.i32, word, 1);
  }

  /** Releases what this thread holds: the global lock, then its shard or every shard (last first). */
  unlock(): void {
    const i32 = this.i32;
    this.#releaseGlobal();
    if (this.#mode === ONE_SHARD) {
      const base = H_SHARDS + SHARD_WORDS * this.#shard;
      this.#unmark();
      if (this.#writing) Atomics.add(i32, base + S_SEQ, 1);
      this.#release(base + S_LOCK);
    } else if (this.#mode === ALL_SHARDS) {
      for (let s = SHARDS - 1; s >= 0; s--) {
        const base = H_SHARDS + SHARD_WORDS * s;
        if (this.#writing) Atomics.add(i32, base + S_SEQ, 1);
        this.#release(base + S_LOCK);
      }
    }
    this.#writing = false;
    this.#mode = NO_LOCK;
  }

  /**
   * Recovers every lock held by a dead thread (one whose liveness slot is gone): takes them over,
   * rolls back the operations they guarded (each shard's log; the wide log and a redo intent when
   * every shard was a dead thread's) and releases them. One thread recovers at a time, under
   * H_RECOVER; a recoverer that dies is recovered in turn (rolling back is idempotent). True when
   * it recovered a lock, false when there was none, undefined when a live thread is recovering.
   */
  #recoverDead(): boolean | undefined {
    const i32 = this.i32;
    const me = this.token;
    const recoverer = Atomics.compareExchange(i32, H_RECOVER, 0, me);
    if (recoverer !== 0) {
      if (recoverer === me || this.isAlive(recoverer)) return undefined;
      if (Atomics.compareExchange(i32, H_RECOVER, recoverer, me) !== recoverer) return undefined;
    }
    const taken: number[] = [];
    for (let s = 0; s < SHARDS; s++) {
      const word = H_SHARDS + SHARD_WORDS * s + S_LOCK;
      const owner = Atomics.load(i32, word);
      if (owner !== 0 && owner !== me && !this.isAlive(owner) && Atomics.compareExchange(i32, word, owner, me) === owner) taken.push(s);
    }
    const owner = Atomics.load(i32, H_LOCK);
    const global = owner !== 0 && owner !== me && !this.isAlive(owner) && Atomics.compareExchange(i32, H_LOCK, owner, me) === owner;
    for (const s of taken) {
      const base = H_SHARDS + SHARD_WORDS * s;
      this.#rollbackLog(base + S_LOG_HEAD, S_LOG_HEAD_PAIRS, this.#shardLogs + 2 * SHARD_LOG_CAP * s, base + S_LOG_N);
      // An entry the holder was rewriting in place: whole again, so its sequence goes even.
      const rec = i32[base + S_ENTRY]!;
      if (rec !== 0) {
        if ((Atomics.load(i32, (rec >> 2) + R_SEQ) & 1) === 1) Atomics.add(i32, (rec >> 2) + R_SEQ, 1);
        i32[base + S_ENTRY] = 0;
      }
    }
    if (taken.length === SHARDS) {
      // Every shard was a dead thread's: what the wide log or a redo intent holds is its too.
      this.#rollbackLog(0, 0, this.#wideLogBase, H_LOG_N);
      const redo = i32[H_REDO];
      if (redo !== REDO_NONE) {
        // This thread holds no shard of its own then (the dead one held them all): run the
        // intent as an operation holding every shard, which it is.
        const step = this.step;
        this.#enterAll();
        this.#writing = true;
        if (redo === REDO_CLEAR) this.clear();
        else if (redo === REDO_COALESCE) this.coalesce();
        this.#writing = false;
        this.#mode = NO_LOCK;
        this.step = step;
      }
    }
    for (const s of taken) {
      const base = H_SHARDS + SHARD_WORDS * s;
      // A holder that began changing the shard left its sequence odd: even it, so readers go on.
      if ((Atomics.load(i32, base + S_SEQ) & 1) === 1) Atomics.add(i32, base + S_SEQ, 1);
    }
    if (global) this.#release(H_LOCK);
    for (let k = taken.length - 1; k >= 0; k--) this.#release(H_SHARDS + SHARD_WORDS * taken[k]! + S_LOCK);
    Atomics.store(i32, H_RECOVER, 0);
    return taken.length > 0 || global;
  }

  /** Rolls back an unfinished operation of this thread (the caller holds its locks) and finishes an unfinished redo intent. */
  recover(): void {
    this.rollback();
    if (this.#mode !== ALL_SHARDS) return;
    const redo = this.i32[H_REDO];
    if (redo === REDO_CLEAR) this.clear();
    else if (redo === REDO_COALESCE) this.coalesce();
  }

  // -------------------------------------------------------------------------------------------
  // Undo log
  // -------------------------------------------------------------------------------------------

  /** Logs the old value of word `index`, then sets it to `value`. */
  w(index: number, value: number): void {
    const i32 = this.i32;
    // Holding one shard, only what the global lock guards (which made the sequence odd) or the
    // marked entry's rewrite is ever seen by a lock-free reader; the rest (versions, collections)
    // is read under the lock only.
    if (!this.#writing && this.#mode !== ONE_SHARD) this.#beginWriting();
    const n = this.#logN;
    if (n === this.#logCap) throw LOG_FULL;
    const e = n < this.#headN ? this.#headBase + (n << 1) : this.#logBase + ((n - this.#headN) << 1);
    i32[e] = index;
    i32[e + 1] = i32[index]!;
    i32[this.#logNWord] = this.#logN = n + 1;
    if (zoneFault !== undefined) zoneFault(this.step++);
    i32[index] = value;
  }

  /** Logs both words of the float64 at word `index` (even), then sets it. */
  wf64(index: number, value: number): void {
    const i32 = this.i32;
    if (!this.#writing && this.#mode !== ONE_SHARD) this.#beginWriting();
    const n = this.#logN;
    if (n + 2 > this.#logCap) throw LOG_FULL;
    const head = this.#headN;
    const e = n < head ? this.#headBase + (n << 1) : this.#logBase + ((n - head) << 1);
    const e1 = n + 1 < head ? this.#headBase + ((n + 1) << 1) : this.#logBase + ((n + 1 - head) << 1);
    i32[e] = index;
    i32[e + 1] = i32[index]!;
    i32[e1] = index + 1;
    i32[e1 + 1] = i32[index + 1]!;
    i32[this.#logNWord] = this.#logN = n + 2;
    if (zoneFault !== undefined) zoneFault(this.step++);
    this.f64[index >>> 1] = value;
  }

  /** The first change under this lock hold: lock-free readers of the held shards must retry from now on. */
  #beginWriting(): void {
    this.#writing = true;
    if (this.#mode === ONE_SHARD) Atomics.add(this.i32, H_SHARDS + SHARD_WORDS * this.#shard + S_SEQ, 1);
    else for (let s = 0; s < SHARDS; s++) Atomics.add(this.i32, H_SHARDS + SHARD_WORDS * s + S_SEQ, 1);
  }

  /**
   * A get without the lock (eviction none): the value bytes of a live `key`, undefined when it is
   * missing, or null when it cannot tell (a writer was at work, the key expired and must be
   * removed, or what it read did not hold together): then take the lock. Every offset read is
   * checked against the zone, so a read racing a writer sees garbage at worst, never a fault;
   * the key's shard's sequence word then tells it to throw that away.
   */
  readUnlocked(key: string, h: number, clock: { now(): number }): Uint8Array | undefined | null {
    // A writer's change is over in well under a microsecond: waiting it out and reading again
    // costs less than the lock, which readers falling back to it made contended for every writer.
    const seqWord = H_SHARDS + SHARD_WORDS * (h & SHARD_MASK) + S_SEQ;
    for (let attempt = 0; attempt < READ_ATTEMPTS; attempt++) {
      const value = this.#readOnce(key, h, seqWord, clock);
      if (value !== null) return value;
    }
    return null;
  }

  #readOnce(key: string, h: number, seqWord: number, clock: { now(): number }): Uint8Array | undefined | null {
    const i32 = this.i32;
    let seq = Atomics.load(i32, seqWord);
    for (let spin = 0; (seq & 1) !== 0; spin++) {
      if (spin === SEQ_SPINS) return null;
      seq = Atomics.load(i32, seqWord);
    }
    const u8 = this.u8;
    const start = this.#heapStart;
    const end = this.#end;
    const n = key.length;
    let rec = i32[this.#bucketBase + (h & this.#bucketMask)]!;
    for (let steps = 0; rec !== 0; steps++) {
      if (steps === 64 || rec < start || rec >= end - 64 || (rec & 7) !== 0) return null;
      const r = rec >> 2;
      const info = i32[r + R_INFO]!;
      if ((info & 0xffff) === n) {
        const off = rec + 4 * (R_FWD + (info >>> 24));
        if (off + n > end) return null;
        let i = 0;
        while (i < n && u8[off + i] === key.charCodeAt(i)) i++;
        if (i === n) {
          // A list or sorted set: the locked get answers that it is not a value.
          if ((info & 0xff0000) !== TAG_STRING << 16) return null;
          // The entry's own sequence: a set of it in place makes it odd, a set of another key leaves it.
          let entrySeq = Atomics.load(i32, r + R_SEQ);
          for (let spin = 0; (entrySeq & 1) !== 0; spin++) {
            if (spin === SEQ_SPINS) return null;
            entrySeq = Atomics.load(i32, r + R_SEQ);
          }
          const expiresAt = this.f64[(rec >> 3) + (R_EXPIRES >> 1)]!;
          if (expiresAt !== 0 && expiresAt <= clock.now()) return null;
          const vb = i32[r + R_VALUE]! + 4;
          const length = i32[r + R_VLEN]!;
          if (vb < start || length < 0 || vb + length > end) return null;
          const value = copyBytes(u8, vb, length);
          return Atomics.load(i32, r + R_SEQ) === entrySeq && Atomics.load(i32, seqWord) === seq ? value : null;
        }
      }
      rec = i32[r + R_HNEXT]!;
    }
    return Atomics.load(i32, seqWord) === seq ? undefined : null;
  }

  /** Makes the current operation's changes final, and releases the global lock if it took it. */
  commit(): void {
    const freed = this.#freed;
    if (freed.length !== 0) {
      for (let i = 0; i < freed.length; i++) this.#freeNow(freed[i]!);
      freed.length = 0;
    }
    if (this.#logN !== 0) {
      if (zoneFault !== undefined) zoneFault(this.step++);
      this.i32[this.#logNWord] = 0;
      this.#logN = 0;
    }
    if (this.#counted) {
      const base = (H_READ_COUNTERS >> 1) + READ_COUNTER_STRIDE * this.#slot;
      const pending = this.#pending;
      for (let f = F_SETS; f <= F_EVICTED; f++) {
        this.f64[base + f] = this.f64[base + f]! + pending[f]!;
        pending[f] = 0;
      }
      this.#counted = false;
    }
    this.#releaseGlobal();
  }

  /** Undoes the current unfinished operation, newest change first, and releases the global lock if it took it. */
  rollback(): void {
    if (this.#mode !== NO_LOCK) this.#rollbackLog(this.#headBase, this.#headN, this.#logBase, this.#logNWord);
    this.#logN = 0;
    this.#freed.length = 0;
    if (this.#counted) {
      this.#pending.fill(0);
      this.#counted = false;
    }
    this.#releaseGlobal();
  }

  /** Rolls back the log whose first `headN` pairs are at `headBase` and the rest at `base`, its length in word `nWord`. */
  #rollbackLog(headBase: number, headN: number, base: number, nWord: number): void {
    const i32 = this.i32;
    // Each restored word is dropped from the log at once: a rollback cut short repeats harmlessly.
    for (let n = i32[nWord]!; n > 0; n--) {
      const k = n - 1;
      const e = k < headN ? headBase + (k << 1) : base + ((k - headN) << 1);
      i32[i32[e]!] = i32[e + 1]!;
      i32[nWord] = k;
    }
  }

  /**
   * Gives `rec` a new version from the counter of the shard held (shard 0's when every shard
   * is), which is never logged and so never goes back: a version is not reused even after a
   * rollback. Shard s gives c × SHARDS + s, so no two shards give the same one. `fresh`: rec was
   * allocated by this operation, its words need no undo.
   */
  nextVersion(rec: number, fresh: boolean): void {
    const i32 = this.i32;
    const s = this.#shard;
    const base = H_SHARDS + SHARD_WORDS * s;
    const c = i32[base + S_VERSION_HI]! * 4294967296 + (i32[base + S_VERSION_LO]! >>> 0) + 1;
    i32[base + S_VERSION_HI] = Math.floor(c / 4294967296);
    i32[base + S_VERSION_LO] = c >>> 0;
    const version = c * SHARDS + s;
    const lo = version >>> 0;
    const hi = Math.floor(version / 4294967296);
    const r = rec >> 2;
    if (fresh) {
      i32[r + R_VLO] = lo;
      i32[r + R_VHI] = hi;
    } else {
      this.w(r + R_VLO, lo);
      this.w(r + R_VHI, hi);
    }
  }

  // -------------------------------------------------------------------------------------------
  // Allocator
  // -------------------------------------------------------------------------------------------

  /** A block of at least `bytes` (a multiple of 8), or 0 when none is free. */
  alloc(bytes: number, flags: number): number {
    this.global();
    const i32 = this.i32;
    // Every block on list c (and above) holds at least `bytes`; a bigger one is split.
    const c = classUp(bytes);
    const need = bytes;
    let b = i32[H_FREE_HEADS + c]!;
    if (b !== 0) return this.#take(b, c, need, flags);
    // Above 2048 bytes the class below holds blocks of sizes up to ours: a freed block of exactly
    // this size sits there. Look at a few of them (first fit) before taking fresh space.
    if (CLASS_SIZE[c] !== bytes) {
      let link = H_FREE_HEADS + c - 1;
      for (let steps = 0; steps < 16 && (b = i32[link]!) !== 0; steps++) {
        if ((i32[b >> 2]! & ~BLOCK_FLAGS) >= bytes) {
          // Move b to the head of its list, so #take can pop it.
          if (link !== H_FREE_HEADS + c - 1) {
            this.w(link, i32[(b >> 2) + 1]!);
            this.w((b >> 2) + 1, i32[H_FREE_HEADS + c - 1]!);
            this.w(H_FREE_HEADS + c - 1, b);
          }
          return this.#take(b, c - 1, need, flags);
        }
        link = (b >> 2) + 1;
      }
    }
    const top = i32[H_TOP]!;
    if (top + need <= i32[H_END]!) {
      this.w(H_TOP, top + need);
      this.w(top >> 2, need | flags);
      return top;
    }
    for (let k = c + 1; k < CLASS_COUNT; k++) {
      b = i32[H_FREE_HEADS + k]!;
      if (b !== 0) return this.#take(b, k, need, flags);
    }
    return 0;
  }

  /** Pops free block `b` off list `c` and keeps `need` bytes of it (the rest goes back as a free block). */
  #take(b: number, c: number, need: number, flags: number): number {
    const i32 = this.i32;
    const bw = b >> 2;
    const size = i32[bw]! & ~BLOCK_FLAGS;
    this.w(H_FREE_HEADS + c, i32[bw + 1]!);
    this.w(bw + 1, 0);
    this.w(H_FREE_BYTES, i32[H_FREE_BYTES]! - size);
    if (size - need >= MIN_BLOCK) {
      this.w(bw, need | flags);
      this.#push(b + need, size - need);
    } else {
      this.w(bw, size | flags);
    }
    return b;
  }

  #push(b: number, size: number): void {
    const i32 = this.i32;
    const c = classDown(size);
    const bw = b >> 2;
    this.w(bw, size | BLOCK_FREE);
    this.w(bw + 1, i32[H_FREE_HEADS + c]!);
    this.w(H_FREE_HEADS + c, b);
    this.w(H_FREE_BYTES, i32[H_FREE_BYTES]! + size);
  }

  /**
   * Frees block `b` when the operation commits. Until then it stays in use: an allocation in the
   * same operation must not get it back, because it writes a fresh block's words without undo
   * and the rollback would need them as they were.
   */
  free(b: number): void {
    this.global();
    this.#freed.push(b);
  }

  #freeNow(b: number): void {
    const i32 = this.i32;
    const size = i32[b >> 2]! & ~BLOCK_FLAGS;
    if (b + size === i32[H_TOP]) this.w(H_TOP, b);
    else this.#push(b, size);
  }

  /** Bytes of the block area, free or not: the most any one write could ever get. */
  blockSpace(): number {
    return this.i32[H_END]! - this.i32[H_HEAP_START]!;
  }

  /** Bytes an allocation could still find: past `top` plus every free block. */
  freeBytes(): number {
    const i32 = this.i32;
    return i32[H_END]! - i32[H_TOP]! + i32[H_FREE_BYTES]!;
  }

  /**
   * Merges adjacent free blocks and rebuilds the free lists (a redo intent: idempotent, unlogged;
   * run between operations, with the undo log empty).
   */
  coalesce(): void {
    this.global();
    const i32 = this.i32;
    if (!this.#writing) this.#beginWriting();
    Atomics.store(i32, H_REDO, REDO_COALESCE);
    if (zoneFault !== undefined) zoneFault(this.step++);
    for (let c = 0; c < CLASS_COUNT; c++) i32[H_FREE_HEADS + c] = 0;
    let freeBytes = 0;
    let p = i32[H_HEAP_START]!;
    let top = i32[H_TOP]!;
    while (p < top) {
      let size = i32[p >> 2]! & ~BLOCK_FLAGS;
      if ((i32[p >> 2]! & BLOCK_FREE) === 0) {
        p += size;
        continue;
      }
      let q = p + size;
      while (q < top && (i32[q >> 2]! & BLOCK_FREE) !== 0) {
        size += i32[q >> 2]! & ~BLOCK_FLAGS;
        q = p + size;
      }
      if (q >= top) {
        top = p;
        i32[H_TOP] = p;
        break;
      }
      const c = classDown(size);
      i32[p >> 2] = size | BLOCK_FREE;
      i32[(p >> 2) + 1] = i32[H_FREE_HEADS + c]!;
      i32[H_FREE_HEADS + c] = p;
      freeBytes += size;
      p = q;
    }
    i32[H_FREE_BYTES] = freeBytes;
    Atomics.store(i32, H_REDO, REDO_NONE);
  }

  // -------------------------------------------------------------------------------------------
  // Entries
  // -------------------------------------------------------------------------------------------

  get size(): number {
    return this.i32[H_SIZE]!;
  }

  get bytes(): number {
    return this.i32[H_BYTES]!;
  }

  /** The entry of `key` (hash `h`), or 0. */
  find(key: string, h: number): number {
    const i32 = this.i32;
    const u8 = this.u8;
    const n = key.length;
    let rec = i32[this.#bucketBase + (h & this.#bucketMask)]!;
    while (rec !== 0) {
      const r = rec >> 2;
      const info = i32[r + R_INFO]!;
      if ((info & 0xffff) === n) {
        const off = rec + 4 * (R_FWD + (info >>> 24));
        let i = 0;
        while (i < n && u8[off + i] === key.charCodeAt(i)) i++;
        if (i === n) return rec;
      }
      rec = i32[r + R_HNEXT]!;
    }
    return 0;
  }

  expiresAt(rec: number): number {
    return this.f64[(rec >> 3) + (R_EXPIRES >> 1)]!;
  }

  /** The version as JS number (hi × 2^32 + lo); below 2^53. */
  version(rec: number): number {
    const r = rec >> 2;
    return this.i32[r + R_VHI]! * 4294967296 + (this.i32[r + R_VLO]! >>> 0);
  }

  valueLength(rec: number): number {
    return this.i32[(rec >> 2) + R_VLEN]!;
  }

  metadataLength(rec: number): number {
    return this.i32[(rec >> 2) + R_MLEN]!;
  }

  /** A view of the value bytes in the zone: valid only under the lock, until the next write. */
  valueView(rec: number): Uint8Array {
    const r = rec >> 2;
    const vb = this.i32[r + R_VALUE]! + 4;
    return this.u8.subarray(vb, vb + this.i32[r + R_VLEN]!);
  }

  /** A copy of the value bytes (what a caller may keep). */
  copyValue(rec: number): Uint8Array {
    const r = rec >> 2;
    return copyBytes(this.u8, this.i32[r + R_VALUE]! + 4, this.i32[r + R_VLEN]!);
  }

  /** A copy of the metadata bytes, or undefined when the entry has none. */
  copyMetadata(rec: number): Uint8Array | undefined {
    const r = rec >> 2;
    const m = this.i32[r + R_MLEN]!;
    if (m === 0) return undefined;
    const start = this.i32[r + R_VALUE]! + 4 + this.i32[r + R_VLEN]!;
    return this.u8.slice(start, start + m);
  }

  /** The entry's key as a byte string. */
  keyOf(rec: number): string {
    const info = this.i32[(rec >> 2) + R_INFO]!;
    const n = info & 0xffff;
    const off = rec + 4 * (R_FWD + (info >>> 24));
    if (n <= 32) {
      let s = "";
      for (let i = 0; i < n; i++) s += String.fromCharCode(this.u8[off + i]!);
      return s;
    }
    return Buffer.from(this.buffer, off, n).toString("latin1");
  }

  /** hashKey of the entry's key, read from the zone. */
  hashAt(rec: number): number {
    const info = this.i32[(rec >> 2) + R_INFO]!;
    const n = info & 0xffff;
    const off = rec + 4 * (R_FWD + (info >>> 24));
    const u8 = this.u8;
    let h = 0x811c9dc5;
    for (let i = 0; i < n; i++) h = Math.imul(h ^ u8[off + i]!, 0x01000193);
    h ^= h >>> 15;
    h = Math.imul(h, 0x2c1b3c6d);
    h ^= h >>> 12;
    return h >>> 0;
  }

  /** Key bytes of `rec` minus `key`, by bytes (negative: the entry sorts first). */
  compareKey(rec: number, key: string): number {
    const info = this.i32[(rec >> 2) + R_INFO]!;
    const len = info & 0xffff;
    const off = rec + 4 * (R_FWD + (info >>> 24));
    const n = len < key.length ? len : key.length;
    const u8 = this.u8;
    for (let i = 0; i < n; i++) {
      const d = u8[off + i]! - key.charCodeAt(i);
      if (d !== 0) return d;
    }
    return len - key.length;
  }

  /** True when the entry's key starts with `prefix`. */
  keyStartsWith(rec: number, prefix: string): boolean {
    const info = this.i32[(rec >> 2) + R_INFO]!;
    if ((info & 0xffff) < prefix.length) return false;
    const off = rec + 4 * (R_FWD + (info >>> 24));
    for (let i = 0; i < prefix.length; i++) if (this.u8[off + i] !== prefix.charCodeAt(i)) return false;
    return true;
  }

  #compareRecords(a: number, b: number): number {
    const i32 = this.i32;
    const ia = i32[(a >> 2) + R_INFO]!;
    const ib = i32[(b >> 2) + R_INFO]!;
    const la = ia & 0xffff;
    const lb = ib & 0xffff;
    const oa = a + 4 * (R_FWD + (ia >>> 24));
    const ob = b + 4 * (R_FWD + (ib >>> 24));
    const n = la < lb ? la : lb;
    const u8 = this.u8;
    for (let i = 0; i < n; i++) {
      const d = u8[oa + i]! - u8[ob + i]!;
      if (d !== 0) return d;
    }
    return la - lb;
  }

  /** Bytes a new entry for `keyLength` bytes at `level` and its value block take. */
  static entryCost(keyLength: number, level: number, valueLength: number): number {
    return entryBytes(keyLength, level) + valueBlockBytes(valueLength);
  }

  /**
   * A new value block holding `value` then `metadata`, or 0 when there is no room.
   */
  #valueBlock(value: Uint8Array, metadata: Uint8Array | undefined): number {
    const m = metadata === undefined ? 0 : metadata.length;
    const vb = this.alloc(valueBlockBytes(value.length + m), 0);
    if (vb === 0) return 0;
    this.u8.set(value, vb + 4);
    if (metadata !== undefined) this.u8.set(metadata, vb + 4 + value.length);
    return vb;
  }

  /**
   * Stores a new entry (the key must be absent); 0 when the zone has no room for it (the caller
   * rolls back). `level` comes from randomLevel().
   */
  insert(key: string, h: number, level: number, value: Uint8Array, metadata: Uint8Array | undefined, expiresAt: number): number {
    const vb = this.#valueBlock(value, metadata);
    if (vb === 0) return 0;
    return this.#insertEntry(key, h, level, TAG_STRING, vb, value.length, metadata === undefined ? 0 : metadata.length, expiresAt);
  }

  /**
   * Stores a new entry for the collection whose descriptor block `desc` (fresh, its D_KIND set)
   * the caller made; it holds no items yet. 0 when there is no room (the caller rolls back).
   */
  insertCollection(key: string, h: number, level: number, tag: number, desc: number, expiresAt: number): number {
    return this.#insertEntry(key, h, level, tag, desc, 0, 0, expiresAt);
  }

  #insertEntry(key: string, h: number, level: number, tag: number, vb: number, vlen: number, m: number, expiresAt: number): number {
    const rec = this.alloc(entryBytes(key.length, level), BLOCK_ENTRY);
    if (rec === 0) return 0;
    const i32 = this.i32;
    const r = rec >> 2;
    // A fresh block: its words need no undo (alloc logged the two a free block carries).
    i32[r + R_VALUE] = vb;
    i32[r + R_VLEN] = vlen;
    i32[r + R_MLEN] = m;
    i32[r + R_SEQ] = 0;
    i32[r + R_INFO] = key.length | (tag << 16) | (level << 24);
    i32[r + R_HEAPIDX] = -1;
    this.f64[(rec >> 3) + (R_EXPIRES >> 1)] = expiresAt;
    const koff = rec + 4 * (R_FWD + level);
    const u8 = this.u8;
    for (let i = 0; i < key.length; i++) u8[koff + i] = key.charCodeAt(i);
    this.nextVersion(rec, true);
    // Hash chain.
    const bucket = this.#bucketBase + (h & this.#bucketMask);
    i32[r + R_HNEXT] = i32[bucket]!;
    this.w(bucket, rec);
    // LRU: most recent end.
    const first = i32[H_LRU_NEXT]!;
    i32[r + R_PREV] = LRU_SENTINEL;
    i32[r + R_NEXT] = first;
    this.w((first >> 2) + R_PREV, rec);
    this.w(H_LRU_NEXT, rec);
    // Skip list.
    this.#skipInsert(rec, key, level);
    if (expiresAt !== 0) this.#heapPush(rec);
    this.w(H_SIZE, i32[H_SIZE]! + 1);
    this.w(H_BYTES, i32[H_BYTES]! + key.length + vlen + m);
    return rec;
  }

  /** Replaces the value and metadata of `rec`; false when there is no room for the new block. */
  rewrite(rec: number, value: Uint8Array, metadata: Uint8Array | undefined): boolean {
    if (this.#rewriteInPlace(rec, value, metadata)) return true;
    const vb = this.#valueBlock(value, metadata);
    if (vb === 0) return false;
    const i32 = this.i32;
    const r = rec >> 2;
    const m = metadata === undefined ? 0 : metadata.length;
    const old = i32[r + R_VALUE]!;
    const oldBytes = i32[r + R_VLEN]! + i32[r + R_MLEN]!;
    this.w(r + R_VALUE, vb);
    this.w(r + R_VLEN, value.length);
    this.w(r + R_MLEN, m);
    this.w(H_BYTES, i32[H_BYTES]! - oldBytes + value.length + m);
    const info = i32[r + R_INFO]!;
    if ((info & 0xff0000) === TAG_STRING << 16) this.free(old);
    else {
      // A value over a list or sorted set replaces it, as Redis SET does.
      this.w(r + R_INFO, (info & ~0xff0000) | (TAG_STRING << 16));
      this.#discard(old);
    }
    this.nextVersion(rec, false);
    return true;
  }

  /**
   * rewrite over the value block the entry has, when the new value and metadata need a block of
   * exactly its size: each changed word goes through the undo log like any other. A set of a
   * value the size of the old one (a counter, a small record) then leaves the allocator's free
   * lists alone, the lines two writers on two cores took from each other at every set.
   */
  #rewriteInPlace(rec: number, value: Uint8Array, metadata: Uint8Array | undefined): boolean {
    const i32 = this.i32;
    const r = rec >> 2;
    const n = value.length;
    const m = metadata === undefined ? 0 : metadata.length;
    const bytes = n + m;
    const vb = i32[r + R_VALUE]!;
    if (bytes > IN_PLACE_BYTES || (i32[r + R_INFO]! & 0xff0000) !== TAG_STRING << 16) return false;
    if ((i32[vb >> 2]! & ~BLOCK_FLAGS) !== valueBlockBytes(bytes)) return false;
    // The byte total is shared: a value of another length takes the global lock for it (first, so
    // NEED_ALL finds nothing written yet). One of the same length writes its shard's words only.
    const oldBytes = i32[r + R_VLEN]! + i32[r + R_MLEN]!;
    if (oldBytes !== bytes) this.global();
    const word = this.#word;
    const wordBytes = this.#wordBytes;
    const base = (vb >> 2) + 1;
    for (let k = 0, p = 0; p < bytes; k++) {
      const old = i32[base + k]!;
      word[0] = old;
      for (let j = 0; j < 4 && p < bytes; j++, p++) wordBytes[j] = p < n ? value[p]! : metadata![p - n]!;
      if (word[0] !== old) {
        this.#markEntry(rec);
        this.w(base + k, word[0]!);
      }
    }
    if (i32[r + R_VLEN] !== n || i32[r + R_MLEN] !== m) {
      this.#markEntry(rec);
      this.w(r + R_VLEN, n);
      this.w(r + R_MLEN, m);
    }
    if (oldBytes !== bytes) this.w(H_BYTES, i32[H_BYTES]! - oldBytes + bytes);
    this.nextVersion(rec, false);
    return true;
  }

  /** The entry's type tag (TAG_*). */
  tagOf(rec: number): number {
    return (this.i32[(rec >> 2) + R_INFO]! >>> 16) & 0xff;
  }

  /** The block word 9 of `rec` points at: its value block, or its collection's descriptor. */
  valueBlock(rec: number): number {
    return this.i32[(rec >> 2) + R_VALUE]!;
  }

  /** Sets the item bytes of the collection entry `rec` (what stats count), keeping the byte total. */
  setItemBytes(rec: number, bytes: number): void {
    const r = rec >> 2;
    const old = this.i32[r + R_VLEN]!;
    if (old === bytes) return;
    this.global();
    this.w(r + R_VLEN, bytes);
    this.w(H_BYTES, this.i32[H_BYTES]! - old + bytes);
  }

  /** Puts a collection's descriptor (and so its whole chain) on the garbage list. */
  #discard(desc: number): void {
    this.global();
    this.w((desc >> 2) + D_GARBAGE, this.i32[H_GARBAGE]!);
    this.w(H_GARBAGE, desc);
  }

  /** True while some discarded collection still holds blocks. */
  hasGarbage(): boolean {
    return this.i32[H_GARBAGE] !== 0;
  }

  /**
   * Frees up to `limit` blocks of discarded collections, as part of the current operation (the
   * caller commits): chain blocks first, then a sorted set's hash table, then the descriptor.
   * Returns how many it freed.
   */
  reclaim(limit: number): number {
    this.global();
    const i32 = this.i32;
    let n = 0;
    while (n < limit) {
      const desc = i32[H_GARBAGE]!;
      if (desc === 0) break;
      const d = desc >> 2;
      const first = i32[d + D_CHAIN]!;
      if (first !== 0) {
        // Word 1 of a chunk and of a node both link the chain; free() keeps it intact until commit.
        this.w(d + D_CHAIN, i32[(first >> 2) + 1]!);
        this.free(first);
      } else if (i32[d + D_KIND] === TAG_ZSET && i32[d + Z_HASH] !== 0) {
        const table = i32[d + Z_HASH]!;
        this.w(d + Z_HASH, 0);
        this.free(table);
      } else {
        this.w(H_GARBAGE, i32[d + D_GARBAGE]!);
        this.free(desc);
      }
      n++;
    }
    return n;
  }

  /** Removes `rec` from every index and frees its blocks. */
  remove(rec: number): void {
    this.global();
    // The shard's sequence is odd now: the entry's own need not stay so, and its block is about to go.
    if (rec === this.#marked) this.#unmark();
    const i32 = this.i32;
    const r = rec >> 2;
    const info = i32[r + R_INFO]!;
    // Hash chain: find the link that points at rec.
    let link = this.#bucketBase + (this.hashAt(rec) & this.#bucketMask);
    while (i32[link] !== rec) link = (i32[link]! >> 2) + R_HNEXT;
    this.w(link, i32[r + R_HNEXT]!);
    this.#lruUnlink(rec);
    this.#skipRemove(rec, info >>> 24);
    if (i32[r + R_HEAPIDX]! >= 0) this.#heapRemove(rec);
    this.w(H_SIZE, i32[H_SIZE]! - 1);
    this.w(H_BYTES, i32[H_BYTES]! - (info & 0xffff) - i32[r + R_VLEN]! - i32[r + R_MLEN]!);
    if ((info & 0xff0000) === TAG_STRING << 16) this.free(i32[r + R_VALUE]!);
    else this.#discard(i32[r + R_VALUE]!);
    this.free(rec);
  }

  /** Sets the expiry time (0 = never) and keeps the expiry heap in order. */
  setExpiry(rec: number, expiresAt: number): void {
    const old = this.expiresAt(rec);
    if (old === expiresAt) return;
    this.global();
    this.wf64((rec >> 2) + R_EXPIRES, expiresAt);
    if (old === 0) this.#heapPush(rec);
    else if (expiresAt === 0) this.#heapRemove(rec);
    else {
      const i = this.i32[(rec >> 2) + R_HEAPIDX]!;
      if (expiresAt < old) this.#siftUp(i, rec);
      else this.#siftDown(i, rec);
    }
  }

  /** Moves `rec` to the most recent end of the LRU list. */
  touch(rec: number): void {
    this.global();
    const i32 = this.i32;
    if (i32[H_LRU_NEXT] === rec) return;
    this.#lruUnlink(rec);
    const first = i32[H_LRU_NEXT]!;
    const r = rec >> 2;
    this.w(r + R_PREV, LRU_SENTINEL);
    this.w(r + R_NEXT, first);
    this.w((first >> 2) + R_PREV, rec);
    this.w(H_LRU_NEXT, rec);
  }

  /** The least recently used entry, or 0 when the zone is empty. */
  oldest(): number {
    const rec = this.i32[H_LRU_PREV]!;
    return rec === LRU_SENTINEL ? 0 : rec;
  }

  /** The entry used just before `rec` (towards the most recent), or 0. */
  newerThan(rec: number): number {
    const prev = this.i32[(rec >> 2) + R_PREV]!;
    return prev === LRU_SENTINEL ? 0 : prev;
  }

  #lruUnlink(rec: number): void {
    const i32 = this.i32;
    const r = rec >> 2;
    const prev = i32[r + R_PREV]!;
    const next = i32[r + R_NEXT]!;
    this.w((prev >> 2) + R_NEXT, next);
    this.w((next >> 2) + R_PREV, prev);
  }

  // -------------------------------------------------------------------------------------------
  // Skip list (byte order of keys)
  // -------------------------------------------------------------------------------------------

  #skipInsert(rec: number, key: string, level: number): void {
    const i32 = this.i32;
    const update = this.#update;
    let x = SKIP_HEAD;
    const top = i32[H_SKIP_LEVEL]!;
    for (let i = top - 1; i >= 0; i--) {
      let next: number;
      while ((next = i32[(x >> 2) + R_FWD + i]!) !== 0 && this.compareKey(next, key) < 0) x = next;
      update[i] = x;
    }
    if (level > top) {
      for (let i = top; i < level; i++) update[i] = SKIP_HEAD;
      this.w(H_SKIP_LEVEL, level);
    }
    const r = rec >> 2;
    for (let i = 0; i < level; i++) {
      const link = (update[i]! >> 2) + R_FWD + i;
      i32[r + R_FWD + i] = i32[link]!;
      this.w(link, rec);
    }
  }

  #skipRemove(rec: number, level: number): void {
    const i32 = this.i32;
    const update = this.#update;
    let x = SKIP_HEAD;
    for (let i = i32[H_SKIP_LEVEL]! - 1; i >= 0; i--) {
      let next: number;
      while ((next = i32[(x >> 2) + R_FWD + i]!) !== 0 && next !== rec && this.#compareRecords(next, rec) < 0) x = next;
      update[i] = x;
    }
    const r = rec >> 2;
    for (let i = 0; i < level; i++) {
      const link = (update[i]! >> 2) + R_FWD + i;
      if (i32[link] === rec) this.w(link, i32[r + R_FWD + i]!);
    }
  }

  /** The first entry whose key sorts after `key` (or at it, when `inclusive`), or 0. */
  seek(key: string, inclusive: boolean): number {
    const i32 = this.i32;
    let x = SKIP_HEAD;
    for (let i = i32[H_SKIP_LEVEL]! - 1; i >= 0; i--) {
      let next: number;
      while ((next = i32[(x >> 2) + R_FWD + i]!) !== 0) {
        const d = this.compareKey(next, key);
        if (d < 0 || (d === 0 && !inclusive)) x = next;
        else break;
      }
    }
    return i32[(x >> 2) + R_FWD]!;
  }

  /** The entry after `rec` in key order, or 0. */
  nextInOrder(rec: number): number {
    return this.i32[(rec >> 2) + R_FWD]!;
  }

  // -------------------------------------------------------------------------------------------
  // Expiry heap (min-heap of entries by expiresAt)
  // -------------------------------------------------------------------------------------------

  /** The entry that expires first, or 0 when no entry has a TTL. */
  soonest(): number {
    return this.i32[H_EXP_SIZE]! === 0 ? 0 : this.i32[this.#expBase]!;
  }

  /** How many entries expire at or before `t`: a walk of the heap's top, in time of the answer. */
  expiringBy(t: number): number {
    const n = this.i32[H_EXP_SIZE]!;
    const base = this.#expBase;
    let count = 0;
    const pending = n > 0 ? [0] : [];
    while (pending.length > 0) {
      const i = pending.pop()!;
      if (this.expiresAt(this.i32[base + i]!) > t) continue;
      count++;
      if (2 * i + 1 < n) pending.push(2 * i + 1);
      if (2 * i + 2 < n) pending.push(2 * i + 2);
    }
    return count;
  }

  #heapPush(rec: number): void {
    const n = this.i32[H_EXP_SIZE]!;
    // The store keeps size <= max_size <= capacity; past it the heap would run into the log.
    if (n >= this.i32[H_EXP_CAP]!) throw new RangeError("zone expiry heap full");
    this.w(H_EXP_SIZE, n + 1);
    this.#siftUp(n, rec);
  }

  #heapRemove(rec: number): void {
    const i32 = this.i32;
    const i = i32[(rec >> 2) + R_HEAPIDX]!;
    const n = i32[H_EXP_SIZE]! - 1;
    this.w(H_EXP_SIZE, n);
    this.w((rec >> 2) + R_HEAPIDX, -1);
    if (i === n) return;
    const last = i32[this.#expBase + n]!;
    if (i > 0 && this.expiresAt(last) < this.expiresAt(i32[this.#expBase + ((i - 1) >> 1)]!)) this.#siftUp(i, last);
    else this.#siftDown(i, last);
  }

  /** Places `rec` at heap position `i` or above. */
  #siftUp(i: number, rec: number): void {
    const i32 = this.i32;
    const base = this.#expBase;
    const t = this.expiresAt(rec);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const parent = i32[base + p]!;
      if (this.expiresAt(parent) <= t) break;
      this.w(base + i, parent);
      this.w((parent >> 2) + R_HEAPIDX, i);
      i = p;
    }
    this.w(base + i, rec);
    this.w((rec >> 2) + R_HEAPIDX, i);
  }

  /** Places `rec` at heap position `i` or below. */
  #siftDown(i: number, rec: number): void {
    const i32 = this.i32;
    const base = this.#expBase;
    const n = i32[H_EXP_SIZE]!;
    const t = this.expiresAt(rec);
    for (;;) {
      let child = 2 * i + 1;
      if (child >= n) break;
      let c = i32[base + child]!;
      if (child + 1 < n) {
        const right = i32[base + child + 1]!;
        if (this.expiresAt(right) < this.expiresAt(c)) {
          child++;
          c = right;
        }
      }
      if (this.expiresAt(c) >= t) break;
      this.w(base + i, c);
      this.w((c >> 2) + R_HEAPIDX, i);
      i = child;
    }
    this.w(base + i, rec);
    this.w((rec >> 2) + R_HEAPIDX, i);
  }

  // -------------------------------------------------------------------------------------------
  // Counters and clear
  // -------------------------------------------------------------------------------------------

  /** Counts `by` in the write counter `f` (F_SETS ..): added to this thread's slot when the operation commits. */
  count(f: number, by = 1): void {
    this.#pending[f] = this.#pending[f]! + by;
    this.#counted = true;
  }

  /** Counts a hit (0) or a miss (1) in this thread's slot: no lock and no undo needed. */
  countRead(which: 0 | 1): void {
    this.f64[(H_READ_COUNTERS >> 1) + READ_COUNTER_STRIDE * this.#slot + which]!++;
  }

  /** Hits (0) or misses (1) of every thread. */
  readCount(which: 0 | 1): number {
    return this.counter(which);
  }

  /** The counter `f` (F_*) summed over the thread slots. */
  counter(f: number): number {
    let sum = 0;
    for (let s = 0; s < THREAD_SLOTS; s++) sum += this.f64[(H_READ_COUNTERS >> 1) + READ_COUNTER_STRIDE * s + f]!;
    return sum;
  }

  /** Removes every entry (a redo intent: idempotent, so recovery finishes it). Holding every shard. */
  clear(): void {
    const i32 = this.i32;
    if (!this.#writing) this.#beginWriting();
    Atomics.store(i32, H_REDO, REDO_CLEAR);
    if (zoneFault !== undefined) zoneFault(this.step++);
    this.#reset();
    Atomics.store(i32, H_REDO, REDO_NONE);
  }

  #reset(): void {
    const i32 = this.i32;
    i32.fill(0, this.#bucketBase, this.#bucketBase + this.#bucketMask + 1);
    i32.fill(0, H_FREE_HEADS, H_FREE_HEADS + CLASS_COUNT);
    i32.fill(0, H_SKIP_HEAD, H_SKIP_HEAD + SKIP_MAX_LEVEL);
    i32[H_SKIP_LEVEL] = 1;
    i32[H_LRU_PREV] = LRU_SENTINEL;
    i32[H_LRU_NEXT] = LRU_SENTINEL;
    i32[H_EXP_SIZE] = 0;
    i32[H_GARBAGE] = 0;
    i32[H_FREE_BYTES] = 0;
    i32[H_SIZE] = 0;
    i32[H_BYTES] = 0;
    i32[H_TOP] = i32[H_HEAP_START]!;
  }

  // -------------------------------------------------------------------------------------------
  // verify
  // -------------------------------------------------------------------------------------------

  /**
   * Walks the whole zone and returns every inconsistency found (empty: consistent). The caller
   * holds the lock (or no other thread uses the zone).
   */
  verify(): string[] {
    const problems: string[] = [];
    const i32 = this.i32;
    const problem = (text: string): boolean => {
      if (problems.length < 50) problems.push(text);
      return false;
    };
    if (i32[H_MAGIC] !== MAGIC) problem("bad magic");
    if (i32[H_LOG_N] !== 0) problem(`undo log holds ${i32[H_LOG_N]} entries`);
    if (i32[H_REDO] !== REDO_NONE) problem(`redo intent ${i32[H_REDO]} pending`);
    if (i32[H_RECOVER] !== 0) problem(`recovery word held by ${i32[H_RECOVER]}`);
    const lockHolder = i32[H_LOCK]!;
    if (lockHolder !== 0 && lockHolder !== this.token) problem(`global lock held by ${lockHolder}`);
    // Every shard: its log empty, its sequence even (unless this thread is writing), its lock free or this thread's.
    const versionCounters: number[] = [];
    for (let s = 0; s < SHARDS; s++) {
      const base = H_SHARDS + SHARD_WORDS * s;
      if (i32[base + S_LOG_N] !== 0) problem(`shard ${s} undo log holds ${i32[base + S_LOG_N]} entries`);
      if (i32[base + S_ENTRY] !== 0) problem(`shard ${s} marks entry ${i32[base + S_ENTRY]} as rewritten`);
      if (!this.#writing && (i32[base + S_SEQ]! & 1) !== 0) problem(`shard ${s} sequence ${i32[base + S_SEQ]} is odd`);
      const holder = i32[base + S_LOCK]!;
      if (holder !== 0 && holder !== this.token) problem(`shard ${s} lock held by ${holder}`);
      versionCounters.push(i32[base + S_VERSION_HI]! * 4294967296 + (i32[base + S_VERSION_LO]! >>> 0));
    }
    const heapStart = i32[H_HEAP_START]!;
    const top = i32[H_TOP]!;
    const end = i32[H_END]!;
    if (top < heapStart || top > end || top % 8 !== 0) return [...problems, `top ${top} outside ${heapStart}..${end}`];

    // Blocks, walked end to end.
    const blocks = new Map<number, number>(); // offset -> header
    let freeTotal = 0;
    let p = heapStart;
    while (p < top) {
      const header = i32[p >> 2]!;
      const size = header & ~BLOCK_FLAGS;
      if (size < MIN_BLOCK || size % 8 !== 0 || p + size > top) {
        problem(`block at ${p} has size ${size}`);
        break;
      }
      blocks.set(p, header);
      if (header & BLOCK_FREE) freeTotal += size;
      p += size;
    }
    // Free lists.
    let listed = 0;
    let listedBytes = 0;
    for (let c = 0; c < CLASS_COUNT; c++) {
      let b = i32[H_FREE_HEADS + c]!;
      let steps = 0;
      while (b !== 0) {
        const header = blocks.get(b);
        if (header === undefined || (header & BLOCK_FREE) === 0) {
          problem(`free list ${c} holds ${b}, not a free block`);
          break;
        }
        const size = header & ~BLOCK_FLAGS;
        if (classDown(size) !== c) problem(`free block ${b} of ${size} bytes in list ${c}`);
        listed++;
        listedBytes += size;
        if (++steps > blocks.size) {
          problem(`free list ${c} has a cycle`);
          break;
        }
        b = i32[(b >> 2) + 1]!;
      }
    }
    let freeBlocks = 0;
    for (const header of blocks.values()) if (header & BLOCK_FREE) freeBlocks++;
    if (listed !== freeBlocks) problem(`${freeBlocks} free blocks, ${listed} on free lists`);
    if (listedBytes !== freeTotal || i32[H_FREE_BYTES] !== freeTotal) {
      problem(`free bytes: counter ${i32[H_FREE_BYTES]}, listed ${listedBytes}, blocks ${freeTotal}`);
    }

    // Hash chains: every entry once, each in its key's bucket.
    const entries = new Set<number>();
    const keys = new Set<string>();
    /** Blocks in use reached from an entry or the garbage list, besides the entry records. */
    const reached = new Set<number>();
    const items = { bytes: 0 };
    let bytes = 0;
    let withTtl = 0;
    const mask = this.#bucketMask;
    for (let bkt = 0; bkt <= mask; bkt++) {
      let rec = i32[this.#bucketBase + bkt]!;
      while (rec !== 0) {
        const header = blocks.get(rec);
        if (header === undefined || (header & (BLOCK_FREE | BLOCK_ENTRY)) !== BLOCK_ENTRY) {
          problem(`bucket ${bkt} chains to ${rec}, not an entry block`);
          break;
        }
        if (entries.has(rec)) {
          problem(`entry ${rec} chained twice`);
          break;
        }
        entries.add(rec);
        const key = this.keyOf(rec);
        if ((this.hashAt(rec) & mask) !== bkt || hashKey(key) !== this.hashAt(rec)) problem(`entry ${JSON.stringify(key)} in bucket ${bkt}`);
        if (keys.has(key)) problem(`key ${JSON.stringify(key)} stored twice`);
        keys.add(key);
        const r = rec >> 2;
        const info = i32[r + R_INFO]!;
        const level = info >>> 24;
        if (level < 1 || level > SKIP_MAX_LEVEL) problem(`entry ${rec} has level ${level}`);
        if (entryBytes(info & 0xffff, level) > ((header & ~BLOCK_FLAGS) >>> 0)) problem(`entry ${rec} overflows its block`);
        const vb = i32[r + R_VALUE]!;
        const vh = blocks.get(vb);
        const vlen = i32[r + R_VLEN]! + i32[r + R_MLEN]!;
        const tag = (info >>> 16) & 0xff;
        if (vh === undefined || (vh & (BLOCK_FREE | BLOCK_ENTRY)) !== 0) problem(`entry ${rec} points at value block ${vb}, not a value block`);
        else if (reached.has(vb)) problem(`value block ${vb} shared`);
        else if (tag === TAG_STRING) {
          if (valueBlockBytes(vlen) > (vh & ~BLOCK_FLAGS)) problem(`value of ${rec} overflows its block`);
        } else if ((tag === TAG_LIST || tag === TAG_ZSET) && i32[(vb >> 2) + D_KIND] === tag) {
          items.bytes = -1;
          if (tag === TAG_LIST) verifyList(this, vb, blocks, reached, problem, items);
          else verifyZset(this, vb, blocks, reached, problem, items);
          if (items.bytes !== -1 && items.bytes !== vlen) problem(`collection ${JSON.stringify(key)} holds ${items.bytes} item bytes, its entry says ${vlen}`);
          if (i32[r + R_MLEN] !== 0) problem(`collection ${JSON.stringify(key)} has metadata`);
        } else problem(`entry ${rec} has tag ${tag}, its block kind ${i32[(vb >> 2) + D_KIND]}`);
        reached.add(vb);
        // A version comes from one shard's counter: c × SHARDS + shard, c at most what the counter reached.
        if ((i32[r + R_SEQ]! & 1) !== 0) problem(`entry ${JSON.stringify(key)} has an odd sequence ${i32[r + R_SEQ]}`);
        const version = this.version(rec);
        if (version < SHARDS || Math.floor(version / SHARDS) > versionCounters[version % SHARDS]!) problem(`entry ${JSON.stringify(key)} has version ${version}, beyond its shard's counter`);
        bytes += (info & 0xffff) + vlen;
        if (this.expiresAt(rec) !== 0) withTtl++;
        rec = i32[r + R_HNEXT]!;
      }
    }
    if (entries.size !== i32[H_SIZE]) problem(`size ${i32[H_SIZE]}, ${entries.size} entries chained`);
    if (bytes !== i32[H_BYTES]) problem(`bytes ${i32[H_BYTES]}, entries hold ${bytes}`);
    if (entries.size > this.maxSize) problem(`${entries.size} entries over max_size ${this.maxSize}`);
    // Garbage: discarded collections, each with what is left of its chain.
    let discarded = 0;
    for (let desc = i32[H_GARBAGE]!; desc !== 0; desc = i32[(desc >> 2) + D_GARBAGE]!) {
      const header = blocks.get(desc);
      if (header === undefined || (header & (BLOCK_FREE | BLOCK_ENTRY)) !== 0 || reached.has(desc) || ++discarded > blocks.size) {
        problem(`garbage list reaches ${desc}, not a discarded collection`);
        break;
      }
      reached.add(desc);
      const d = desc >> 2;
      for (let b = i32[d + D_CHAIN]!, steps = 0; b !== 0; b = i32[(b >> 2) + 1]!) {
        const bh = blocks.get(b);
        if (bh === undefined || (bh & (BLOCK_FREE | BLOCK_ENTRY)) !== 0 || reached.has(b) || ++steps > blocks.size) {
          problem(`discarded collection ${desc} chains to ${b}, not a block of its own`);
          break;
        }
        reached.add(b);
      }
      if (i32[d + D_KIND] === TAG_ZSET && i32[d + Z_HASH] !== 0) reached.add(i32[d + Z_HASH]!);
    }
    let usedBlocks = 0;
    for (const header of blocks.values()) if ((header & BLOCK_FREE) === 0) usedBlocks++;
    if (usedBlocks !== entries.size + reached.size) {
      problem(`${usedBlocks} blocks in use, ${entries.size} entries and ${reached.size} value, collection and garbage blocks reachable`);
    }

    // LRU, both directions.
    let count = 0;
    let prev = LRU_SENTINEL;
    let rec = i32[H_LRU_NEXT]!;
    while (rec !== LRU_SENTINEL) {
      if (!entries.has(rec)) {
        problem(`LRU list reaches ${rec}, not an entry`);
        break;
      }
      if (i32[(rec >> 2) + R_PREV] !== prev) problem(`LRU prev of ${rec} is ${i32[(rec >> 2) + R_PREV]}, not ${prev}`);
      if (++count > entries.size) {
        problem("LRU list has a cycle");
        break;
      }
      prev = rec;
      rec = i32[(rec >> 2) + R_NEXT]!;
    }
    if (i32[H_LRU_PREV] !== prev) problem(`LRU tail is ${i32[H_LRU_PREV]}, the walk ended at ${prev}`);
    if (count !== entries.size) problem(`LRU list holds ${count} of ${entries.size} entries`);
    count = 0;
    rec = i32[H_LRU_PREV]!;
    while (rec !== LRU_SENTINEL && count <= entries.size) {
      count++;
      rec = i32[(rec >> 2) + R_PREV]!;
    }
    if (count !== entries.size) problem(`LRU list backwards holds ${count} of ${entries.size} entries`);

    // Expiry heap.
    const n = i32[H_EXP_SIZE]!;
    if (n !== withTtl) problem(`expiry heap holds ${n}, ${withTtl} entries have a TTL`);
    for (let i = 0; i < n && i <= i32[H_EXP_CAP]!; i++) {
      const e = i32[this.#expBase + i]!;
      if (!entries.has(e)) {
        problem(`expiry heap slot ${i} holds ${e}, not an entry`);
        continue;
      }
      if (i32[(e >> 2) + R_HEAPIDX] !== i) problem(`entry ${e} says heap slot ${i32[(e >> 2) + R_HEAPIDX]}, sits at ${i}`);
      if (i > 0) {
        const parent = i32[this.#expBase + ((i - 1) >> 1)]!;
        if (entries.has(parent) && this.expiresAt(parent) > this.expiresAt(e)) problem(`expiry heap out of order at ${i}`);
      }
    }
    for (const e of entries) {
      const idx = i32[(e >> 2) + R_HEAPIDX]!;
      if ((this.expiresAt(e) === 0) !== (idx === -1)) problem(`entry ${e}: expiresAt ${this.expiresAt(e)}, heap slot ${idx}`);
    }

    // Skip list: level 0 holds every entry in strictly ascending key order; higher levels are sublists.
    const levelTop = i32[H_SKIP_LEVEL]!;
    for (let level = 0; level < SKIP_MAX_LEVEL; level++) {
      let x = i32[H_SKIP_HEAD + level]!;
      if (level >= levelTop && x !== 0) problem(`skip list level ${level} above the top level ${levelTop} is not empty`);
      let last = 0;
      let seen = 0;
      while (x !== 0) {
        if (!entries.has(x)) {
          problem(`skip list level ${level} reaches ${x}, not an entry`);
          break;
        }
        if ((i32[(x >> 2) + R_INFO]! >>> 24) <= level) problem(`entry ${x} of level ${i32[(x >> 2) + R_INFO]! >>> 24} on level ${level}`);
        if (last !== 0 && this.#compareRecords(last, x) >= 0) problem(`skip list level ${level} out of order at ${x}`);
        if (++seen > entries.size) {
          problem(`skip list level ${level} has a cycle`);
          break;
        }
        last = x;
        x = i32[(x >> 2) + R_FWD + level]!;
      }
      if (level === 0 && seen !== entries.size) problem(`skip list holds ${seen} of ${entries.size} entries`);
    }
    return problems;
  }
}
