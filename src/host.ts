/**
 * The Host: a validated registry made into stores and pools, a compiled policy set, and
 * runs. Data flows one way: YAML → validated config → Host → a run → Lua.
 */
import { lua, lauxlib, to_luastring } from "fengari";
import { byteStringFromText } from "./bytes.js";
import { systemClock, type Clock } from "./clock.js";
import { HostClosedError, OptionsError, StoreError, ErrorKind } from "./errors.js";
import { resolveLimits, validateLimits, type RunLimits } from "./lua/limits.js";
import { openErrors } from "./lua/modules/errors.js";
import { openStore } from "./lua/modules/store.js";
import { openTime } from "./lua/modules/time.js";
import type { ModuleOpener } from "./lua/sandbox.js";
import { HandlePool, type PoolStats } from "./pool/handle-pool.js";
import { loadPolicies } from "./policy/index.js";
import type { Actor, PolicyDocument, PolicyEngine } from "./policy/types.js";
import { loadRegistry } from "./registry/index.js";
import type { RegistryConfig, RegistryDocument } from "./registry/types.js";
import { runInline } from "./runtime/inline.js";
import { LocalGateway, type StoreSlot } from "./runtime/local-gateway.js";
import type { RunOptions, RunResult } from "./runtime/run-types.js";
import { createStore } from "./store/create-store.js";
import type { StoreStats } from "./store/store.js";
import { HostStore } from "./host-store.js";
import { AuditLog, type AuditOptions } from "./runtime/audit.js";

export interface HostOptions {
  /** Path to registry.yaml, or registry documents as objects. */
  registry: string | RegistryDocument | readonly RegistryDocument[];
  /** Policy directory or file path, or policy documents as objects. */
  policies: string | PolicyDocument | readonly PolicyDocument[];
  /** Limits for every run; a run may override them. Defaults: see DEFAULT_LIMITS. */
  limits?: Partial<RunLimits>;
  /** Where time comes from (stores' TTLs, `time.now`, `time.sleep`). @default systemClock */
  clock?: Clock;
  /** Extra Lua modules scripts may `require`, by name → Lua source. */
  modules?: Readonly<Record<string, string>>;
  /** Start stores' periodic sweep timers. @default true */
  sweepTimers?: boolean;
  /** Record every policy decision as JSON lines (file) or to a callback. Off by default. */
  audit?: AuditOptions;
}

/** Per-store counters, as `host.metrics()` and `luastore run --stats` report them. */
export interface StoreMetrics extends StoreStats {
  id: string;
  kind: string;
  /** Calls refused by policy. */
  denied: number;
  /** Failed calls by error kind (denials included). */
  errors: Record<string, number>;
}

const BUILTIN_MODULES = new Map<string, ModuleOpener>([
  ["store", openStore],
  ["errors", openErrors],
  ["time", openTime],
]);

/** An opener for a configured Lua module: compiles its source in the run's state and calls it. */
function luaModuleOpener(name: string, source: string): ModuleOpener {
  const chunk = to_luastring(source);
  return (L) => {
    const status = lauxlib.luaL_loadbufferx(L, chunk, chunk.length, `=${name}`, "t");
    if (status !== lua.LUA_OK) return lua.lua_error(L);
    lua.lua_call(L, 0, 1);
    return 1;
  };
}

function normalizeActor(actor: Actor | undefined): Actor {
  if (actor === undefined || typeof actor !== "object" || actor === null) {
    throw new OptionsError("run: options.actor { id, meta } is required");
  }
  if (typeof actor.id !== "string" || actor.id.length === 0) throw new OptionsError("run: actor.id must be a non-empty string");
  const meta: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(actor.meta ?? {})) {
    if (typeof v === "string") meta[k] = byteStringFromText(v);
    else if (typeof v === "number" || typeof v === "boolean") meta[k] = v;
    else throw new OptionsError(`run: actor.meta.${k} must be a string, number or boolean`);
  }
  return { id: byteStringFromText(actor.id), meta };
}

export class Host {
  readonly registry: RegistryConfig;
  readonly policy: PolicyEngine;
  readonly clock: Clock;
  readonly limits: Readonly<RunLimits>;
  readonly #slots = new Map<string, StoreSlot>();
  readonly #modules: ReadonlyMap<string, ModuleOpener>;
  readonly #audit: AuditLog | null;
  #runCounter = 0;
  #active = 0;
  #closed = false;

  constructor(options: HostOptions) {
    if (typeof options !== "object" || options === null) throw new OptionsError("createHost: options object required");
    this.clock = options.clock ?? systemClock;
    this.limits = resolveLimits(validateLimits(options.limits, "createHost"));
    this.registry = loadRegistry(options.registry);
    this.policy = loadPolicies(options.policies);
    const modules = new Map(BUILTIN_MODULES);
    for (const [name, source] of Object.entries(options.modules ?? {})) {
      if (modules.has(name)) throw new OptionsError(`createHost: module '${name}' would shadow a built-in module`);
      if (typeof source !== "string") throw new OptionsError(`createHost: module '${name}' must be Lua source text`);
      modules.set(name, luaModuleOpener(name, source));
    }
    this.#modules = modules;
    for (const config of this.registry.entries) {
      const store = createStore(config, { clock: this.clock, sweepTimers: options.sweepTimers ?? true, baseDir: this.registry.baseDir });
      this.#slots.set(config.id, {
        store,
        pool: new HandlePool(config.id, config.pool.max),
        config,
        counters: { denied: 0, errors: {} },
      });
    }
    this.#audit = options.audit ? new AuditLog(options.audit) : null;
  }

  /** Runs a script and resolves to its result; script errors are in the result, not thrown. */
  async run(source: string | Uint8Array, options: RunOptions): Promise<RunResult> {
    if (this.#closed) throw new HostClosedError();
    const actor = normalizeActor(options?.actor);
    const limits = resolveLimits(this.limits, validateLimits(options.limits, "run"));
    const runId = `run-${++this.#runCounter}`;
    const gateway = new LocalGateway(this.#slots, this.policy.bind(actor), {
      runId,
      audit: this.#audit?.write ?? null,
      now: () => this.clock.now(),
    });
    this.#active++;
    try {
      return await runInline({
        runId,
        source,
        chunkName: options.chunkName ?? "=script",
        args: options.args ?? [],
        limits,
        clock: this.clock,
        gateway,
        modules: options.modules ? new Map([...this.#modules, ...options.modules]) : this.#modules,
        ...(options.onOutput ? { onOutput: options.onOutput } : {}),
      });
    } finally {
      this.#active--;
    }
  }

  /** Host-side access to a store, bypassing policy (for the platform itself). */
  store(id: string): HostStore {
    if (this.#closed) throw new HostClosedError();
    const slot = this.#slots.get(id);
    if (slot === undefined) throw new StoreError(ErrorKind.NOT_FOUND, `no store '${id}' in the registry`);
    return new HostStore(slot.store);
  }

  /** Pool statistics per registry entry. */
  pools(): PoolStats[] {
    return [...this.#slots.values()].map((s) => s.pool.stats());
  }

  /** Per-store counters: hits, misses, sets, deletes, expired, evicted, denied, errors by kind, size, bytes. */
  async metrics(): Promise<StoreMetrics[]> {
    const out: StoreMetrics[] = [];
    for (const [id, slot] of this.#slots) {
      const stats = await slot.store.stats();
      out.push({ id, kind: slot.config.kind, ...stats, denied: slot.counters.denied, errors: { ...slot.counters.errors } });
    }
    return out;
  }

  /** Stops timers and closes stores. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const slot of this.#slots.values()) await slot.store.close();
    this.#audit?.close();
  }
}

/** Loads registry and policies (throwing RegistryError / PolicyError on any problem) and builds a Host. */
export function createHost(options: HostOptions): Host {
  return new Host(options);
}
