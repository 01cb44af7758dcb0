/**
 * The synchronous channel between a Lua worker and the store thread, for the stores a worker
 * does not open itself (see lua-worker.ts): one fixed-size
 * SharedArrayBuffer per worker with a MessagePort beside it for large messages, and one shared
 * "bell" that wakes the store thread.
 *
 * ## Layout of a worker's channel
 * ```
 * bytes 0..31   Int32 slots (Slot): REQ_SEQ, RES_SEQ, WAITING, (unused), REQ_LEN, RES_LEN, REQ_MOVED, RES_MOVED
 * bytes 32..63  Float64 slots (MemSlot): the worker's last measured memory and the run's peak
 * bytes 64..    one message at a time: the request, then the answer written over it
 * ```
 *
 * ## Large messages
 * A message longer than the message area ({@link CHANNEL_MESSAGE_BYTES}) is written into a
 * private ArrayBuffer instead, which is transferred over the channel's MessagePort before the
 * message is published (REQ_MOVED / RES_MOVED say so); the other side takes it with
 * `receiveMessageOnPort`, synchronously. The shared buffer therefore never grows: a growable
 * one can never shrink again, and the copies of it that the three threads hold are freed only
 * when each of them collects garbage, which the store thread may not do for a long time. A
 * transferred buffer belongs to the receiver alone, counts toward its memory, and is freed by
 * its own collector.
 * A request is published by storing a new REQ_SEQ *after* its bytes and length are written, so
 * the store thread never reads a half-written request: a worker killed while writing leaves a
 * request that is never executed. The answer is published the same way with RES_SEQ = REQ_SEQ.
 *
 * ## Waking
 * Each side spins briefly on the other's sequence number (a hot round trip costs well under a
 * microsecond) and only then sleeps. A sleeper announces itself first (WAITING for a worker,
 * Bell.SLEEPING for the store thread) and re-checks before it sleeps; the other side notifies
 * only when it sees that flag, so the hot path makes no futex system call.
 *
 * ## Messages
 * Requests start with an opcode byte; answers with a status byte. Keys are byte strings sent as
 * their bytes, values as their MessagePack bytes, numbers as float64; get_many, set_many and
 * put too, so that every value is read out as a copy of its own. The less frequent operations
 * with structured arguments or answers (list, entry, info) carry V8-serialized arrays.
 */
import { deserialize, serialize } from "node:v8";
import { receiveMessageOnPort, type MessagePort } from "node:worker_threads";
import { byteStringFromBytes } from "../../bytes.js";

/** Int32 slots of a channel's header. */
export const Slot = {
  /** Sequence number of the last published request (written by the worker). */
  REQ_SEQ: 0,
  /** Sequence number of the last answered request (written by the store thread). */
  RES_SEQ: 1,
  /** 1 while the worker sleeps in Atomics.wait on RES_SEQ. */
  WAITING: 2,
  /** Unused (was the run's number when the store thread held the runs' gateways). */
  RUN_SEQ: 3,
  REQ_LEN: 4,
  RES_LEN: 5,
  /** 1 when the request went over the port (see "Large messages"). */
  REQ_MOVED: 6,
  /** 1 when the answer went over the port. */
  RES_MOVED: 7,
} as const;

/** Float64 slots (from byte 32) where a worker publishes its memory for the host's watchdog. */
export const MemSlot = { NOW: 0, PEAK: 1 } as const;

export const HEADER_BYTES = 64;
/** The shared message area: messages up to this long cross without a port message. */
export const CHANNEL_MESSAGE_BYTES = 256 * 1024;
/** Largest message a channel carries (a request or an answer), moved or not. */
export const CHANNEL_MAX_BYTES = 256 * 1024 * 1024;

/** Int32 slots of the bell shared by the host, the store thread and every worker. */
export const Bell = {
  /** Bumped (and notified when SLEEPING) to wake the store thread. */
  RING: 0,
  /** 1 while the store thread sleeps (in Atomics.waitAsync on RING). */
  SLEEPING: 1,
  /** Bumped by the host after each control message it posts to the store thread. */
  CONTROL: 2,
} as const;

export function createBell(): SharedArrayBuffer {
  return new SharedArrayBuffer(16);
}

/** Wakes the store thread if it sleeps. */
export function ringBell(bell: Int32Array): void {
  if (Atomics.load(bell, Bell.SLEEPING) !== 0) {
    Atomics.add(bell, Bell.RING, 1);
    Atomics.notify(bell, Bell.RING);
  }
}

/**
 * The store thread's side of the bell: marks itself SLEEPING, then runs `pump` once more work is
 * there, at once (on the next turn) if `hasWork()` already says so, else when a ring wakes it.
 * The check after SLEEPING is set closes the race with a writer that rang before it was seen.
 */
export function sleepUntilRung(bell: Int32Array, hasWork: () => boolean, pump: () => void): void {
  const ring = Atomics.load(bell, Bell.RING);
  Atomics.store(bell, Bell.SLEEPING, 1);
  if (hasWork()) {
    Atomics.store(bell, Bell.SLEEPING, 0);
    setImmediate(pump);
    return;
  }
  const wait = Atomics.waitAsync(bell, Bell.RING, ring);
  const wake = (): void => {
    Atomics.store(bell, Bell.SLEEPING, 0);
    pump();
  };
  if (wait.async) void wait.value.then(wake);
  else setImmediate(wake);
}

export function createChannelBuffer(): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER_BYTES + CHANNEL_MESSAGE_BYTES);
}

/**
 * Request opcodes: store calls, each followed by the store's index in the registry. The
 * trusted side of a run (policy, pools, audit) is in the worker; the channel carries only the
 * store calls of stores the worker does not open itself.
 */
export const Op = {
  GET: 10,
  SET: 11,
  HAS: 12,
  DELETE: 13,
  ADD: 14,
  REPLACE: 15,
  INCR: 16,
  TTL: 17,
  EXPIRE: 18,
  GET_MANY: 20,
  SET_MANY: 21,
  LIST: 22,
  ENTRY: 23,
  PUT: 24,
  INFO: 25,
  /**
   * Any other Store method the channel serves (size, clear, flush, sweep, stats, ...): its name
   * and arguments as one V8-serialized array, the answer likewise. A new Store method can go
   * here first and get an opcode of its own if it is hot.
   */
  CALL: 26,
} as const;
export type Op = (typeof Op)[keyof typeof Op];

/** A put's outcome as its answer byte. */
export const PUT_OUTCOMES = ["ok", "exists", "conflict", "missing"] as const;

/** Answer status byte. */
export const Status = {
  OK: 0,
  /** A StoreError: kind, message, retryable. */
  FAIL: 1,
  /** The request could not be served at all (unknown opcode, oversized answer): Internal. */
  BROKEN: 2,
} as const;

/** The channel's message area is too small for a message and cannot grow further. */
export class ChannelFullError extends Error {
  constructor(bytes: number) {
    super(`message of ${bytes} bytes is larger than the worker channel's ${CHANNEL_MAX_BYTES} bytes`);
    this.name = "ChannelFullError";
  }
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();
const f64 = new Float64Array(1);
const f64Bytes = new Uint8Array(f64.buffer);

/**
 * Writes one message: into the channel's message area, or, once it outgrows that, into a
 * private buffer that {@link WireWriter.sendMoved} transfers to the other side.
 */
export class WireWriter {
  readonly #shared: Uint8Array;
  #data: Uint8Array;
  pos = 0;

  constructor(sab: SharedArrayBuffer) {
    this.#shared = this.#data = new Uint8Array(sab, HEADER_BYTES);
  }

  #room(n: number): Uint8Array {
    const need = this.pos + n;
    if (need > this.#data.length) {
      if (need > CHANNEL_MAX_BYTES) throw new ChannelFullError(need);
      let size = this.#data.length * 2;
      while (size < need) size *= 2;
      const next = new Uint8Array(Math.min(size, CHANNEL_MAX_BYTES));
      next.set(this.#data.subarray(0, this.pos));
      this.#data = next;
    }
    return this.#data;
  }

  /** True when the message written since `begin` did not fit the message area. */
  get moved(): boolean {
    return this.#data !== this.#shared;
  }

  /** Transfers a moved message to the other side of `port` (before the message is published). */
  sendMoved(port: MessagePort): void {
    const message = this.#data.subarray(0, this.pos);
    this.#data = this.#shared;
    // Moved messages are always private buffers (#room), never the shared area.
    port.postMessage(message, [message.buffer as ArrayBuffer]);
  }

  begin(byte: number): void {
    this.#data = this.#shared;
    this.pos = 0;
    this.u8(byte);
  }

  u8(v: number): void {
    this.#room(1)[this.pos++] = v;
  }

  u32(v: number): void {
    const d = this.#room(4);
    d[this.pos] = v;
    d[this.pos + 1] = v >>> 8;
    d[this.pos + 2] = v >>> 16;
    d[this.pos + 3] = v >>> 24;
    this.pos += 4;
  }

  f64(v: number): void {
    const d = this.#room(8);
    f64[0] = v;
    d.set(f64Bytes, this.pos);
    this.pos += 8;
  }

  bytes(v: Uint8Array): void {
    this.u32(v.length);
    this.#room(v.length).set(v, this.pos);
    this.pos += v.length;
  }

  /** A byte string (every char code 0..255) as its bytes. */
  byteString(s: string): void {
    const n = s.length;
    this.u32(n);
    const d = this.#room(n);
    const p = this.pos;
    for (let i = 0; i < n; i++) d[p + i] = s.charCodeAt(i);
    this.pos += n;
  }

  /** Text as UTF-8. */
  text(s: string): void {
    if (s.length < 64) {
      // Short texts (kinds, store kinds): encode into a temporary, no worst-case reservation.
      this.bytes(textEncoder.encode(s));
      return;
    }
    const d = this.#room(4 + s.length * 3);
    const { written } = textEncoder.encodeInto(s, d.subarray(this.pos + 4));
    this.u32(written);
    this.pos += written;
  }

  /** Any structured-cloneable value. */
  value(v: unknown): void {
    this.bytes(serialize(v));
  }
}

/** Reads one message: from the channel's message area, or a moved one from its port. */
export class WireReader {
  readonly #shared: Uint8Array;
  #data: Uint8Array;
  pos = 0;

  constructor(sab: SharedArrayBuffer) {
    this.#shared = this.#data = new Uint8Array(sab, HEADER_BYTES);
  }

  /** Starts reading the message in the message area; returns its first byte. */
  begin(): number {
    this.#data = this.#shared;
    this.pos = 0;
    return this.u8();
  }

  /**
   * Starts reading a moved message: the next one waiting on `port` (posted before the message
   * was published, so it is there). Returns its first byte.
   */
  beginMoved(port: MessagePort): number {
    const received = receiveMessageOnPort(port);
    if (received === undefined) throw new Error("channel: a moved message is missing from its port");
    this.#data = received.message as Uint8Array;
    this.pos = 0;
    return this.u8();
  }

  /** Lets go of a moved message (its buffer is then garbage). */
  end(): void {
    this.#data = this.#shared;
  }

  u8(): number {
    return this.#data[this.pos++]!;
  }

  u32(): number {
    const d = this.#data;
    const p = this.pos;
    this.pos += 4;
    return (d[p]! | (d[p + 1]! << 8) | (d[p + 2]! << 16) | (d[p + 3]! << 24)) >>> 0;
  }

  f64(): number {
    for (let i = 0; i < 8; i++) f64Bytes[i] = this.#data[this.pos + i]!;
    this.pos += 8;
    return f64[0]!;
  }

  /** A fresh copy sized to itself (the message area is overwritten by the next message). */
  bytes(): Uint8Array {
    const n = this.u32();
    const out = this.#data.slice(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  byteString(): string {
    const n = this.u32();
    const s = byteStringFromBytes(this.#data, this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  text(): string {
    const n = this.u32();
    const s = textDecoder.decode(this.#data.subarray(this.pos, this.pos + n));
    this.pos += n;
    return s;
  }

  value(): unknown {
    const n = this.u32();
    // v8.deserialize returns typed arrays as views into its input; the input must therefore be
    // a private copy, never the shared message area that the next message overwrites (stored
    // values and Lua strings would silently change), nor a moved message, which holds more.
    const v: unknown = deserialize(this.#data.slice(this.pos, this.pos + n));
    this.pos += n;
    return v;
  }
}
