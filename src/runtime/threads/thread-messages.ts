/** Messages between the host thread, the store thread and the Lua workers (control only: store calls use the channel). */
import type { MessagePort } from "node:worker_threads";
import { ErrorKind, isErrorKind, LuastoreError, OptionsError, StoreError } from "../../errors.js";
import type { RunLimits } from "../../lua/limits.js";
import type { PolicyDocument, Actor } from "../../policy/types.js";
import type { RegistryConfig } from "../../registry/types.js";
import type { RunResult } from "../run-types.js";
import type { SharedCountersBuffers } from "../worker/shared-counters.js";

/** What the store thread starts from. */
export interface StoreThreadData {
  registry: RegistryConfig;
  bell: SharedArrayBuffer;
  /** The host clock's time in ms (Float64 slot 0) when the host clock is not the system clock. */
  clockCell: SharedArrayBuffer | null;
  sweepTimers: boolean;
  /** Per registry entry, the shared-memory zone of a memory store (null: the store lives here). */
  zones: (SharedArrayBuffer | null)[];
  port: MessagePort;
}

/** Host → store thread, over the control port (each followed by a bump of Bell.CONTROL). */
export type StoreControl =
  /** `port`: the store thread's end of the channel's port for large messages (transferred). */
  | { type: "open"; channel: number; sab: SharedArrayBuffer; port: MessagePort }
  | { type: "call"; id: number; method: StoreThreadMethod; args: unknown[] };

/**
 * Calls answered with a reply: `closeChannel` (a worker is gone: stop serving its channel),
 * `metrics` (every store's own counters, size and bytes), `store` (a RemoteStore call),
 * `shutdown` (close every store).
 */
export type StoreThreadMethod = "closeChannel" | "metrics" | "store" | "shutdown";

/** Store thread → host. */
export type StoreThreadEvent =
  | { type: "ready" }
  | { type: "failed"; error: SerializedError }
  | { type: "reply"; id: number; ok: true; value: unknown }
  | { type: "reply"; id: number; ok: false; error: SerializedError };

/** What a Lua worker starts from. */
export interface LuaWorkerData {
  registry: RegistryConfig;
  /** As given to createHost: a path or documents (a compiled engine cannot be cloned); the worker compiles them. */
  policies: string | PolicyDocument | readonly PolicyDocument[];
  /** The host's shared counters (pools, gateway and store counters) and this worker's region of them. */
  counters: SharedCountersBuffers;
  workerSlot: number;
  /** This worker's audit ring (null: auditing is off). */
  auditRing: SharedArrayBuffer | null;
  /** Per registry entry, the shared-memory zone of a memory store, which the worker attaches to. */
  zones: (SharedArrayBuffer | null)[];
  channel: SharedArrayBuffer;
  /** The worker's end of its channel's port for large messages. */
  port: MessagePort;
  bell: SharedArrayBuffer;
  clockCell: SharedArrayBuffer | null;
  /** Configured Lua modules: name → source. */
  modules: Record<string, string>;
  /** The worker's heap limit in MiB (a run's maxMemoryMb above it is capped to it). */
  heapMb: number;
  /** Bytes of source the worker's compile cache holds. */
  compileCacheBytes: number;
  /** The nice value the worker sets on its thread at start (0: the host's priority). */
  nice: number;
}

/** Host → Lua worker. */
export type WorkerCommand =
  | {
      type: "run";
      runSeq: number;
      runId: string;
      /** The run's actor, fixed by the host: the worker binds the policy to it, and nothing in the run can change it. */
      actor: Actor;
      source: string | Uint8Array;
      chunkName: string;
      args: unknown[];
      limits: RunLimits;
      streamOutput: boolean;
    }
  | { type: "wake"; id: number };

/** Lua worker → host. */
export type WorkerEvent =
  | { type: "ready" }
  | { type: "output"; runSeq: number; text: string }
  | { type: "result"; runSeq: number; result: RunResult }
  | { type: "sleep"; id: number; ms: number }
  /** The audit ring is full: drain it. */
  | { type: "audit" };

export interface SerializedError {
  name: string;
  message: string;
  kind?: string;
  retryable?: boolean;
}

export function serializeError(err: unknown): SerializedError {
  if (err instanceof StoreError) return { name: err.name, message: err.message, kind: err.kind, retryable: err.retryable };
  if (err instanceof Error) return { name: err.name, message: err.message };
  return { name: "Error", message: String(err) };
}

/** Rebuilds a typed error on the host side. */
export function deserializeError(e: SerializedError): Error {
  if (e.name === "StoreError") {
    return new StoreError(isErrorKind(e.kind) ? e.kind : ErrorKind.INTERNAL, e.message, { retryable: e.retryable ?? false });
  }
  if (e.name === "OptionsError") return new OptionsError(e.message);
  if (e.name === "LuastoreError") return new LuastoreError("STORE_ERROR", e.message);
  const err = new Error(e.message);
  err.name = e.name;
  return err;
}
