/**
 * A Lua worker's audit records on their way to the host: a ring of bytes in a
 * SharedArrayBuffer that the worker appends to and the host drains (at the end of each run,
 * when the ring fills, and after the worker exited).
 *
 * The gateway writes a decision's record before it acts on the decision, and a record is in
 * the ring once the worker stored the new head; so a worker terminated at any instruction
 * after an action leaves that action's record behind for the host, and none is lost.
 *
 * ```
 * Int32 0  HEAD  bytes ever written (wraps; modulo the capacity it is the write position)
 * Int32 1  TAIL  bytes ever drained by the host
 * bytes 8..      the ring: records of [u32 length][JSON of the record]
 * ```
 */
import type { AuditRecord } from "../audit.js";

const HEAD = 0;
const TAIL = 1;
const HEADER_BYTES = 8;
/** The ring's size in bytes; a power of two. */
export const AUDIT_RING_BYTES = 1 << 20;
/** How long a worker with a full ring waits for the host between reminders. */
const FULL_WAIT_MS = 100;

export function createAuditRing(): SharedArrayBuffer {
  return new SharedArrayBuffer(HEADER_BYTES + AUDIT_RING_BYTES);
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The worker's end: appends records. */
export class AuditRingWriter {
  readonly #i32: Int32Array;
  readonly #ring: Uint8Array;
  readonly #mask: number;
  /** Asks the host to drain (the ring is full). */
  readonly #askDrain: () => void;
  #scratch = new Uint8Array(4096);

  constructor(sab: SharedArrayBuffer, askDrain: () => void) {
    this.#i32 = new Int32Array(sab, 0, 2);
    this.#ring = new Uint8Array(sab, HEADER_BYTES);
    this.#mask = this.#ring.length - 1;
    this.#askDrain = askDrain;
  }

  write = (record: AuditRecord): void => {
    // Keys and actors are byte strings (char codes 0..255): JSON keeps them, UTF-8 carries them.
    const json = JSON.stringify(record);
    if (this.#scratch.length < json.length * 3 + 4) this.#scratch = new Uint8Array(json.length * 3 + 4);
    const { written } = encoder.encodeInto(json, this.#scratch.subarray(4));
    const n = written + 4;
    new DataView(this.#scratch.buffer).setUint32(0, written, true);
    if (n > this.#ring.length) throw new Error(`audit record of ${n} bytes is larger than the audit ring`);
    const head = Atomics.load(this.#i32, HEAD);
    for (;;) {
      const used = (head - Atomics.load(this.#i32, TAIL)) | 0;
      if (this.#ring.length - used >= n) break;
      this.#askDrain();
      Atomics.wait(this.#i32, TAIL, Atomics.load(this.#i32, TAIL), FULL_WAIT_MS);
    }
    const at = head & this.#mask;
    const first = Math.min(n, this.#ring.length - at);
    this.#ring.set(this.#scratch.subarray(0, first), at);
    if (first < n) this.#ring.set(this.#scratch.subarray(first, n), 0);
    // Published only now: a worker stopped before this line leaves no half record.
    Atomics.store(this.#i32, HEAD, (head + n) | 0);
  };
}

/** The host's end: takes every published record out of a worker's ring. */
export class AuditRingReader {
  readonly #i32: Int32Array;
  readonly #ring: Uint8Array;
  readonly #mask: number;

  constructor(sab: SharedArrayBuffer) {
    this.#i32 = new Int32Array(sab, 0, 2);
    this.#ring = new Uint8Array(sab, HEADER_BYTES);
    this.#mask = this.#ring.length - 1;
  }

  #read(from: number, n: number): Uint8Array {
    const at = from & this.#mask;
    const out = new Uint8Array(n);
    const first = Math.min(n, this.#ring.length - at);
    out.set(this.#ring.subarray(at, at + first));
    if (first < n) out.set(this.#ring.subarray(0, n - first), first);
    return out;
  }

  /** Hands every record published so far to `sink`, in order; returns how many. */
  drain(sink: (record: AuditRecord) => void): number {
    const head = Atomics.load(this.#i32, HEAD);
    let tail = Atomics.load(this.#i32, TAIL);
    let count = 0;
    while (tail !== head) {
      const len = new DataView(this.#read(tail, 4).buffer).getUint32(0, true);
      const record = JSON.parse(decoder.decode(this.#read(tail + 4, len))) as AuditRecord;
      tail = (tail + 4 + len) | 0;
      Atomics.store(this.#i32, TAIL, tail);
      sink(record);
      count++;
    }
    Atomics.notify(this.#i32, TAIL);
    return count;
  }
}
