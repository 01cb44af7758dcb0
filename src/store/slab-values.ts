/**
 * The values of a memory store's slots, packed into a few large ArrayBuffers ("slabs"): a
 * stored value costs its bytes plus a 6-byte header, where a Uint8Array of its own costs about
 * 200 bytes of V8 objects. Values larger than {@link SlabValuesOptions.largeValueBytes} keep
 * their own array (the overhead is small next to them).
 *
 * ## Slabs are an append-only log
 * `get` returns a view of the slab, and callers may keep it as long as they like (a Lua string
 * decoded from it may itself be a view: see src/codec/lua-msgpack.ts), so bytes under a view
 * must never change. Hence the invariant: **once a view of a record's bytes has been handed
 * out, the bytes are never written again.** A write appends a new record at the top of the
 * open slab and the old one just becomes dead, with one exception that the invariant allows: a
 * write of the same length over a record no view was ever made of (its header says so) copies
 * in place, which makes a run of writes without reads (counters, `incr` through {@link peek})
 * cost no slab space. Space is never reused otherwise: a slab whose live bytes fall to half of
 * what it holds is cleaned, that is its live records are copied to the top of the open slab and
 * the slab is dropped (the log-structured memory of RAMCloud). A dropped slab is freed by the
 * garbage collector once no view of it is left; a view held for long therefore keeps its whole
 * slab (at most {@link SlabValuesOptions.maxSlabBytes}) in memory.
 *
 * Cleaning bounds the dead space to about half of the slab bytes and costs, amortized, one byte
 * copied per byte freed; one cleaning copies at most half a slab.
 *
 * ## Layout
 * A record is `owner: u32 LE, length: u16 LE, bytes`; `owner` is the slot, or {@link DEAD} once
 * the record is freed, and the length's top bit is {@link EXPOSED} (headers are outside every
 * view, so they may change). A slot's address packs the slab id and the offset of its bytes:
 * `id * 2^16 + offset`.
 */

/** Options, for tests; the defaults suit a store. */
export interface SlabValuesOptions {
  /** The first slab's size; each new slab doubles it up to maxSlabBytes. @default 8192 */
  minSlabBytes?: number;
  /** The largest slab (at most 2^16). @default 65536 */
  maxSlabBytes?: number;
  /** Values larger than this keep their own Uint8Array (at most 32767). @default 4096 */
  largeValueBytes?: number;
}

/**
 * Slabs are at most 64 KiB: a view held for long pins at most that much, one cleaning copies
 * at most 32 KiB, and the open slab's unused tail is small next to the store.
 */
const OFFSET_BITS = 16;
const OFFSET_MASK = (1 << OFFSET_BITS) - 1;
/** Slab ids are recycled, so this bounds the slab bytes alive at once (4 GiB), not over time. */
const MAX_SLABS = 2 ** (32 - OFFSET_BITS);
const HEADER_BYTES = 6;
/** Set in a header's last byte once a view of the record's bytes has been handed out. */
const EXPOSED = 0x80;
/** The length's high byte, without the EXPOSED bit (so a slab value is at most 32767 bytes). */
const LENGTH_HIGH_MASK = 0x7f;
/** The owner of a freed record. */
const DEAD = 0xffff_ffff;
/** Address of a slot without a value. Offset 0 of a slab is a header, never a value. */
const NO_VALUE = 0;
/** Address of a slot whose value is a Uint8Array of its own, in #large. */
const LARGE = 1;
/** Entries of the cache of views handed out (a power of 2). */
const VIEW_CACHE_SLOTS = 256;

export class SlabValues {
  readonly #minSlabBytes: number;
  readonly #maxSlabBytes: number;
  readonly #largeValueBytes: number;
  /** Address of each slot's value (see the layout above). */
  #addrs = new Uint32Array(64);
  /** Values too large for a slab, by slot. */
  readonly #large = new Map<number, Uint8Array>();
  /** Slabs by id; undefined for a dropped one. */
  readonly #slabs: (Uint8Array | undefined)[] = [];
  /** Their buffers (the `buffer` getter costs ~30 ns, more than the view `get` makes). */
  readonly #buffers: (ArrayBuffer | undefined)[] = [];
  /** Bytes written to each slab (its top). */
  readonly #used: number[] = [];
  /** Bytes of live records (headers included) in each slab. */
  readonly #live: number[] = [];
  /** Ids of dropped slabs, for reuse. */
  readonly #freeIds: number[] = [];
  /** The slab new records go to; -1 before the first. */
  #open = -1;
  #nextSlabBytes: number;
  /**
   * The views `get` handed out last, direct-mapped by slot, with their addresses: a key read
   * again and again (the common case) costs no new view (~25 ns). Emptied whenever a slab is
   * dropped, since its id, hence its addresses, will be reused.
   */
  readonly #views: (Uint8Array | undefined)[] = new Array<Uint8Array | undefined>(VIEW_CACHE_SLOTS).fill(undefined);
  readonly #viewAddrs = new Uint32Array(VIEW_CACHE_SLOTS);
  /** Slabs waiting to be cleaned, each at most once: #queued[id] says whether it is there. */
  readonly #cleanQueue: number[] = [];
  /** Like #used and #live, one entry for each slab id ever used (a packed array: a hole would make call sites polymorphic). */
  readonly #queued: boolean[] = [];
  #cleaning = false;

  constructor(options: SlabValuesOptions = {}) {
    this.#minSlabBytes = options.minSlabBytes ?? 8192;
    this.#maxSlabBytes = options.maxSlabBytes ?? 1 << OFFSET_BITS;
    this.#largeValueBytes = options.largeValueBytes ?? 4096;
    if (!(this.#maxSlabBytes <= 1 << OFFSET_BITS)) throw new RangeError(`maxSlabBytes must be at most ${1 << OFFSET_BITS}`);
    if (!(this.#largeValueBytes <= 0x7fff)) throw new RangeError("largeValueBytes must be at most 32767");
    if (!(this.#minSlabBytes > this.#largeValueBytes + HEADER_BYTES && this.#minSlabBytes <= this.#maxSlabBytes)) {
      throw new RangeError("minSlabBytes must hold the largest slab value and be at most maxSlabBytes");
    }
    this.#nextSlabBytes = this.#minSlabBytes;
  }

  /**
   * The value of `slot`, which must have one: a view of its slab, or its own array for a large
   * value. The caller may keep it: its bytes never change (see the invariant above).
   */
  get(slot: number): Uint8Array {
    const addr = this.#addrs[slot]!;
    if (addr === LARGE) return this.#large.get(slot)!;
    const cacheSlot = slot & (VIEW_CACHE_SLOTS - 1);
    if (this.#viewAddrs[cacheSlot] === addr) return this.#views[cacheSlot]!;
    const id = addr >>> OFFSET_BITS;
    const slab = this.#slabs[id]!;
    const offset = addr & OFFSET_MASK;
    const high = slab[offset - 1]!;
    slab[offset - 1] = high | EXPOSED;
    const view = new Uint8Array(this.#buffers[id]!, offset, slab[offset - 2]! | ((high & LENGTH_HIGH_MASK) << 8));
    this.#views[cacheSlot] = view;
    this.#viewAddrs[cacheSlot] = addr;
    return view;
  }

  /**
   * The value of `slot`, which must have one, for a caller that drops the view before the slot
   * is written again (it may be overwritten in place, unlike what {@link get} returns).
   */
  peek(slot: number): Uint8Array {
    const addr = this.#addrs[slot]!;
    if (addr === LARGE) return this.#large.get(slot)!;
    const id = addr >>> OFFSET_BITS;
    const slab = this.#slabs[id]!;
    const offset = addr & OFFSET_MASK;
    return new Uint8Array(this.#buffers[id]!, offset, slab[offset - 2]! | ((slab[offset - 1]! & LENGTH_HIGH_MASK) << 8));
  }

  /** The length of `slot`'s value; 0 when it has none. */
  length(slot: number): number {
    const addr = slot < this.#addrs.length ? this.#addrs[slot]! : NO_VALUE;
    if (addr === NO_VALUE) return 0;
    if (addr === LARGE) return this.#large.get(slot)!.length;
    const slab = this.#slabs[addr >>> OFFSET_BITS]!;
    const offset = addr & OFFSET_MASK;
    return slab[offset - 2]! | ((slab[offset - 1]! & LENGTH_HIGH_MASK) << 8);
  }

  /**
   * Makes `bytes` the value of `slot`, replacing the one it had, and returns the length of that
   * one (0 when none). Small values are copied (the caller's array is not kept); a large one is
   * kept as it is when it is the whole of its buffer (it must then never be mutated), and
   * copied otherwise (see {@link ownedBytes}).
   */
  set(slot: number, bytes: Uint8Array): number {
    const addr = slot < this.#addrs.length ? this.#addrs[slot]! : NO_VALUE;
    if (addr > LARGE) {
      // Kept small so that it inlines: the common overwrite of a slab value by one as long.
      const slab = this.#slabs[addr >>> OFFSET_BITS]!;
      const offset = addr & OFFSET_MASK;
      const high = slab[offset - 1]!;
      const length = slab[offset - 2]! | (high << 8);
      // No view of these bytes was ever handed out: they may change.
      if (high < EXPOSED && length === bytes.length) {
        copyBytes(bytes, 0, length, slab, offset);
        return length;
      }
    }
    return this.#replace(slot, addr, bytes);
  }

  /** `set` when the value cannot be overwritten in place. */
  #replace(slot: number, old: number, bytes: Uint8Array): number {
    if (slot >= this.#addrs.length) this.#grow(slot);
    const length = bytes.length;
    let oldLength = 0;
    if (old === LARGE) {
      oldLength = this.#large.get(slot)!.length;
      this.#large.delete(slot);
    } else if (old !== NO_VALUE) {
      const id = old >>> OFFSET_BITS;
      const slab = this.#slabs[id]!;
      const offset = old & OFFSET_MASK;
      oldLength = slab[offset - 2]! | ((slab[offset - 1]! & LENGTH_HIGH_MASK) << 8);
      this.#kill(id, slab, offset - HEADER_BYTES, oldLength);
    }
    const addr = length > this.#largeValueBytes ? -1 : this.#append(slot, bytes, 0, length);
    if (addr < 0) {
      this.#large.set(slot, ownedBytes(bytes));
      this.#addrs[slot] = LARGE;
    } else {
      this.#addrs[slot] = addr;
    }
    if (this.#cleanQueue.length !== 0) this.#drain();
    return oldLength;
  }

  /** Removes `slot`'s value, if any. */
  delete(slot: number): void {
    if (slot >= this.#addrs.length) return;
    const old = this.#addrs[slot]!;
    this.#addrs[slot] = NO_VALUE;
    if (old === LARGE) {
      this.#large.delete(slot);
    } else if (old !== NO_VALUE) {
      const id = old >>> OFFSET_BITS;
      const slab = this.#slabs[id]!;
      const offset = old & OFFSET_MASK;
      this.#kill(id, slab, offset - HEADER_BYTES, slab[offset - 2]! | ((slab[offset - 1]! & LENGTH_HIGH_MASK) << 8));
      if (this.#cleanQueue.length !== 0) this.#drain();
    }
  }

  /** Removes every value and drops every slab. */
  clear(): void {
    this.#views.fill(undefined);
    this.#viewAddrs.fill(NO_VALUE);
    this.#addrs = new Uint32Array(64);
    this.#large.clear();
    this.#slabs.length = 0;
    this.#buffers.length = 0;
    this.#used.length = 0;
    this.#live.length = 0;
    this.#freeIds.length = 0;
    this.#cleanQueue.length = 0;
    this.#queued.length = 0;
    this.#open = -1;
    this.#nextSlabBytes = this.#minSlabBytes;
  }

  /** Slabs held, their total size and their live bytes (headers included); for tests and stats. */
  get slabStats(): { slabs: number; slabBytes: number; liveBytes: number; largeValues: number } {
    let slabs = 0;
    let slabBytes = 0;
    let liveBytes = 0;
    for (let id = 0; id < this.#slabs.length; id++) {
      const slab = this.#slabs[id];
      if (slab === undefined) continue;
      slabs++;
      slabBytes += slab.length;
      liveBytes += this.#live[id]!;
    }
    return { slabs, slabBytes, liveBytes, largeValues: this.#large.size };
  }

  #grow(slot: number): void {
    let capacity = this.#addrs.length;
    while (capacity <= slot) capacity *= 2;
    const addrs = new Uint32Array(capacity);
    addrs.set(this.#addrs);
    this.#addrs = addrs;
  }

  /** Marks the record at `header` of slab `id` dead. */
  #kill(id: number, slab: Uint8Array, header: number, length: number): void {
    slab[header] = slab[header + 1] = slab[header + 2] = slab[header + 3] = 0xff; // DEAD
    this.#live[id]! -= HEADER_BYTES + length;
    if (id !== this.#open) this.#checkClosed(id);
  }

  /**
   * A slab other than the open one changed: dropped when empty, queued for cleaning when at
   * most half of it is live.
   */
  #checkClosed(id: number): void {
    const live = this.#live[id]!;
    if (live === 0) {
      if (!this.#queued[id]!) this.#drop(id);
    } else if (live * 2 <= this.#used[id]! && !this.#queued[id]!) {
      this.#queued[id] = true;
      this.#cleanQueue.push(id);
    }
  }

  /** Cleans the queued slabs; never re-entered (cleaning only appends). */
  #drain(): void {
    if (this.#cleaning) return;
    this.#cleaning = true;
    try {
      let id: number | undefined;
      while ((id = this.#cleanQueue.pop()) !== undefined) {
        this.#queued[id] = false;
        this.#clean(id);
      }
    } finally {
      this.#cleaning = false;
    }
  }

  /**
   * Copies the live records of slab `id` to the open slab, then drops it. Each copied record is
   * marked dead at once, so a cleaning cut short (no slab id left) leaves a consistent slab.
   */
  #clean(id: number): void {
    const slab = this.#slabs[id]!;
    const used = this.#used[id]!;
    let p = 0;
    while (p < used) {
      const owner = (slab[p]! | (slab[p + 1]! << 8) | (slab[p + 2]! << 16) | (slab[p + 3]! << 24)) >>> 0;
      const length = slab[p + 4]! | ((slab[p + 5]! & LENGTH_HIGH_MASK) << 8);
      const start = p + HEADER_BYTES;
      if (owner !== DEAD) {
        const addr = this.#append(owner, slab, start, start + length);
        if (addr < 0) return;
        this.#addrs[owner] = addr;
        slab[p] = slab[p + 1] = slab[p + 2] = slab[p + 3] = 0xff;
        this.#live[id]! -= HEADER_BYTES + length;
      }
      p = start + length;
    }
    this.#drop(id);
  }

  #drop(id: number): void {
    this.#views.fill(undefined);
    this.#viewAddrs.fill(NO_VALUE);
    this.#slabs[id] = undefined;
    this.#buffers[id] = undefined;
    this.#used[id] = 0;
    this.#live[id] = 0;
    this.#freeIds.push(id);
  }

  /**
   * Writes a record for `owner` with `source[start..end)` at the top of the open slab (opening
   * a new slab when it is full) and returns the address of its bytes; -1 when no slab id is left.
   */
  #append(owner: number, source: Uint8Array, start: number, end: number): number {
    const length = end - start;
    let id = this.#open;
    // Strictly below the slab's end: the offset must stay below 2^OFFSET_BITS even for an empty value.
    if (id < 0 || this.#used[id]! + HEADER_BYTES + length >= this.#slabs[id]!.length) {
      id = this.#openSlab();
      if (id < 0) return -1;
    }
    const slab = this.#slabs[id]!;
    const header = this.#used[id]!;
    const offset = header + HEADER_BYTES;
    slab[header] = owner & 0xff;
    slab[header + 1] = (owner >>> 8) & 0xff;
    slab[header + 2] = (owner >>> 16) & 0xff;
    slab[header + 3] = owner >>> 24;
    slab[header + 4] = length & 0xff;
    slab[header + 5] = length >>> 8;
    copyBytes(source, start, end, slab, offset);
    this.#used[id] = offset + length;
    this.#live[id]! += HEADER_BYTES + length;
    return id * (1 << OFFSET_BITS) + offset;
  }

  /** Opens a new slab (closing the open one) and returns its id; -1 when no slab id is left. */
  #openSlab(): number {
    let id = this.#freeIds.pop();
    if (id === undefined) {
      if (this.#slabs.length >= MAX_SLABS) return -1;
      id = this.#slabs.length;
    }
    const size = this.#nextSlabBytes;
    this.#nextSlabBytes = Math.min(size * 2, this.#maxSlabBytes);
    const buffer = new ArrayBuffer(size);
    this.#slabs[id] = new Uint8Array(buffer);
    this.#buffers[id] = buffer;
    this.#used[id] = 0;
    this.#live[id] = 0;
    this.#queued[id] = false;
    const closed = this.#open;
    this.#open = id;
    if (closed >= 0) this.#checkClosed(closed);
    return id;
  }
}

/**
 * `bytes` when it is the whole of an ordinary ArrayBuffer, else a copy sized to itself. A view
 * into a larger buffer (a value decoded from a whole message, a Buffer from Node's pool) would
 * keep that buffer alive for as long as the store keeps the value, while the store counts only
 * the view's bytes: a few stored views could hold gigabytes that `max_size x max_value_size`
 * no longer bounds. A SharedArrayBuffer is never kept (another thread may write it).
 */
export function ownedBytes(bytes: Uint8Array): Uint8Array {
  const buffer = bytes.buffer;
  if (bytes.byteOffset === 0 && bytes.byteLength === buffer.byteLength && buffer instanceof ArrayBuffer && !isResizable(buffer)) {
    return bytes;
  }
  // Not bytes.slice(): Buffer#slice makes a view, not a copy.
  const copy = new Uint8Array(bytes.length);
  copy.set(bytes);
  return copy;
}

/** A resizable ArrayBuffer may grow after the check (Node 20 has `resizable`; older types do not). */
function isResizable(buffer: ArrayBuffer): boolean {
  return (buffer as ArrayBuffer & { resizable?: boolean }).resizable === true;
}

/** Copies `source[start..end)` to `target` at `offset`. */
function copyBytes(source: Uint8Array, start: number, end: number, target: Uint8Array, offset: number): void {
  // A loop beats TypedArray#set (a builtin call) for the usual few dozen bytes.
  if (end - start <= 64) for (let i = start; i < end; i++) target[offset++] = source[i]!;
  else target.set(start === 0 && end === source.length ? source : source.subarray(start, end), offset);
}
