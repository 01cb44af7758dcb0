/**
 * The worker side of the channel: {@link ChannelStore}, a Store whose every call is a
 * synchronous request to the store thread (see channel.ts), for the stores a Lua worker does
 * not open itself. The worker's own gateway has checked the policy, taken the handle and
 * written the audit record before a call gets here.
 */
import type { MessagePort } from "node:worker_threads";
import { ErrorKind, isErrorKind, StoreError } from "../../errors.js";
import type { StoreConfig } from "../../registry/types.js";
import type {
  AtomicOutcome,
  AtomicStore,
  AtomicWrite,
  CollectionStore,
  EntryRecord,
  ListEnd,
  ListOptions,
  ListPage,
  LuaNumber,
  PutOptions,
  PutOutcome,
  StaleValue,
  Store,
  StoreInfo,
  StoreStats,
  ZsetEntry,
  ZsetRange,
} from "../../store/store.js";
import { Bell, ChannelFullError, HEADER_BYTES, MemSlot, Op, PUT_OUTCOMES, Slot, Status, WireReader, WireWriter } from "../threads/channel.js";
import { AdaptiveSpin } from "../threads/adaptive-spin.js";

/**
 * How long a worker spins for an answer before it sleeps, when the store thread was awake (an
 * awake store thread answers within a few microseconds). When it was asleep, its wake-up takes
 * tens of microseconds, and the worker sleeps at once to leave it the core; the store thread
 * then spins long enough for the worker it wakes to come back (see store-thread.ts).
 */
const SPIN_MIN_MS = 0.002;
const SPIN_MAX_MS = 0.02;

/** One worker's end of its channel: writes requests, waits for answers. */
export class ChannelClient {
  readonly #i32: Int32Array;
  readonly #bell: Int32Array;
  /** Carries messages too large for the shared message area (see channel.ts). */
  readonly #port: MessagePort;
  readonly w: WireWriter;
  readonly r: WireReader;
  /** The worker's memory figures, read by the host's watchdog. */
  readonly memory: Float64Array;
  readonly #spin = new AdaptiveSpin(SPIN_MIN_MS, SPIN_MAX_MS);
  #seq = 0;
  /** Request and answer bytes moved through the channel so far (the worker's memory probe reads it). */
  movedBytes = 0;

  constructor(sab: SharedArrayBuffer, bell: SharedArrayBuffer, port: MessagePort) {
    this.#i32 = new Int32Array(sab, 0, 8);
    this.#bell = new Int32Array(bell);
    this.#port = port;
    this.w = new WireWriter(sab);
    this.r = new WireReader(sab);
    this.memory = new Float64Array(sab, 32, 4);
    this.#seq = Atomics.load(this.#i32, Slot.REQ_SEQ);
    if (HEADER_BYTES !== 64) throw new Error("channel header layout changed");
  }

  /** Publishes the request written in `w`, waits, and returns the answer status. */
  call(): number {
    const i32 = this.#i32;
    const bell = this.#bell;
    const w = this.w;
    i32[Slot.REQ_LEN] = w.pos;
    // A moved request is on the port before it is published.
    const moved = w.moved;
    if (moved) w.sendMoved(this.#port);
    i32[Slot.REQ_MOVED] = moved ? 1 : 0;
    const seq = (this.#seq = (this.#seq + 1) | 0);
    Atomics.store(i32, Slot.REQ_SEQ, seq);
    let serverAwake = true;
    if (Atomics.load(bell, Bell.SLEEPING) !== 0) {
      serverAwake = false;
      Atomics.add(bell, Bell.RING, 1);
      Atomics.notify(bell, Bell.RING);
    }
    if (Atomics.load(i32, Slot.RES_SEQ) !== seq) this.#wait(seq, serverAwake);
    this.movedBytes += w.pos + i32[Slot.RES_LEN]!;
    return i32[Slot.RES_MOVED] === 1 ? this.r.beginMoved(this.#port) : this.r.begin();
  }

  #wait(seq: number, spin: boolean): void {
    const i32 = this.#i32;
    if (spin) {
      const until = performance.now() + this.#spin.budget();
      for (let i = 1; ; i++) {
        if (Atomics.load(i32, Slot.RES_SEQ) === seq) return this.#spin.hit();
        if ((i & 15) === 0 && performance.now() > until) break;
      }
      this.#spin.miss();
    }
    Atomics.store(i32, Slot.WAITING, 1);
    for (;;) {
      const v = Atomics.load(i32, Slot.RES_SEQ);
      if (v === seq) break;
      Atomics.wait(i32, Slot.RES_SEQ, v);
    }
    Atomics.store(i32, Slot.WAITING, 0);
  }

  /** Publishes the worker's memory (bytes now, run peak) for the watchdog. */
  publishMemory(now: number, peak: number): void {
    this.memory[MemSlot.NOW] = now;
    this.memory[MemSlot.PEAK] = peak;
  }
}

function readFailure(r: WireReader): StoreError {
  const kind = r.text();
  const message = r.text();
  const retryable = r.u8() === 1;
  return new StoreError(isErrorKind(kind) ? kind : ErrorKind.INTERNAL, message, { retryable });
}

/** A registry entry's store as a worker reaches it over its channel: every call waits for the store thread's answer. */
export class ChannelStore implements Store, CollectionStore, AtomicStore {
  readonly id: string;
  readonly kind: StoreConfig["kind"];
  readonly config: StoreConfig;
  readonly #c: ChannelClient;
  /** The store's index in the registry (the store thread's address of it). */
  readonly #index: number;

  constructor(client: ChannelClient, config: StoreConfig, index: number) {
    this.#c = client;
    this.config = config;
    this.id = config.id;
    this.kind = config.kind;
    this.#index = index;
  }

  /** Sends the request in the writer; a failure is thrown as the StoreError the store threw. */
  #send(): WireReader {
    const status = this.#c.call();
    const r = this.#c.r;
    if (status === Status.OK) return r;
    if (status === Status.FAIL) throw readFailure(r);
    throw new Error(`store thread could not serve the request: ${r.text()}`);
  }

  #begin(op: Op): WireWriter {
    const w = this.#c.w;
    w.begin(op);
    w.u32(this.#index);
    return w;
  }

  #key(op: Op, key: string): WireWriter {
    const w = this.#begin(op);
    w.byteString(key);
    return w;
  }

  #share(share: string | undefined): void {
    const w = this.#c.w;
    if (share === undefined) w.u8(0);
    else {
      w.u8(1);
      w.byteString(share);
    }
  }

  /** A request whose arguments or answer are V8-serialized. */
  #structured(op: Op, args: unknown[]): unknown {
    const w = this.#begin(op);
    try {
      w.value(args);
    } catch (err) {
      if (err instanceof ChannelFullError) throw new StoreError(ErrorKind.INVALID, err.message);
      throw err;
    }
    return this.#send().value();
  }

  get(key: string): Uint8Array | undefined {
    this.#key(Op.GET, key);
    const r = this.#send();
    return r.u8() === 1 ? r.bytes() : undefined;
  }

  getStale(key: string): Uint8Array | StaleValue | undefined {
    // Without stale_for it is get, opcode and all; stale reads take Op.CALL.
    if (this.config.staleForMs === undefined) return this.get(key);
    return this.#call("getStale", key) as Uint8Array | StaleValue | undefined;
  }

  set(key: string, value: Uint8Array, ttlMs: number, share?: string): void {
    const w = this.#key(Op.SET, key);
    w.f64(ttlMs);
    w.bytes(value);
    this.#share(share);
    this.#send();
  }

  has(key: string): boolean {
    this.#key(Op.HAS, key);
    return this.#send().u8() === 1;
  }

  delete(key: string): boolean {
    this.#key(Op.DELETE, key);
    return this.#send().u8() === 1;
  }

  #conditional(op: Op, key: string, value: Uint8Array, ttlMs: number, share: string | undefined): boolean {
    const w = this.#key(op, key);
    w.f64(ttlMs);
    w.bytes(value);
    this.#share(share);
    return this.#send().u8() === 1;
  }

  add(key: string, value: Uint8Array, ttlMs: number, share?: string): boolean {
    return this.#conditional(Op.ADD, key, value, ttlMs, share);
  }

  replace(key: string, value: Uint8Array, ttlMs: number, share?: string): boolean {
    return this.#conditional(Op.REPLACE, key, value, ttlMs, share);
  }

  incr(key: string, by: LuaNumber, init: LuaNumber, initTtlMs: number, share?: string): Uint8Array {
    const w = this.#key(Op.INCR, key);
    w.f64(by.value);
    w.u8(by.float ? 1 : 0);
    w.f64(init.value);
    w.u8(init.float ? 1 : 0);
    w.f64(initTtlMs);
    this.#share(share);
    return this.#send().bytes();
  }

  ttl(key: string): number | undefined {
    this.#key(Op.TTL, key);
    const r = this.#send();
    return r.u8() === 1 ? r.f64() : undefined;
  }

  expire(key: string, ttlMs: number): boolean {
    this.#key(Op.EXPIRE, key).f64(ttlMs);
    return this.#send().u8() === 1;
  }

  // get_many, set_many and put carry their keys and values as bytes, not V8-serialized: each
  // value is then read as a copy sized to itself, never a view into the whole message (which a
  // store would keep alive), and the message exists once in the channel, not twice.

  getMany(keys: readonly string[]): (Uint8Array | undefined)[] {
    const w = this.#begin(Op.GET_MANY);
    w.u32(keys.length);
    for (const key of keys) w.byteString(key);
    const r = this.#send();
    const values = new Array<Uint8Array | undefined>(r.u32());
    for (let i = 0; i < values.length; i++) values[i] = r.u8() === 1 ? r.bytes() : undefined;
    return values;
  }

  setMany(entries: readonly (readonly [string, Uint8Array])[], ttlMs: number, share?: string): void {
    const w = this.#begin(Op.SET_MANY);
    w.f64(ttlMs);
    this.#share(share);
    w.u32(entries.length);
    for (const [key, value] of entries) {
      w.byteString(key);
      w.bytes(value);
    }
    this.#send();
  }

  put(key: string, value: Uint8Array, options: PutOptions): PutOutcome {
    const { metadata, ifVersion } = options;
    const w = this.#key(Op.PUT, key);
    w.bytes(value);
    w.f64(options.ttlMs);
    w.u8(options.onlyIfAbsent ? 1 : 0);
    w.u8(ifVersion === undefined ? 0 : 1);
    if (ifVersion !== undefined) w.byteString(ifVersion);
    w.u8(metadata === undefined ? 0 : 1);
    if (metadata !== undefined) w.bytes(metadata);
    this.#share(options.share);
    return PUT_OUTCOMES[this.#send().u8()]!;
  }

  list(options: ListOptions): ListPage {
    return this.#structured(Op.LIST, [options]) as ListPage;
  }

  entry(key: string): EntryRecord | undefined {
    return this.#structured(Op.ENTRY, [key]) as EntryRecord | undefined;
  }

  info(share?: string): StoreInfo {
    return this.#structured(Op.INFO, [share]) as StoreInfo;
  }

  /** A Store method without an opcode of its own (see Op.CALL). */
  #call(method: string, ...args: unknown[]): unknown {
    return this.#structured(Op.CALL, [method, ...args]);
  }

  size(): number {
    return this.#call("size") as number;
  }

  clear(): void {
    this.#call("clear");
  }

  flush(): number {
    return this.#call("flush") as number;
  }

  deleteMany(keys: readonly string[]): number {
    return this.#call("deleteMany", keys) as number;
  }

  sweep(): number {
    return this.#call("sweep") as number;
  }

  stats(): StoreStats {
    return this.#call("stats") as StoreStats;
  }

  // Lists and sorted sets go over Op.CALL (a store without them answers Invalid there).

  listPush(key: string, end: ListEnd, values: readonly Uint8Array[], share?: string): number {
    return this.#call("listPush", key, end, values, share) as number;
  }
  listPop(key: string, end: ListEnd, count: number): Uint8Array[] {
    return this.#call("listPop", key, end, count) as Uint8Array[];
  }
  listLength(key: string): number {
    return this.#call("listLength", key) as number;
  }
  listRange(key: string, start: number, stop: number): Uint8Array[] {
    return this.#call("listRange", key, start, stop) as Uint8Array[];
  }
  listTrim(key: string, start: number, stop: number): number {
    return this.#call("listTrim", key, start, stop) as number;
  }
  zsetAdd(key: string, entries: readonly ZsetEntry[], share?: string): number {
    return this.#call("zsetAdd", key, entries, share) as number;
  }
  zsetIncr(key: string, member: string, by: number, share?: string): number {
    return this.#call("zsetIncr", key, member, by, share) as number;
  }
  zsetScore(key: string, member: string): number | undefined {
    return this.#call("zsetScore", key, member) as number | undefined;
  }
  zsetRank(key: string, member: string, reverse: boolean): number | undefined {
    return this.#call("zsetRank", key, member, reverse) as number | undefined;
  }
  zsetRange(key: string, range: ZsetRange): ZsetEntry[] {
    return this.#call("zsetRange", key, range) as ZsetEntry[];
  }
  zsetRemove(key: string, members: readonly string[]): number {
    return this.#call("zsetRemove", key, members) as number;
  }
  zsetCard(key: string): number {
    return this.#call("zsetCard", key) as number;
  }

  atomic(tx: AtomicWrite, share?: string): AtomicOutcome {
    return this.#call("atomic", tx, share) as AtomicOutcome;
  }

  /** The store thread closes the real store when the host closes. */
  close(): void {}
}
