/** luastore's public API. */
export { createHost, Host, type HostOptions, type Isolation, type StoreMetrics } from "./host.js";
export type { AuditOptions, AuditRecord } from "./runtime/audit.js";
export { HostStore, type SetOptions } from "./host-store.js";
export { systemClock, ManualClock, type Clock } from "./clock.js";
export {
  ErrorKind,
  HOST_VERDICT_KINDS,
  LuastoreError,
  RegistryError,
  PolicyError,
  OptionsError,
  StoreError,
  HostClosedError,
  formatProblems,
  type ErrorCode,
  type Problem,
  type RunFailure,
  type SourcePosition,
} from "./errors.js";
export { DEFAULT_LIMITS, type RunLimits } from "./lua/limits.js";
export type { RunOptions, RunResult, RunStats } from "./runtime/run-types.js";
export type { PoolStats } from "./pool/handle-pool.js";
export type { WorkerPoolStats, WorkerStats } from "./runtime/worker/worker-pool.js";
export type { StoreStats } from "./store/store.js";
export type { Actor, Decision, Explanation } from "./policy/types.js";
export { loadRegistry } from "./registry/index.js";
export { loadPolicies, parsePolicies, compilePolicies } from "./policy/index.js";
export type { PolicyDocument } from "./policy/types.js";
export type { RegistryDocument, RegistryConfig, StoreConfig } from "./registry/types.js";
