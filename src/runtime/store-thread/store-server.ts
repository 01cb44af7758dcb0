/**
 * The store thread's end of the worker channels: serves the store calls of the stores that
 * Lua workers do not open themselves (see lua-worker.ts), each worker over its own channel
 * (see channel.ts). The trusted side of a run (policy with the run's actor, pools, audit) is
 * in the worker; a request names a store by its registry index and carries the writer's share.
 *
 * A request is executed only once it is completely published, and synchronously from start to
 * end of the store call (an asynchronous backend's promise settles with the write applied or
 * not), so a worker terminated at any point leaves each operation applied or not applied.
 */
import type { MessagePort } from "node:worker_threads";
import { ErrorKind, StoreError } from "../../errors.js";
import { COLLECTION_METHODS, isPromise, type EntryRecord, type ListOptions, type MaybePromise, type PutOptions, type PutOutcome, type Store } from "../../store/store.js";
import { Bell, ChannelFullError, Op, PUT_OUTCOMES, Slot, Status, WireReader, WireWriter } from "../threads/channel.js";
import { toFailure } from "../local-gateway.js";

interface ChannelState {
  id: number;
  i32: Int32Array;
  r: WireReader;
  w: WireWriter;
  /** Carries messages too large for the shared message area (null: none can be moved). */
  port: MessagePort | null;
  /** Sequence number of the last request taken. */
  taken: number;
  /** An asynchronous store call of this channel is in flight. */
  busy: boolean;
  closed: boolean;
}

export interface StoreServerOptions {
  /** Every registry entry's store, in registry order (requests name them by index). */
  stores: readonly Store[];
  bell: SharedArrayBuffer;
  /**
   * Delivers pending control messages (open, close) now. Called when the host bumped
   * Bell.CONTROL.
   */
  drainControl: () => void;
}

/** The Store methods an Op.CALL request may name. */
const CALLS: ReadonlySet<string> = new Set([
  "getStale",
  "size",
  "clear",
  "flush",
  "deleteMany",
  "sweep",
  "stats",
  ...COLLECTION_METHODS,
  "atomic",
]);

/** A thrown StoreError (or anything else) as an answer: kind, message, retryable. */
class Failure {
  constructor(readonly error: unknown) {}
}

export class StoreServer {
  readonly #stores: readonly Store[];
  readonly #bell: Int32Array;
  readonly #drainControl: () => void;
  #channels: ChannelState[] = [];
  readonly #byId = new Map<number, ChannelState>();
  #controlSeen = 0;
  /** Asynchronous store calls in flight. */
  asyncPending = 0;
  /** Answers that had to wake a sleeping worker since the caller last reset this. */
  wokeWorkers = 0;

  constructor(options: StoreServerOptions) {
    this.#stores = options.stores;
    this.#bell = new Int32Array(options.bell);
    this.#drainControl = options.drainControl;
  }

  /** Serves a worker's channel: its shared buffer and the port beside it for large messages. */
  openChannel(id: number, sab: SharedArrayBuffer, port: MessagePort | null = null): void {
    const i32 = new Int32Array(sab, 0, 8);
    const ch: ChannelState = {
      id,
      i32,
      r: new WireReader(sab),
      w: new WireWriter(sab),
      port,
      // A fresh channel: its worker may have published a request before this thread saw `open`.
      taken: 0,
      busy: false,
      closed: false,
    };
    this.#byId.set(id, ch);
    this.#channels = [...this.#channels, ch];
  }

  /** Forgets a channel (its worker is gone). */
  closeChannel(id: number): void {
    const ch = this.#byId.get(id);
    if (ch === undefined) return;
    ch.closed = true;
    ch.port?.close();
    this.#byId.delete(id);
    this.#channels = this.#channels.filter((c) => c !== ch);
  }

  /** Channels open (workers served). */
  get channels(): number {
    return this.#channels.length;
  }

  #checkControl(): void {
    const seen = Atomics.load(this.#bell, Bell.CONTROL);
    if (seen !== this.#controlSeen) {
      this.#controlSeen = seen;
      this.#drainControl();
    }
  }

  /** True when a request or a control message waits (checked before the store thread sleeps). */
  hasWork(): boolean {
    if (Atomics.load(this.#bell, Bell.CONTROL) !== this.#controlSeen) return true;
    for (const ch of this.#channels) {
      if (!ch.busy && Atomics.load(ch.i32, Slot.REQ_SEQ) !== ch.taken) return true;
    }
    return false;
  }

  /** Takes control messages, then serves every published request once; returns how many. */
  serveOnce(): number {
    this.#checkControl();
    let served = 0;
    const channels = this.#channels;
    for (let i = 0; i < channels.length; i++) {
      const ch = channels[i]!;
      if (ch.busy) continue;
      const seq = Atomics.load(ch.i32, Slot.REQ_SEQ);
      if (seq !== ch.taken) {
        this.#serve(ch, seq);
        served++;
      }
    }
    return served;
  }

  #serve(ch: ChannelState, seq: number): void {
    ch.taken = seq;
    let answer: MaybePromise<unknown>;
    let op = 0;
    try {
      op = ch.i32[Slot.REQ_MOVED] === 1 ? this.#beginMoved(ch) : ch.r.begin();
      answer = this.#execute(op, ch.r);
    } catch (err) {
      ch.r.end();
      this.#publish(ch, seq, () => (err instanceof Failure ? this.#failure(ch, err.error) : this.#broken(ch, err)));
      return;
    }
    // Everything kept from the request was copied out: a moved one is garbage now.
    ch.r.end();
    if (!isPromise(answer)) {
      this.#publish(ch, seq, () => this.#write(ch, op, answer));
      return;
    }
    ch.busy = true;
    this.asyncPending++;
    answer.then(
      (value) => {
        this.asyncPending--;
        ch.busy = false;
        if (!ch.closed) this.#publish(ch, seq, () => this.#write(ch, op, value));
      },
      (err: unknown) => {
        this.asyncPending--;
        ch.busy = false;
        if (!ch.closed) this.#publish(ch, seq, () => this.#failure(ch, err));
      },
    );
  }

  #beginMoved(ch: ChannelState): number {
    if (ch.port === null) throw new Error("a moved request on a channel without a port");
    return ch.r.beginMoved(ch.port);
  }

  /** Decodes the request and makes the store call; a store's throw comes back as a Failure. */
  #execute(op: number, r: WireReader): MaybePromise<unknown> {
    const store = this.#stores[r.u32()];
    if (store === undefined) throw new Error("unknown store index");
    const share = (): string | undefined => (r.u8() === 1 ? r.byteString() : undefined);
    try {
      switch (op) {
        case Op.GET:
          return store.get(r.byteString());
        case Op.SET: {
          const key = r.byteString();
          const ttlMs = r.f64();
          const value = r.bytes();
          return store.set(key, value, ttlMs, share());
        }
        case Op.HAS:
          return store.has(r.byteString());
        case Op.DELETE:
          return store.delete(r.byteString());
        case Op.ADD:
        case Op.REPLACE: {
          const key = r.byteString();
          const ttlMs = r.f64();
          const value = r.bytes();
          return op === Op.ADD ? store.add(key, value, ttlMs, share()) : store.replace(key, value, ttlMs, share());
        }
        case Op.INCR: {
          const key = r.byteString();
          const by = { value: r.f64(), float: r.u8() === 1 };
          const init = { value: r.f64(), float: r.u8() === 1 };
          const ttlMs = r.f64();
          return store.incr(key, by, init, ttlMs, share());
        }
        case Op.TTL:
          return store.ttl(r.byteString());
        case Op.EXPIRE: {
          const key = r.byteString();
          return store.expire(key, r.f64());
        }
        case Op.GET_MANY: {
          const keys = new Array<string>(r.u32());
          for (let i = 0; i < keys.length; i++) keys[i] = r.byteString();
          return store.getMany(keys);
        }
        case Op.SET_MANY: {
          const ttlMs = r.f64();
          const writer = share();
          const entries = new Array<[string, Uint8Array]>(r.u32());
          // r.bytes() copies each value out of the message: the store may keep it.
          for (let i = 0; i < entries.length; i++) entries[i] = [r.byteString(), r.bytes()];
          return store.setMany(entries, ttlMs, writer);
        }
        case Op.PUT: {
          const key = r.byteString();
          const value = r.bytes();
          const options: PutOptions = { ttlMs: r.f64(), onlyIfAbsent: r.u8() === 1 };
          if (r.u8() === 1) options.ifVersion = r.byteString();
          if (r.u8() === 1) options.metadata = r.bytes();
          const writer = share();
          if (writer !== undefined) options.share = writer;
          return store.put(key, value, options);
        }
        case Op.LIST:
          return store.list((r.value() as [ListOptions])[0]);
        case Op.ENTRY:
          return store.entry((r.value() as [string])[0]);
        case Op.INFO:
          return store.info((r.value() as [string | undefined])[0]);
        case Op.CALL: {
          const [method, ...args] = r.value() as [string, ...unknown[]];
          if (!CALLS.has(method)) throw new Error(`store method '${method}' cannot be called over the channel`);
          const fn = (store as unknown as Record<string, ((...a: unknown[]) => unknown) | undefined>)[method];
          if (fn === undefined) throw new StoreError(ErrorKind.INVALID, `store ${store.id}: this backend has no ${method} yet`);
          return fn.apply(store, args);
        }
      }
    } catch (err) {
      throw new Failure(err);
    }
    throw new Error(`unknown opcode ${op}`);
  }

  /** Writes an answer with `write`, then publishes it (RES_SEQ) and wakes a sleeping worker. */
  #publish(ch: ChannelState, seq: number, write: () => void): void {
    try {
      write();
    } catch (err) {
      if (err instanceof ChannelFullError) this.#failure(ch, new StoreError(ErrorKind.INVALID, `answer too large: ${err.message}`));
      else this.#broken(ch, err);
    }
    if (ch.w.moved && ch.port === null) this.#failure(ch, new StoreError(ErrorKind.INVALID, "answer too large for this channel"));
    ch.i32[Slot.RES_LEN] = ch.w.pos;
    // A moved answer is on the port before it is published.
    const moved = ch.w.moved;
    if (moved) ch.w.sendMoved(ch.port!);
    ch.i32[Slot.RES_MOVED] = moved ? 1 : 0;
    Atomics.store(ch.i32, Slot.RES_SEQ, seq);
    if (Atomics.load(ch.i32, Slot.WAITING) !== 0) {
      Atomics.notify(ch.i32, Slot.RES_SEQ);
      this.wokeWorkers++;
    }
  }

  /** A store's error as a FAIL answer (anything but a StoreError becomes Internal). */
  #failure(ch: ChannelState, err: unknown): void {
    const f = toFailure(err);
    const w = ch.w;
    w.begin(Status.FAIL);
    w.text(f.kind);
    w.text(f.message);
    w.u8(f.retryable ? 1 : 0);
  }

  #broken(ch: ChannelState, err: unknown): void {
    ch.w.begin(Status.BROKEN);
    ch.w.text(err instanceof Error ? err.message : String(err));
  }

  /** Encodes an answer for opcode `op`. */
  #write(ch: ChannelState, op: number, value: unknown): void {
    const w = ch.w;
    w.begin(Status.OK);
    switch (op) {
      case Op.GET:
        if (value === undefined) w.u8(0);
        else {
          w.u8(1);
          w.bytes(value as Uint8Array);
        }
        return;
      case Op.SET:
      case Op.SET_MANY:
        return;
      case Op.HAS:
      case Op.DELETE:
      case Op.ADD:
      case Op.REPLACE:
      case Op.EXPIRE:
        w.u8(value === true ? 1 : 0);
        return;
      case Op.INCR:
        w.bytes(value as Uint8Array);
        return;
      case Op.TTL:
        if (value === undefined) w.u8(0);
        else {
          w.u8(1);
          w.f64(value as number);
        }
        return;
      case Op.GET_MANY: {
        const values = value as readonly (Uint8Array | undefined)[];
        w.u32(values.length);
        for (const v of values) {
          if (v === undefined) w.u8(0);
          else {
            w.u8(1);
            w.bytes(v);
          }
        }
        return;
      }
      case Op.PUT:
        w.u8(PUT_OUTCOMES.indexOf(value as PutOutcome));
        return;
      case Op.ENTRY:
        w.value(value as EntryRecord | undefined);
        return;
      default:
        w.value(value);
    }
  }
}
