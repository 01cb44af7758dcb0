/**
 * The trusted side of worker isolation: serves the store calls of every Lua worker, each over
 * its own channel (see channel.ts), with a {@link LocalGateway} per run.
 *
 * The host binds a run to a channel (`bind`, with the actor) before it hands the run to the
 * worker; requests carry only the run's sequence number, which must match the channel's
 * binding. So a worker can neither name an actor nor reach another channel's run: the actor
 * and the channel are fixed on this side.
 *
 * A request is executed only once it is completely published, and synchronously from start to
 * end of the store call (an asynchronous backend's promise settles with the write applied or
 * not), so a worker terminated at any point leaves each operation applied or not applied.
 */
import type { MessagePort } from "node:worker_threads";
import { ErrorKind } from "../errors.js";
import type { Actor, PolicyEngine } from "../policy/types.js";
import {
  isPromise,
  type EntryRecord,
  type ListOptions,
  type PutOptions,
} from "../store/store.js";
import type { AuditSink } from "./audit.js";
import {
  Bell,
  ChannelFullError,
  KEY_ACTIONS,
  Op,
  Slot,
  Status,
  WireReader,
  WireWriter,
} from "./channel.js";
import { OpFailure, type Answer, type HandleInfo } from "./gateway.js";
import { LocalGateway, type StoreSlot } from "./local-gateway.js";

interface Binding {
  runSeq: number;
  gateway: LocalGateway;
}

interface ChannelState {
  id: number;
  i32: Int32Array;
  r: WireReader;
  w: WireWriter;
  /** Carries messages too large for the shared message area (null: none can be moved). */
  port: MessagePort | null;
  /** Sequence number of the last request taken. */
  taken: number;
  binding: Binding | null;
  /** An asynchronous store call of this channel is in flight. */
  busy: boolean;
  closed: boolean;
}

export interface StoreServerOptions {
  slots: ReadonlyMap<string, StoreSlot>;
  policy: PolicyEngine;
  bell: SharedArrayBuffer;
  audit?: AuditSink | null;
  /** Time for audit records. */
  now?: () => number;
  /**
   * Receives the pool counters of every registry entry (see {@link POOL_FIELDS}), in registry
   * order, after every change: the host reads them synchronously for `host.pools()`.
   */
  poolStats?: SharedArrayBuffer | null;
  /**
   * Delivers pending control messages (open, bind, close) now. Called when the host bumped
   * Bell.CONTROL, and when a request arrives for a run whose binding has not been seen yet.
   */
  drainControl: () => void;
}

/** Counters per registry entry in the pool-stats buffer (Float64 each). */
export const POOL_FIELDS = ["inUse", "acquired", "released", "autoReleased", "refused"] as const;

/** A buffer for {@link StoreServerOptions.poolStats} of `entries` registry entries. */
export function createPoolStatsBuffer(entries: number): SharedArrayBuffer {
  return new SharedArrayBuffer(Math.max(1, entries) * POOL_FIELDS.length * 8);
}

export class StoreServer {
  readonly #slots: ReadonlyMap<string, StoreSlot>;
  readonly #policy: PolicyEngine;
  readonly #bell: Int32Array;
  readonly #audit: AuditSink | null;
  readonly #now: () => number;
  readonly #drainControl: () => void;
  readonly #poolStats: Float64Array | null;
  #channels: ChannelState[] = [];
  readonly #byId = new Map<number, ChannelState>();
  #controlSeen = 0;
  /** Asynchronous store calls in flight. */
  asyncPending = 0;
  /** Channels bound to a run (runs in progress). */
  activeRuns = 0;
  /** Answers that had to wake a sleeping worker since the caller last reset this. */
  wokeWorkers = 0;

  constructor(options: StoreServerOptions) {
    this.#slots = options.slots;
    this.#policy = options.policy;
    this.#bell = new Int32Array(options.bell);
    this.#audit = options.audit ?? null;
    this.#now = options.now ?? Date.now;
    this.#drainControl = options.drainControl;
    this.#poolStats = options.poolStats ? new Float64Array(options.poolStats) : null;
    this.#publishPools();
  }

  /** Copies every pool's counters to the shared pool-stats buffer. */
  #publishPools(): void {
    const out = this.#poolStats;
    if (out === null) return;
    let i = 0;
    for (const slot of this.#slots.values()) {
      const stats = slot.pool.stats();
      for (const field of POOL_FIELDS) out[i++] = stats[field];
    }
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
      binding: null,
      busy: false,
      closed: false,
    };
    this.#byId.set(id, ch);
    this.#channels = [...this.#channels, ch];
  }

  /** Forgets a channel (its worker is gone) and releases what its run held; returns how many. */
  closeChannel(id: number): number {
    const ch = this.#byId.get(id);
    if (ch === undefined) return 0;
    ch.closed = true;
    ch.port?.close();
    this.#byId.delete(id);
    this.#channels = this.#channels.filter((c) => c !== ch);
    return this.#unbind(ch);
  }

  /**
   * Binds a run (its actor, its cap on one call's bytes and on the handles it holds) to a
   * channel; any earlier run of the channel is released.
   */
  bind(id: number, runSeq: number, runId: string, actor: Actor, maxCallBytes = Number.POSITIVE_INFINITY, maxHandles?: number): void {
    const ch = this.#byId.get(id);
    if (ch === undefined) return;
    this.#unbind(ch);
    const gateway = new LocalGateway(this.#slots, this.#policy.bind(actor), {
      runId,
      audit: this.#audit,
      now: this.#now,
      maxCallBytes,
      ...(maxHandles !== undefined ? { maxHandles } : {}),
    });
    ch.binding = { runSeq, gateway };
    this.activeRuns++;
  }

  #unbind(ch: ChannelState): number {
    if (ch.binding === null) return 0;
    const n = ch.binding.gateway.releaseAll();
    ch.binding = null;
    this.activeRuns--;
    if (n > 0) this.#publishPools();
    return n;
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
      if (seq !== ch.taken && this.#serve(ch, seq)) served++;
    }
    return served;
  }

  #serve(ch: ChannelState, seq: number): boolean {
    const runSeq = ch.i32[Slot.RUN_SEQ]!;
    if (ch.binding === null || ch.binding.runSeq !== runSeq) {
      // The host posts the binding before it hands the run to the worker: take it now.
      this.#drainControl();
      this.#controlSeen = Atomics.load(this.#bell, Bell.CONTROL);
      if (ch.closed || ch.binding === null || ch.binding.runSeq !== runSeq) return false;
    }
    ch.taken = seq;
    const binding = ch.binding;
    let answer: Answer<unknown>;
    let op = 0;
    try {
      op = ch.i32[Slot.REQ_MOVED] === 1 ? this.#beginMoved(ch) : ch.r.begin();
      answer = this.#execute(op, ch, binding);
    } catch (err) {
      ch.r.end();
      this.#publish(ch, seq, () => this.#broken(ch, err));
      return true;
    }
    // Everything kept from the request was copied out: a moved one is garbage now.
    ch.r.end();
    if (op === Op.ACQUIRE || op === Op.RELEASE) this.#publishPools();
    if (!isPromise(answer)) {
      this.#publish(ch, seq, () => this.#write(ch, op, answer));
      return true;
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
        if (!ch.closed) this.#publish(ch, seq, () => this.#broken(ch, err));
      },
    );
    return true;
  }

  #beginMoved(ch: ChannelState): number {
    if (ch.port === null) throw new Error("a moved request on a channel without a port");
    return ch.r.beginMoved(ch.port);
  }

  /** Decodes the request and makes the gateway call. */
  #execute(op: number, ch: ChannelState, binding: Binding): Answer<unknown> {
    const r = ch.r;
    const g = binding.gateway;
    switch (op) {
      case Op.GET:
        return g.get(r.u32(), r.byteString());
      case Op.SET: {
        const handle = r.u32();
        const key = r.byteString();
        const ttlMs = r.f64();
        return g.set(handle, key, r.bytes(), ttlMs);
      }
      case Op.HAS:
        return g.has(r.u32(), r.byteString());
      case Op.DELETE:
        return g.delete(r.u32(), r.byteString());
      case Op.ADD:
      case Op.REPLACE: {
        const handle = r.u32();
        const key = r.byteString();
        const ttlMs = r.f64();
        const value = r.bytes();
        return op === Op.ADD ? g.add(handle, key, value, ttlMs) : g.replace(handle, key, value, ttlMs);
      }
      case Op.INCR: {
        const handle = r.u32();
        const key = r.byteString();
        const by = { value: r.f64(), float: r.u8() === 1 };
        const init = { value: r.f64(), float: r.u8() === 1 };
        return g.incr(handle, key, by, init, r.f64());
      }
      case Op.TTL:
        return g.ttl(r.u32(), r.byteString());
      case Op.EXPIRE: {
        const handle = r.u32();
        const key = r.byteString();
        return g.expire(handle, key, r.f64());
      }
      case Op.ACQUIRE:
        return g.acquire(r.byteString());
      case Op.RELEASE:
        g.release(r.u32());
        return undefined;
      case Op.END: {
        const released = this.#unbind(ch);
        return released;
      }
      case Op.CHECK: {
        const handle = r.u32();
        const action = KEY_ACTIONS[r.u8()];
        if (action === undefined) throw new Error("unknown policy action");
        return g.check(handle, action, r.byteString());
      }
      case Op.CHECK_MANY: {
        const handle = r.u32();
        const action = KEY_ACTIONS[r.u8()];
        if (action === undefined) throw new Error("unknown policy action");
        const keys: string[] = [];
        for (let n = r.u32(); n > 0; n--) keys.push(r.byteString());
        return g.checkMany(handle, action, keys);
      }
      case Op.NOTE_ERROR: {
        const handle = r.u32();
        g.noteError(handle, r.text() as ErrorKind);
        return undefined;
      }
    }
    if (op >= Op.FLUSH) return this.#executeOps(op, r, g);
    if (op < Op.GET_MANY || op > Op.INFO) throw new Error(`unknown opcode ${op}`);
    const handle = r.u32();
    switch (op) {
      case Op.GET_MANY: {
        const keys = new Array<string>(r.u32());
        for (let i = 0; i < keys.length; i++) keys[i] = r.byteString();
        return g.getMany(handle, keys);
      }
      case Op.SET_MANY: {
        const ttlMs = r.f64();
        const entries = new Array<[string, Uint8Array]>(r.u32());
        // r.bytes() copies each value out of the message: the store may keep it.
        for (let i = 0; i < entries.length; i++) entries[i] = [r.byteString(), r.bytes()];
        return g.setMany(handle, entries, ttlMs);
      }
      case Op.PUT: {
        const key = r.byteString();
        const value = r.bytes();
        const options: PutOptions = { ttlMs: r.f64(), onlyIfAbsent: r.u8() === 1 };
        if (r.u8() === 1) options.ifVersion = r.byteString();
        if (r.u8() === 1) options.metadata = r.bytes();
        return g.put(handle, key, value, options);
      }
    }
    const args = r.value() as unknown[];
    switch (op) {
      case Op.LIST:
        return g.list(handle, args[0] as ListOptions);
      case Op.ENTRY:
        return g.entry(handle, args[0] as string);
      case Op.INFO:
        return g.info(handle);
    }
    throw new Error(`unknown opcode ${op}`);
  }

  /** Issue 13's calls: a handle, then V8-serialized arguments (see ChannelGateway#structured). */
  #executeOps(op: number, r: ChannelState["r"], g: Binding["gateway"]): Answer<unknown> {
    if (op !== Op.FLUSH && op !== Op.DELETE_MANY) throw new Error(`unknown opcode ${op}`);
    const handle = r.u32();
    if (op === Op.FLUSH) return g.flush(handle);
    const keys = (r.value() as unknown[])[0];
    if (!Array.isArray(keys) || !keys.every((k) => typeof k === "string")) throw new Error("delete_many: keys must be strings");
    return g.deleteMany(handle, keys as string[]);
  }

  /** Writes an answer with `write`, then publishes it (RES_SEQ) and wakes a sleeping worker. */
  #publish(ch: ChannelState, seq: number, write: () => void): void {
    try {
      write();
    } catch (err) {
      if (err instanceof ChannelFullError) this.#failure(ch, new OpFailure(ErrorKind.INVALID, `answer too large: ${err.message}`));
      else this.#broken(ch, err);
    }
    if (ch.w.moved && ch.port === null) this.#failure(ch, new OpFailure(ErrorKind.INVALID, "answer too large for this channel"));
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

  #failure(ch: ChannelState, f: OpFailure): void {
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
    if (value instanceof OpFailure) return this.#failure(ch, value);
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
      case Op.RELEASE:
      case Op.NOTE_ERROR:
      case Op.CHECK:
      case Op.CHECK_MANY:
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
      case Op.ACQUIRE: {
        const info = value as HandleInfo;
        w.u32(info.handle);
        w.text(info.kind);
        w.u32(info.maxKeyLength);
        w.u32(info.maxValueSize);
        return;
      }
      case Op.END:
        w.u32(value as number);
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
      case Op.SET_MANY:
      case Op.PUT:
        return;
      case Op.ENTRY:
        w.value(value as EntryRecord | undefined);
        return;
      default:
        w.value(value);
    }
  }
}
