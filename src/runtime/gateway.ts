/**
 * What a running script may ask of the trusted side. The Lua `store` module talks only to a
 * RunGateway: in inline mode it is a {@link LocalGateway} over in-process stores; in worker
 * mode the same calls cross a SharedArrayBuffer channel and a LocalGateway answers on the
 * trusted side. The gateway checks the policy with the actor bound to the run, so a script
 * can never name another actor.
 */
import type { ErrorKind } from "../errors.js";
import type { MaybePromise } from "../store/store.js";

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

/** What the script learns when it acquires a handle. */
export interface HandleInfo {
  /** Run-local handle number, valid until released or until the run ends. */
  handle: number;
  storeId: string;
  maxKeyLength: number;
  maxValueSize: number;
}

/** Policy actions a key operation is checked against. */
export type KeyAction = "store.key.get" | "store.key.set" | "store.key.has" | "store.key.delete";

export interface RunGateway {
  /** Policy `store.get` on `storeId`, then a slot from the entry's pool. */
  acquire(storeId: string): MaybePromise<HandleInfo | OpFailure>;
  /** Gives the handle's slot back; releasing twice is a no-op. */
  release(handle: number): void;
  /** Only the policy check of a key operation (used when a value is refused before sending). */
  check(handle: number, action: KeyAction, key: string): OpFailure | null;
  get(handle: number, key: string): MaybePromise<Uint8Array | undefined | OpFailure>;
  set(handle: number, key: string, value: Uint8Array, ttlMs: number): MaybePromise<true | OpFailure>;
  has(handle: number, key: string): MaybePromise<boolean | OpFailure>;
  delete(handle: number, key: string): MaybePromise<boolean | OpFailure>;
  /** Releases every handle the run still holds; returns how many. */
  releaseAll(): number;
}
