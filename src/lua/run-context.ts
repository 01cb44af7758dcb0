/** Everything one run's Lua side needs: limits, counters, the gateway, and the kill switch. */
import type { lua_State } from "fengari";
import type { Clock } from "../clock.js";
import type { ErrorKind } from "../errors.js";
import type { RunGateway } from "../runtime/gateway.js";
import type { RunLimits } from "./limits.js";

export interface KillReason {
  kind: ErrorKind;
  message: string;
}

/** A host call waiting on a promise: the run loop awaits it, then `push` puts the results on the stack. */
export interface PendingWait {
  promise: Promise<unknown>;
  push(L: lua_State, value: unknown): number;
}

export class RunContext {
  readonly runId: string;
  readonly limits: RunLimits;
  readonly clock: Clock;
  readonly gateway: RunGateway;
  readonly startedAt: number;
  /** performance.now() value after which the run is stopped with Timeout. */
  readonly deadline: number;
  instructions = 0;
  storeOps = 0;
  outputBytes = 0;
  readonly output: string[] = [];
  readonly onOutput: ((text: string) => void) | undefined;
  /** Set once a limit is hit; from then on every hook, pcall and resume re-raises. */
  killed: KillReason | null = null;
  /** A host function is waiting on a promise and yielded to the run loop. */
  pending: PendingWait | null = null;
  /** The thread running the main chunk (a coroutine.yield there is an error). */
  mainThread: lua_State | null = null;

  constructor(options: {
    runId: string;
    limits: RunLimits;
    clock: Clock;
    gateway: RunGateway;
    onOutput?: (text: string) => void;
  }) {
    this.runId = options.runId;
    this.limits = options.limits;
    this.clock = options.clock;
    this.gateway = options.gateway;
    this.onOutput = options.onOutput;
    this.startedAt = performance.now();
    this.deadline = this.startedAt + options.limits.timeoutMs;
  }
}
