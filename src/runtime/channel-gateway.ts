/**
 * The worker side of the channel: a {@link RunGateway} whose every call is a synchronous
 * request to the store thread (see channel.ts). Nothing here decides anything: policy, pools
 * and stores are on the trusted side, and the actor is bound there, not sent from here.
 */
import type { MessagePort } from "node:worker_threads";
import { ErrorKind, isErrorKind } from "../errors.js";
import type { EntryRecord, ListOptions, ListPage, LuaNumber, PutOptions } from "../store/store.js";
import {
  Bell,
  ChannelFullError,
  HEADER_BYTES,
  KEY_ACTIONS,
  MemSlot,
  Op,
  Slot,
  Status,
  WireReader,
  WireWriter,
} from "./channel.js";
import { AdaptiveSpin } from "./adaptive-spin.js";
import { callTooLarge, OpFailure, type HandleInfo, type KeyAction, type RunGateway, type StoreInfoAnswer } from "./gateway.js";

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

  /** Publishes the request written in `w` for run `runSeq`, waits, and returns the answer status. */
  call(runSeq: number): number {
    const i32 = this.#i32;
    const bell = this.#bell;
    const w = this.w;
    i32[Slot.REQ_LEN] = w.pos;
    i32[Slot.RUN_SEQ] = runSeq;
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

function readFailure(r: WireReader): OpFailure {
  const kind = r.text();
  const message = r.text();
  const retryable = r.u8() === 1;
  return new OpFailure(isErrorKind(kind) ? kind : ErrorKind.INTERNAL, message, retryable);
}

const TOO_LARGE = (err: ChannelFullError): OpFailure => new OpFailure(ErrorKind.INVALID, err.message);

/** A run's gateway in a worker: the same calls as LocalGateway, answered by the store thread. */
export class ChannelGateway implements RunGateway {
  readonly #c: ChannelClient;
  readonly #runSeq: number;
  readonly #maxCallBytes: number;

  /** `maxCallBytes`: the run's cap on one call's bytes (the store thread holds the same). */
  constructor(client: ChannelClient, runSeq: number, maxCallBytes: number) {
    this.#c = client;
    this.#runSeq = runSeq;
    this.#maxCallBytes = maxCallBytes;
  }

  /**
   * A request over the run's cap is refused here, before it grows the channel; the policy check
   * still comes first and the store's error counter still sees it, as on the trusted side.
   */
  #tooLarge(handle: number, method: string, key: string, bytes: number): OpFailure {
    const denied = this.check(handle, "store.key.set", key);
    if (denied !== null) return denied;
    this.noteError(handle, ErrorKind.INVALID);
    return callTooLarge(method, "request", bytes, this.#maxCallBytes);
  }

  /** Sends the request in the writer; OK → null, FAIL → the failure. */
  #send(): OpFailure | null {
    const status = this.#c.call(this.#runSeq);
    if (status === Status.OK) return null;
    if (status === Status.FAIL) return readFailure(this.#c.r);
    throw new Error(`store thread could not serve the request: ${this.#c.r.text()}`);
  }

  #keyRequest(op: Op, handle: number, key: string): void {
    const w = this.#c.w;
    w.begin(op);
    w.u32(handle);
    w.byteString(key);
  }

  #bool(): boolean {
    return this.#c.r.u8() === 1;
  }

  acquire(storeId: string): HandleInfo | OpFailure {
    const w = this.#c.w;
    w.begin(Op.ACQUIRE);
    w.byteString(storeId);
    const f = this.#send();
    if (f !== null) return f;
    const r = this.#c.r;
    const handle = r.u32();
    const kind = r.text();
    const maxKeyLength = r.u32();
    const maxValueSize = r.u32();
    return { handle, storeId, kind, maxKeyLength, maxValueSize };
  }

  release(handle: number): void {
    const w = this.#c.w;
    w.begin(Op.RELEASE);
    w.u32(handle);
    this.#send();
  }

  releaseAll(): number {
    this.#c.w.begin(Op.END);
    this.#send();
    return this.#c.r.u32();
  }

  check(handle: number, action: KeyAction, key: string): OpFailure | null {
    const w = this.#c.w;
    w.begin(Op.CHECK);
    w.u32(handle);
    w.u8(KEY_ACTIONS.indexOf(action));
    w.byteString(key);
    return this.#send();
  }

  checkMany(handle: number, action: KeyAction, keys: readonly string[]): OpFailure | null {
    const w = this.#c.w;
    w.begin(Op.CHECK_MANY);
    w.u32(handle);
    w.u8(KEY_ACTIONS.indexOf(action));
    w.u32(keys.length);
    for (const key of keys) w.byteString(key);
    return this.#send();
  }

  noteError(handle: number, kind: ErrorKind): void {
    const w = this.#c.w;
    w.begin(Op.NOTE_ERROR);
    w.u32(handle);
    w.text(kind);
    this.#send();
  }

  get(handle: number, key: string): Uint8Array | undefined | OpFailure {
    this.#keyRequest(Op.GET, handle, key);
    const f = this.#send();
    if (f !== null) return f;
    return this.#c.r.u8() === 1 ? this.#c.r.bytes() : undefined;
  }

  set(handle: number, key: string, value: Uint8Array, ttlMs: number): true | OpFailure {
    if (key.length + value.length > this.#maxCallBytes) return this.#tooLarge(handle, "set", key, key.length + value.length);
    this.#keyRequest(Op.SET, handle, key);
    this.#c.w.f64(ttlMs);
    this.#c.w.bytes(value);
    return this.#send() ?? true;
  }

  has(handle: number, key: string): boolean | OpFailure {
    this.#keyRequest(Op.HAS, handle, key);
    return this.#send() ?? this.#bool();
  }

  delete(handle: number, key: string): boolean | OpFailure {
    this.#keyRequest(Op.DELETE, handle, key);
    return this.#send() ?? this.#bool();
  }

  add(handle: number, key: string, value: Uint8Array, ttlMs: number): boolean | OpFailure {
    if (key.length + value.length > this.#maxCallBytes) return this.#tooLarge(handle, "add", key, key.length + value.length);
    this.#keyRequest(Op.ADD, handle, key);
    this.#c.w.f64(ttlMs);
    this.#c.w.bytes(value);
    return this.#send() ?? this.#bool();
  }

  replace(handle: number, key: string, value: Uint8Array, ttlMs: number): boolean | OpFailure {
    if (key.length + value.length > this.#maxCallBytes) return this.#tooLarge(handle, "replace", key, key.length + value.length);
    this.#keyRequest(Op.REPLACE, handle, key);
    this.#c.w.f64(ttlMs);
    this.#c.w.bytes(value);
    return this.#send() ?? this.#bool();
  }

  incr(handle: number, key: string, by: LuaNumber, init: LuaNumber, initTtlMs: number): Uint8Array | OpFailure {
    this.#keyRequest(Op.INCR, handle, key);
    const w = this.#c.w;
    w.f64(by.value);
    w.u8(by.float ? 1 : 0);
    w.f64(init.value);
    w.u8(init.float ? 1 : 0);
    w.f64(initTtlMs);
    return this.#send() ?? this.#c.r.bytes();
  }

  ttl(handle: number, key: string): number | undefined | OpFailure {
    this.#keyRequest(Op.TTL, handle, key);
    const f = this.#send();
    if (f !== null) return f;
    return this.#c.r.u8() === 1 ? this.#c.r.f64() : undefined;
  }

  expire(handle: number, key: string, ttlMs: number): boolean | OpFailure {
    this.#keyRequest(Op.EXPIRE, handle, key);
    this.#c.w.f64(ttlMs);
    return this.#send() ?? this.#bool();
  }

  /** A structured request: opcode, handle and V8-serialized arguments; the answer likewise. */
  #structured<T>(op: Op, handle: number, args: unknown[]): T | OpFailure {
    const w = this.#c.w;
    try {
      w.begin(op);
      w.u32(handle);
      w.value(args);
    } catch (err) {
      if (err instanceof ChannelFullError) return TOO_LARGE(err);
      throw err;
    }
    return this.#send() ?? (this.#c.r.value() as T);
  }

  // get_many, set_many and put carry their keys and values as bytes, not V8-serialized: each
  // value is then read as a copy sized to itself, never a view into the whole message (which a
  // store would keep alive), and the message exists once in the channel, not twice.

  getMany(handle: number, keys: readonly string[]): (Uint8Array | undefined)[] | OpFailure {
    const w = this.#c.w;
    w.begin(Op.GET_MANY);
    w.u32(handle);
    w.u32(keys.length);
    for (const key of keys) w.byteString(key);
    const f = this.#send();
    if (f !== null) return f;
    const r = this.#c.r;
    const values = new Array<Uint8Array | undefined>(r.u32());
    for (let i = 0; i < values.length; i++) values[i] = r.u8() === 1 ? r.bytes() : undefined;
    return values;
  }

  setMany(handle: number, entries: readonly (readonly [string, Uint8Array])[], ttlMs: number): true | OpFailure {
    let bytes = 0;
    for (const [key, value] of entries) bytes += key.length + value.length;
    if (bytes > this.#maxCallBytes) {
      const denied = this.checkMany(handle, "store.key.set", entries.map(([key]) => key));
      if (denied !== null) return denied;
      this.noteError(handle, ErrorKind.INVALID);
      return callTooLarge("set_many", "request", bytes, this.#maxCallBytes);
    }
    const w = this.#c.w;
    w.begin(Op.SET_MANY);
    w.u32(handle);
    w.f64(ttlMs);
    w.u32(entries.length);
    for (const [key, value] of entries) {
      w.byteString(key);
      w.bytes(value);
    }
    return this.#send() ?? true;
  }

  list(handle: number, options: ListOptions): ListPage | OpFailure {
    return this.#structured(Op.LIST, handle, [options]);
  }

  entry(handle: number, key: string): EntryRecord | undefined | OpFailure {
    return this.#structured(Op.ENTRY, handle, [key]);
  }

  put(handle: number, key: string, value: Uint8Array, options: PutOptions): true | OpFailure {
    const { metadata, ifVersion } = options;
    const bytes = key.length + value.length + (metadata?.length ?? 0);
    if (bytes > this.#maxCallBytes) return this.#tooLarge(handle, "put", key, bytes);
    const w = this.#c.w;
    this.#keyRequest(Op.PUT, handle, key);
    w.bytes(value);
    w.f64(options.ttlMs);
    w.u8(options.onlyIfAbsent ? 1 : 0);
    w.u8(ifVersion === undefined ? 0 : 1);
    if (ifVersion !== undefined) w.byteString(ifVersion);
    w.u8(metadata === undefined ? 0 : 1);
    if (metadata !== undefined) w.bytes(metadata);
    return this.#send() ?? true;
  }

  info(handle: number): StoreInfoAnswer | OpFailure {
    return this.#structured(Op.INFO, handle, []);
  }

  flush(handle: number): number | OpFailure {
    return this.#structured(Op.FLUSH, handle, []);
  }

  deleteMany(handle: number, keys: readonly string[]): number | OpFailure {
    return this.#structured(Op.DELETE_MANY, handle, [keys]);
  }
}
