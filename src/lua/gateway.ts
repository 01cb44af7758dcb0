/**
 * What a running script may ask of the trusted side. The Lua `store` module talks only to a
 * RunGateway: in inline mode it is a {@link LocalGateway} over in-process stores; in worker
 * mode the same calls cross a SharedArrayBuffer channel and a LocalGateway answers on the
 * trusted side. The gateway checks the policy with the actor bound to the run, so a script
 * can never name another actor.
 */
import { ErrorKind } from "../errors.js";
import type {
  EntryRecord,
  ListEnd,
  ListOptions,
  ListPage,
  LuaNumber,
  MaybePromise,
  AtomicOutcome,
  AtomicWrite,
  PutOptions,
  StaleValue,
  StoreInfo,
  ZsetEntry,
  ZsetRange,
} from "../store/store.js";

/** An expected failure of a gateway call; Lua sees it as `nil, err`. Not an Error: no stack capture. */
export class OpFailure {
  readonly kind: ErrorKind;
  readonly message: string;
  readonly retryable: boolean;
  constructor(kind: ErrorKind, message: string, retryable = false) {
    this.kind = kind;
    this.message = message;
    this.retryable = retryable;
  }
}

/**
 * A store call whose request or answer is larger than the run's `maxCallBytes`: refused whole
 * (Invalid), before anything is written or after the store answered and before the answer is
 * copied anywhere.
 */
export function callTooLarge(
  method: string,
  part: "request" | "answer" | "keys",
  bytes: number,
  maxCallBytes: number,
  partial = false,
): OpFailure {
  const size = partial ? `over ${bytes} bytes` : `${bytes} bytes`;
  return new OpFailure(ErrorKind.INVALID, `${method}: ${part} of ${size} is more than one store call may carry (maxCallBytes ${maxCallBytes})`);
}

/** What the script learns when it acquires a handle. */
export interface HandleInfo {
  /** Run-local handle number, valid until released or until the run ends. */
  handle: number;
  storeId: string;
  kind: string;
  maxKeyLength: number;
  maxValueSize: number;
}

/** Policy actions a key operation is checked against. */
export type KeyAction = "store.key.get" | "store.key.set" | "store.key.has" | "store.key.delete";

export type Answer<T> = MaybePromise<T | OpFailure>;

export interface StoreInfoAnswer extends StoreInfo {
  id: string;
  kind: string;
}

/**
 * One list call of a handle (the Store's list methods, see store.ts). Checked as `store.key.get`
 * (length, range) or `store.key.set` (push, pop, trim).
 */
export type ListCall =
  | { op: "push"; end: ListEnd; values: readonly Uint8Array[] }
  | { op: "pop"; end: ListEnd; count: number }
  | { op: "length" }
  | { op: "range"; start: number; stop: number }
  | { op: "trim"; start: number; stop: number };

/** What a ListCall answers: a length (push, length, trim) or elements (pop, range). */
export type ListAnswer = number | Uint8Array[];

/**
 * One sorted-set call of a handle (the Store's zset methods, see store.ts). Checked as
 * `store.key.get` (score, rank, range, card) or `store.key.set` (add, incr, remove).
 */
export type ZsetCall =
  | { op: "add"; entries: readonly ZsetEntry[] }
  | { op: "incr"; member: string; by: number }
  | { op: "score"; member: string }
  | { op: "rank"; member: string; reverse: boolean }
  | { op: "range"; range: ZsetRange }
  | { op: "remove"; members: readonly string[] }
  | { op: "card" };

/** What a ZsetCall answers: a count or score (undefined: no such member), or entries (range). */
export type ZsetAnswer = number | undefined | ZsetEntry[];

export interface RunGateway {
  /** Policy `store.get` on `storeId`, then a slot from the entry's pool. */
  acquire(storeId: string): Answer<HandleInfo>;
  /** Gives the handle's slot back; releasing twice is a no-op. */
  release(handle: number): void;
  /** Only the policy check of a key operation (for calls refused before reaching the store). */
  check(handle: number, action: KeyAction, key: string): OpFailure | null;
  /** Policy checks for every key of a multi-key call: the first denial, or null. */
  checkMany(handle: number, action: KeyAction, keys: readonly string[]): OpFailure | null;
  /** Counts an error found before the call reached the gateway (bad key, value, TTL). */
  noteError(handle: number, kind: ErrorKind): void;

  get(handle: number, key: string): Answer<Uint8Array | undefined>;
  /** `get` that also answers a stale copy (see Store.getStale); checked as `store.key.get`. */
  getStale(handle: number, key: string): Answer<Uint8Array | StaleValue | undefined>;
  set(handle: number, key: string, value: Uint8Array, ttlMs: number): Answer<true>;
  has(handle: number, key: string): Answer<boolean>;
  delete(handle: number, key: string): Answer<boolean>;
  add(handle: number, key: string, value: Uint8Array, ttlMs: number): Answer<boolean>;
  replace(handle: number, key: string, value: Uint8Array, ttlMs: number): Answer<boolean>;
  incr(handle: number, key: string, by: LuaNumber, init: LuaNumber, initTtlMs: number): Answer<Uint8Array>;
  ttl(handle: number, key: string): Answer<number | undefined>;
  expire(handle: number, key: string, ttlMs: number): Answer<boolean>;
  getMany(handle: number, keys: readonly string[]): Answer<(Uint8Array | undefined)[]>;
  setMany(handle: number, entries: readonly (readonly [string, Uint8Array])[], ttlMs: number): Answer<true>;
  list(handle: number, options: ListOptions): Answer<ListPage>;
  entry(handle: number, key: string): Answer<EntryRecord | undefined>;
  /** Conditional write; a refused condition comes back as an OpFailure (AlreadyExists, Conflict, NotFound). */
  put(handle: number, key: string, value: Uint8Array, options: PutOptions): Answer<true>;
  info(handle: number): Answer<StoreInfoAnswer>;
  /** Policy `store.flush` on the store, then every key removed; answers how many live keys went. */
  flush(handle: number): Answer<number>;
  /** Every key checked as `store.key.delete` first, then all deleted at once; answers how many were live. */
  deleteMany(handle: number, keys: readonly string[]): Answer<number>;
  /** A list call on `key`; see ListCall. */
  listCall(handle: number, key: string, call: ListCall): Answer<ListAnswer>;
  /** A sorted-set call on `key`; see ZsetCall. */
  zsetCall(handle: number, key: string, call: ZsetCall): Answer<ZsetAnswer>;
  /**
   * A multi-key transaction: every key's policy first (checks as `store.key.get`, set and incr as
   * `store.key.set`, delete as `store.key.delete`), then the store applies all or nothing. A failed
   * check is an answer (`ok: false`), counted as a CONFLICT error.
   */
  atomic(handle: number, write: AtomicWrite): Answer<AtomicOutcome>;

  /** Releases every handle the run still holds; returns how many. */
  releaseAll(): number;
}
