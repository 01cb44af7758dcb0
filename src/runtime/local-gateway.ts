/**
 * The trusted side of a run: policy checks with the run's bound actor, pool slots, metrics,
 * the audit trail, and the store calls themselves. Used directly by inline runs and behind the
 * channel by workers.
 */
import { ErrorKind, StoreError } from "../errors.js";
import { quoteByteString } from "../bytes.js";
import type { HandlePool } from "../pool/handle-pool.js";
import { DEFAULT_LIMITS } from "../lua/limits.js";
import type { Actor, ActorPolicy, Decision, RequestMeta } from "../policy/types.js";
import type { StoreConfig } from "../registry/types.js";
import { MAX_STORE_ID_BYTES } from "../registry/validate.js";
import {
  atomicOf,
  collectionsOf,
  isPromise,
  SCORE_BYTES,
  type AtomicOutcome,
  type AtomicWrite,
  type EntryRecord,
  type ListOptions,
  type ListPage,
  type LuaNumber,
  type MaybePromise,
  type PutOptions,
  type PutOutcome,
  type StaleValue,
  type Store,
} from "../store/store.js";
import type { AuditSink } from "./audit.js";
import {
  callTooLarge,
  OpFailure,
  type Answer,
  type HandleInfo,
  type KeyAction,
  type ListAnswer,
  type ListCall,
  type RunGateway,
  type ZsetAnswer,
  type ZsetCall,
  type StoreInfoAnswer,
} from "../lua/gateway.js";

/**
 * Counters the gateway keeps per store (the store keeps hits, misses, sets, ...): in this
 * thread's memory ({@link LocalCounters}), or in a worker's region of the host's shared
 * counters (shared-counters.ts).
 */
export interface GatewayCounters {
  /** A call refused by policy (its error is counted by `note` too). */
  denial(): void;
  /** A failed call, by its kind. */
  note(kind: ErrorKind): void;
}

/** Gateway counters in this thread's memory. */
export class LocalCounters implements GatewayCounters {
  denied = 0;
  readonly errors: Record<string, number> = {};
  denial(): void {
    this.denied++;
  }
  note(kind: ErrorKind): void {
    this.errors[kind] = (this.errors[kind] ?? 0) + 1;
  }
}

/** A store's handle pool: {@link HandlePool} on one thread, or shared by every worker (shared-counters.ts). */
export interface SlotPool {
  readonly max: number;
  /** Takes a handle; false when all `max` are in use. */
  tryAcquire(): boolean;
  /** Gives one back; `auto` marks a release done by the host at the end of a run. */
  release(auto: boolean): void;
}

/** A registry entry made real: its store, its pool, its config and its counters. */
export interface StoreSlot {
  store: Store;
  pool: SlotPool;
  config: StoreConfig;
  counters: GatewayCounters;
}

/** A slot of this thread: its pool and counters in local memory. */
export interface LocalStoreSlot extends StoreSlot {
  pool: HandlePool;
  counters: LocalCounters;
}

interface HandleState {
  slot: StoreSlot;
  released: boolean;
  /**
   * The run's policy allows `store.key.get` (`store.key.set`) on this store for every key: no
   * policy that could match has a condition reading the request. The hot get and set then skip
   * the per-key decision; a key-dependent policy is still evaluated for every key. Never set
   * while auditing, which records every decision.
   */
  anyKeyGet: boolean;
  anyKeySet: boolean;
}

const RELEASED = new OpFailure(ErrorKind.INVALID, "store released");

/** An Invalid failure when a key, list prefix or cursor is longer than the store's max_key_length. */
function tooLongFor(slot: StoreSlot, what: string, bytes: string): OpFailure | null {
  const max = slot.config.maxKeyLength;
  return bytes.length > max ? new OpFailure(ErrorKind.INVALID, `${what} is ${bytes.length} bytes, longer than max_key_length ${max}`) : null;
}

/** Turns whatever a store threw or rejected with into an OpFailure. */
export function toFailure(err: unknown): OpFailure {
  if (err instanceof StoreError) return new OpFailure(err.kind, err.message, err.retryable);
  if (err instanceof OpFailure) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new OpFailure(ErrorKind.INTERNAL, `internal store error: ${message}`);
}

const yes = (): true => true;

export interface LocalGatewayOptions {
  runId: string;
  /** Receives every policy decision when auditing is on. */
  audit?: AuditSink | null;
  /** Time for audit records. */
  now?: () => number;
  /** Bytes one call's request or answer may carry (the run's maxCallBytes). @default no cap (trusted callers) */
  maxCallBytes?: number;
  /** Handles the run may hold at once (RunLimits.maxHandles). @default DEFAULT_LIMITS.maxHandles */
  maxHandles?: number;
}

/**
 * The share a writer's keys count in, for a store with a quota `by` an actor field: `actor.id`,
 * or `actor.meta.<name>` as a string (an actor without that field writes in the share "").
 */
export function shareOf(config: StoreConfig, actor: Actor): string | undefined {
  const by = config.quota?.by;
  if (by === undefined) return undefined;
  if (by === "actor.id") return actor.id;
  const value = actor.meta[by.slice("actor.meta.".length)];
  return value === undefined ? "" : String(value);
}

/** Bytes of a list page's answer: its keys and their metadata. */
function pageBytes(page: ListPage): number {
  let n = page.cursor?.length ?? 0;
  for (const k of page.keys) n += k.key.length + (k.metadata?.length ?? 0);
  return n;
}

/** Bytes of a list of elements (an lrange answer). */
function valuesBytes(answer: ListAnswer): number {
  if (typeof answer === "number") return 0;
  let n = 0;
  for (const value of answer) n += value.length;
  return n;
}

/** Bytes of a zrange answer: members plus a score each. */
function entriesBytes(answer: ZsetAnswer): number {
  if (!Array.isArray(answer)) return 0;
  let n = 0;
  for (const e of answer) n += e.member.length + SCORE_BYTES;
  return n;
}

export class LocalGateway implements RunGateway {
  readonly #slots: ReadonlyMap<string, StoreSlot>;
  #policy: ActorPolicy;
  readonly #handles: HandleState[] = [];
  /** Reused for every key check: the policy engine reads it synchronously. */
  readonly #meta: RequestMeta = { key: "" };
  readonly #runId: string;
  readonly #audit: AuditSink | null;
  readonly #now: () => number;
  readonly #maxCallBytes: number;
  readonly #maxHandles: number;
  #open = 0;
  /**
   * Bytes of the requests and answers this run's calls carried (counted when the run has a
   * `maxCallBytes`, as a worker's runs do): the worker measures its memory once enough moved.
   */
  movedBytes = 0;

  constructor(slots: ReadonlyMap<string, StoreSlot>, policy: ActorPolicy, options: LocalGatewayOptions = { runId: "" }) {
    this.#slots = slots;
    this.#policy = policy;
    this.#runId = options.runId;
    this.#audit = options.audit ?? null;
    this.#now = options.now ?? Date.now;
    this.#maxCallBytes = options.maxCallBytes ?? Number.POSITIVE_INFINITY;
    this.#maxHandles = options.maxHandles ?? DEFAULT_LIMITS.maxHandles;
  }

  /** The share this run's writes to `slot` count in (undefined: the store has no quota). */
  #share(slot: StoreSlot): string | undefined {
    return slot.config.quota === undefined ? undefined : shareOf(slot.config, this.#policy.actor);
  }

  /** The run's cap on one call's bytes. */
  get maxCallBytes(): number {
    return this.#maxCallBytes;
  }

  /** A request over the cap, refused after its policy check (the check order: key, policy, value). */
  #requestTooLarge(slot: StoreSlot, method: string, bytes: number): OpFailure {
    return this.#fail(slot, callTooLarge(method, "request", bytes, this.#maxCallBytes));
  }

  /**
   * Passes an answer on when its size (by `measure`) is within the cap, else an Invalid in its
   * place; a promise is mapped the same way.
   */
  #capAnswer<T>(slot: StoreSlot, method: string, r: Answer<T>, measure: (v: T) => number): Answer<T> {
    if (this.#maxCallBytes === Number.POSITIVE_INFINITY) return r;
    const cap = (v: T | OpFailure): T | OpFailure => {
      if (v instanceof OpFailure) return v;
      const bytes = measure(v);
      this.movedBytes += bytes;
      return bytes > this.#maxCallBytes ? this.#fail(slot, callTooLarge(method, "answer", bytes, this.#maxCallBytes)) : v;
    };
    return isPromise(r) ? r.then(cap) : cap(r);
  }

  /** The policy binding checks run against (the actor bound to this run). */
  get policy(): ActorPolicy {
    return this.#policy;
  }

  /**
   * Rebinds the run to another actor. Only trusted host code calls this (the test harness's
   * `test.as`); nothing reachable from a script can.
   */
  setPolicy(policy: ActorPolicy): void {
    this.#policy = policy;
    for (const state of this.#handles) this.#cacheDecisions(state);
  }

  /** Sets the handle's any-key flags from the current policy (see HandleState). */
  #cacheDecisions(state: HandleState): void {
    const constant = this.#audit === null ? this.#policy.constantDecision : undefined;
    const id = state.slot.config.id;
    state.anyKeyGet = constant?.call(this.#policy, "store.key.get", id)?.allowed === true;
    state.anyKeySet = constant?.call(this.#policy, "store.key.set", id)?.allowed === true;
  }

  #decide(action: string, resource: string, meta: RequestMeta | undefined): Decision {
    const decision = this.#policy.decide(action, resource, meta);
    if (this.#audit !== null) {
      this.#audit({
        time: new Date(this.#now()).toISOString(),
        runId: this.#runId,
        actor: this.#policy.actor.id,
        action,
        resource,
        ...(meta?.key !== undefined ? { key: meta.key } : {}),
        ...(meta?.prefix !== undefined ? { prefix: meta.prefix } : {}),
        allowed: decision.allowed,
        policyIds: decision.policyIds,
      });
    }
    return decision;
  }

  #fail(slot: StoreSlot | undefined, f: OpFailure): OpFailure {
    if (slot !== undefined) {
      if (f.kind === ErrorKind.PERMISSION_DENIED) slot.counters.denial();
      slot.counters.note(f.kind);
    }
    return f;
  }

  acquire(storeId: string): HandleInfo | OpFailure {
    if (storeId.length > MAX_STORE_ID_BYTES) {
      return new OpFailure(ErrorKind.INVALID, `store id is ${storeId.length} bytes, longer than any store id (${MAX_STORE_ID_BYTES})`);
    }
    const slot = this.#slots.get(storeId);
    // Policy first: an actor without access learns nothing about which stores exist.
    if (!this.#decide("store.get", storeId, undefined).allowed) {
      return this.#fail(slot, new OpFailure(ErrorKind.PERMISSION_DENIED, `permission denied: store.get on ${quoteByteString(storeId)}`));
    }
    if (slot === undefined) return new OpFailure(ErrorKind.NOT_FOUND, `no store ${quoteByteString(storeId)} in the registry`);
    // The run's own cap first: one run cannot hold a whole pool (refused before it takes a slot).
    if (this.#open >= this.#maxHandles) {
      return this.#fail(
        slot,
        new OpFailure(ErrorKind.RATE_LIMITED, `this run already holds ${this.#open} handles (maxHandles ${this.#maxHandles}); release one first`),
      );
    }
    if (!slot.pool.tryAcquire()) {
      return this.#fail(
        slot,
        new OpFailure(ErrorKind.UNAVAILABLE, `pool of ${slot.config.id} exhausted: all ${slot.pool.max} handles in use`, true),
      );
    }
    const handle = this.#handles.length;
    const state: HandleState = { slot, released: false, anyKeyGet: false, anyKeySet: false };
    this.#cacheDecisions(state);
    this.#handles.push(state);
    this.#open++;
    return {
      handle,
      storeId,
      kind: slot.config.kind,
      maxKeyLength: slot.config.maxKeyLength,
      maxValueSize: slot.config.maxValueSize,
    };
  }

  release(handle: number): void {
    const state = this.#handles[handle];
    if (state === undefined || state.released) return;
    state.released = true;
    state.slot.pool.release(false);
    this.#open--;
  }

  releaseAll(): number {
    let n = 0;
    if (this.#open === 0) return 0;
    for (const state of this.#handles) {
      if (state.released) continue;
      state.released = true;
      state.slot.pool.release(true);
      n++;
    }
    this.#open = 0;
    return n;
  }

  noteError(handle: number, kind: ErrorKind): void {
    const state = this.#handles[handle];
    if (state !== undefined) state.slot.counters.note(kind);
  }

  /** The live handle state, or null when released/unknown. */
  #state(handle: number): HandleState | null {
    const state = this.#handles[handle];
    return state === undefined || state.released ? null : state;
  }

  #deny(action: string, state: HandleState, key: string): OpFailure | null {
    // Bounded before any policy (or regex) work sees it; the Lua module checks first with a friendlier message.
    const tooLong = tooLongFor(state.slot, "key", key);
    if (tooLong !== null) return this.#fail(state.slot, tooLong);
    if (action === "store.key.get" ? state.anyKeyGet : action === "store.key.set" && state.anyKeySet) return null;
    this.#meta.key = key;
    if (this.#decide(action, state.slot.config.id, this.#meta).allowed) return null;
    return this.#fail(
      state.slot,
      new OpFailure(ErrorKind.PERMISSION_DENIED, `permission denied: ${action} on ${state.slot.config.id} key ${quoteByteString(key)}`),
    );
  }

  check(handle: number, action: KeyAction, key: string): OpFailure | null {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    return this.#deny(action, state, key);
  }

  checkMany(handle: number, action: KeyAction, keys: readonly string[]): OpFailure | null {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    for (const key of keys) {
      const denied = this.#deny(action, state, key);
      if (denied !== null) return denied;
    }
    return null;
  }

  /**
   * One key operation: released → policy → the store call; synchronous answers stay
   * synchronous, promises are mapped so they never reject.
   */
  #keyOp<T>(
    handle: number,
    action: string,
    key: string,
    call: (store: Store) => MaybePromise<T>,
    method = "",
    requestBytes = 0,
  ): Answer<T> {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    const denied = this.#deny(action, state, key);
    if (denied !== null) return denied;
    if (requestBytes > this.#maxCallBytes) return this.#requestTooLarge(state.slot, method, requestBytes);
    this.movedBytes += requestBytes;
    return this.#invoke(state.slot, call);
  }

  #invoke<T>(slot: StoreSlot, call: (store: Store) => MaybePromise<T>): Answer<T> {
    try {
      const r = call(slot.store);
      if (isPromise(r)) return r.then(undefined, (err: unknown) => this.#fail(slot, toFailure(err)));
      return r;
    } catch (err) {
      return this.#fail(slot, toFailure(err));
    }
  }

  get(handle: number, key: string): Answer<Uint8Array | undefined> {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    const denied = this.#deny("store.key.get", state, key);
    if (denied !== null) return denied;
    // The hot path: no closure. (A try costs nothing in V8 until something throws: a store
    // reached over a worker's channel throws the store's error synchronously.)
    let r: MaybePromise<Uint8Array | undefined>;
    try {
      r = state.slot.store.get(key);
    } catch (err) {
      return this.#fail(state.slot, toFailure(err));
    }
    // A synchronous answer first: isPromise's `then` lookup misses up a Uint8Array's prototypes.
    if (r === undefined) return r;
    if (r instanceof Uint8Array) {
      this.movedBytes += r.length;
      if (r.length > this.#maxCallBytes) return this.#fail(state.slot, callTooLarge("get", "answer", r.length, this.#maxCallBytes));
      return r;
    }
    // One promise per call: the answer's cap and the failure in one then.
    const max = this.#maxCallBytes;
    return r.then(
      (v) => (v !== undefined && v.length > max ? this.#fail(state.slot, callTooLarge("get", "answer", v.length, max)) : v),
      (err: unknown) => this.#fail(state.slot, toFailure(err)),
    );
  }

  getStale(handle: number, key: string): Answer<Uint8Array | StaleValue | undefined> {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    // Without stale_for it is get, at get's cost.
    if (state.slot.config.staleForMs === undefined) return this.get(handle, key);
    const denied = this.#deny("store.key.get", state, key);
    if (denied !== null) return denied;
    let r: MaybePromise<Uint8Array | StaleValue | undefined>;
    try {
      r = state.slot.store.getStale(key);
    } catch (err) {
      return this.#fail(state.slot, toFailure(err));
    }
    const max = this.#maxCallBytes;
    const capped = (v: Uint8Array | StaleValue | undefined): Uint8Array | StaleValue | undefined | OpFailure => {
      if (v === undefined) return v;
      const bytes = v instanceof Uint8Array ? v : v.stale;
      this.movedBytes += bytes.length;
      return bytes.length > max ? this.#fail(state.slot, callTooLarge("get_stale", "answer", bytes.length, max)) : v;
    };
    if (isPromise(r)) return r.then(capped, (err: unknown) => this.#fail(state.slot, toFailure(err)));
    return capped(r);
  }

  set(handle: number, key: string, value: Uint8Array, ttlMs: number): Answer<true> {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    const denied = this.#deny("store.key.set", state, key);
    if (denied !== null) return denied;
    if (key.length + value.length > this.#maxCallBytes) return this.#requestTooLarge(state.slot, "set", key.length + value.length);
    this.movedBytes += value.length;
    try {
      const r = state.slot.store.set(key, value, ttlMs, this.#share(state.slot));
      return isPromise(r) ? r.then(yes, (err: unknown) => this.#fail(state.slot, toFailure(err))) : true;
    } catch (err) {
      return this.#fail(state.slot, toFailure(err));
    }
  }

  has(handle: number, key: string): Answer<boolean> {
    return this.#keyOp(handle, "store.key.has", key, (s) => s.has(key));
  }

  delete(handle: number, key: string): Answer<boolean> {
    return this.#keyOp(handle, "store.key.delete", key, (s) => s.delete(key));
  }

  add(handle: number, key: string, value: Uint8Array, ttlMs: number): Answer<boolean> {
    return this.#keyOp(handle, "store.key.set", key, (s) => s.add(key, value, ttlMs, this.#share(this.#handles[handle]!.slot)), "add", key.length + value.length);
  }

  replace(handle: number, key: string, value: Uint8Array, ttlMs: number): Answer<boolean> {
    return this.#keyOp(
      handle,
      "store.key.set",
      key,
      (s) => s.replace(key, value, ttlMs, this.#share(this.#handles[handle]!.slot)),
      "replace",
      key.length + value.length,
    );
  }

  incr(handle: number, key: string, by: LuaNumber, init: LuaNumber, initTtlMs: number): Answer<Uint8Array> {
    return this.#keyOp(handle, "store.key.set", key, (s) => s.incr(key, by, init, initTtlMs, this.#share(this.#handles[handle]!.slot)));
  }

  ttl(handle: number, key: string): Answer<number | undefined> {
    return this.#keyOp(handle, "store.key.get", key, (s) => s.ttl(key));
  }

  expire(handle: number, key: string, ttlMs: number): Answer<boolean> {
    return this.#keyOp(handle, "store.key.set", key, (s) => s.expire(key, ttlMs));
  }

  entry(handle: number, key: string): Answer<EntryRecord | undefined> {
    const r = this.#keyOp(handle, "store.key.get", key, (s) => s.entry(key));
    const slot = this.#handles[handle]?.slot;
    if (slot === undefined) return r;
    return this.#capAnswer(slot, "entry", r, (e) => (e === undefined ? 0 : e.value.length + (e.metadata?.length ?? 0)));
  }

  put(handle: number, key: string, value: Uint8Array, options: PutOptions): Answer<true> {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    const denied = this.#deny("store.key.set", state, key);
    if (denied !== null) return denied;
    const slot = state.slot;
    const bytes = key.length + value.length + (options.metadata?.length ?? 0);
    if (bytes > this.#maxCallBytes) return this.#requestTooLarge(slot, "put", bytes);
    this.movedBytes += bytes;
    const share = this.#share(slot);
    const outcome = this.#invoke(slot, (s) => s.put(key, value, share === undefined ? options : { ...options, share }));
    const finish = (o: PutOutcome | OpFailure): true | OpFailure => {
      if (o instanceof OpFailure) return o;
      switch (o) {
        case "ok":
          return true;
        case "exists":
          return this.#fail(slot, new OpFailure(ErrorKind.ALREADY_EXISTS, `key ${quoteByteString(key)} already exists`));
        case "conflict":
          return this.#fail(
            slot,
            new OpFailure(ErrorKind.CONFLICT, `key ${quoteByteString(key)} changed: version is not ${options.ifVersion ?? ""}`, true),
          );
        case "missing":
          return this.#fail(slot, new OpFailure(ErrorKind.NOT_FOUND, `key ${quoteByteString(key)} does not exist`));
      }
    };
    return isPromise(outcome) ? outcome.then(finish) : finish(outcome);
  }

  getMany(handle: number, keys: readonly string[]): Answer<(Uint8Array | undefined)[]> {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    for (const key of keys) {
      const denied = this.#deny("store.key.get", state, key);
      if (denied !== null) return denied;
    }
    const r = this.#invoke(state.slot, (s) => s.getMany(keys));
    return this.#capAnswer(state.slot, "get_many", r, (values) => {
      let n = 0;
      for (const v of values) if (v !== undefined) n += v.length;
      return n;
    });
  }

  setMany(handle: number, entries: readonly (readonly [string, Uint8Array])[], ttlMs: number): Answer<true> {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    // Every key is checked before anything is written: one denial fails the whole call.
    for (const [key] of entries) {
      const denied = this.#deny("store.key.set", state, key);
      if (denied !== null) return denied;
    }
    let bytes = 0;
    for (const [key, value] of entries) bytes += key.length + value.length;
    if (bytes > this.#maxCallBytes) return this.#requestTooLarge(state.slot, "set_many", bytes);
    this.movedBytes += bytes;
    const r = this.#invoke(state.slot, (s) => s.setMany(entries, ttlMs, this.#share(state.slot)));
    return isPromise(r) ? r.then((v) => (v instanceof OpFailure ? v : true)) : r instanceof OpFailure ? r : true;
  }

  list(handle: number, options: ListOptions): Answer<ListPage> {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    const tooLong = tooLongFor(state.slot, "prefix", options.prefix) ?? tooLongFor(state.slot, "after", options.after ?? "");
    if (tooLong !== null) return this.#fail(state.slot, tooLong);
    this.#meta.key = undefined;
    this.#meta.prefix = options.prefix;
    const allowed = this.#decide("store.key.list", state.slot.config.id, this.#meta).allowed;
    this.#meta.prefix = undefined;
    if (!allowed) {
      return this.#fail(
        state.slot,
        new OpFailure(
          ErrorKind.PERMISSION_DENIED,
          `permission denied: store.key.list on ${state.slot.config.id} prefix ${quoteByteString(options.prefix)}`,
        ),
      );
    }
    return this.#capAnswer(state.slot, "list", this.#invoke(state.slot, (s) => s.list(options)), pageBytes);
  }

  /** A store-wide action (`store.info`, `store.flush`): the policy check on the store id. */
  #storeDenied(slot: StoreSlot, action: "store.info" | "store.flush"): OpFailure | null {
    if (this.#decide(action, slot.config.id, undefined).allowed) return null;
    return this.#fail(slot, new OpFailure(ErrorKind.PERMISSION_DENIED, `permission denied: ${action} on ${slot.config.id}`));
  }

  deleteMany(handle: number, keys: readonly string[]): Answer<number> {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    // Every key is checked before anything is deleted: one denial fails the whole call.
    for (const key of keys) {
      const denied = this.#deny("store.key.delete", state, key);
      if (denied !== null) return denied;
    }
    return this.#invoke(state.slot, (s) => s.deleteMany(keys));
  }

  flush(handle: number): Answer<number> {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    return this.#storeDenied(state.slot, "store.flush") ?? this.#invoke(state.slot, (s) => s.flush());
  }

  listCall(handle: number, key: string, call: ListCall): Answer<ListAnswer> {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    const reads = call.op === "length" || call.op === "range";
    const denied = this.#deny(reads ? "store.key.get" : "store.key.set", state, key);
    if (denied !== null) return denied;
    const slot = state.slot;
    switch (call.op) {
      case "push": {
        let bytes = key.length;
        for (const value of call.values) bytes += value.length;
        if (bytes > this.#maxCallBytes) return this.#requestTooLarge(slot, call.end === "left" ? "lpush" : "rpush", bytes);
        const share = this.#share(slot);
        return this.#invoke(slot, (s) => collectionsOf(s).listPush(key, call.end, call.values, share));
      }
      // Not capped: the elements are gone from the list once popped (the Lua side bounds the count).
      case "pop":
        return this.#invoke(slot, (s) => collectionsOf(s).listPop(key, call.end, call.count));
      case "length":
        return this.#invoke(slot, (s) => collectionsOf(s).listLength(key));
      case "range":
        return this.#capAnswer(slot, "lrange", this.#invoke(slot, (s) => collectionsOf(s).listRange(key, call.start, call.stop)), valuesBytes);
      case "trim":
        return this.#invoke(slot, (s) => collectionsOf(s).listTrim(key, call.start, call.stop));
    }
  }

  zsetCall(handle: number, key: string, call: ZsetCall): Answer<ZsetAnswer> {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    const writes = call.op === "add" || call.op === "incr" || call.op === "remove";
    const denied = this.#deny(writes ? "store.key.set" : "store.key.get", state, key);
    if (denied !== null) return denied;
    const slot = state.slot;
    switch (call.op) {
      case "add": {
        let bytes = key.length;
        for (const e of call.entries) bytes += e.member.length + SCORE_BYTES;
        if (bytes > this.#maxCallBytes) return this.#requestTooLarge(slot, "zadd", bytes);
        const share = this.#share(slot);
        return this.#invoke(slot, (s) => collectionsOf(s).zsetAdd(key, call.entries, share));
      }
      case "incr": {
        const share = this.#share(slot);
        return this.#invoke(slot, (s) => collectionsOf(s).zsetIncr(key, call.member, call.by, share));
      }
      case "score":
        return this.#invoke(slot, (s) => collectionsOf(s).zsetScore(key, call.member));
      case "rank":
        return this.#invoke(slot, (s) => collectionsOf(s).zsetRank(key, call.member, call.reverse));
      case "range":
        return this.#capAnswer(slot, "zrange", this.#invoke(slot, (s) => collectionsOf(s).zsetRange(key, call.range)), entriesBytes);
      case "remove":
        return this.#invoke(slot, (s) => collectionsOf(s).zsetRemove(key, call.members));
      case "card":
        return this.#invoke(slot, (s) => collectionsOf(s).zsetCard(key));
    }
  }

  atomic(handle: number, write: AtomicWrite): Answer<AtomicOutcome> {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    const slot = state.slot;
    let bytes = 0;
    for (const [key] of write.checks) {
      const denied = this.#deny("store.key.get", state, key);
      if (denied !== null) return denied;
      bytes += key.length;
    }
    for (const [key, value] of write.set) {
      const denied = this.#deny("store.key.set", state, key);
      if (denied !== null) return denied;
      bytes += key.length + value.length;
    }
    for (const [key] of write.incr) {
      const denied = this.#deny("store.key.set", state, key);
      if (denied !== null) return denied;
      bytes += key.length;
    }
    for (const key of write.delete) {
      const denied = this.#deny("store.key.delete", state, key);
      if (denied !== null) return denied;
      bytes += key.length;
    }
    if (bytes > this.#maxCallBytes) return this.#requestTooLarge(slot, "atomic", bytes);
    const share = this.#share(slot);
    const r = this.#invoke(slot, (s) => atomicOf(s).atomic(write, share));
    const counted = (o: AtomicOutcome | OpFailure): AtomicOutcome | OpFailure => {
      if (!(o instanceof OpFailure) && !o.ok) slot.counters.note(ErrorKind.CONFLICT);
      return o;
    };
    return isPromise(r) ? r.then(counted) : counted(r);
  }

  info(handle: number): Answer<StoreInfoAnswer> {
    const state = this.#state(handle);
    if (state === null) return RELEASED;
    const slot = state.slot;
    if (!this.#decide("store.info", slot.config.id, undefined).allowed) {
      return this.#fail(slot, new OpFailure(ErrorKind.PERMISSION_DENIED, `permission denied: store.info on ${slot.config.id}`));
    }
    const r = this.#invoke(slot, (s) => s.info(this.#share(slot)));
    const finish = (i: Awaited<ReturnType<Store["info"]>> | OpFailure): StoreInfoAnswer | OpFailure =>
      i instanceof OpFailure ? i : { id: slot.config.id, kind: slot.config.kind, ...i };
    return isPromise(r) ? r.then(finish) : finish(r);
  }
}
