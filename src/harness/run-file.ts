/**
 * One test file = one Lua run on a Host of its own: fresh stores (./stand-in-stores.ts), a virtual
 * clock, and the `test` module. The file body declares its tests; the harness driver then runs
 * them (or only lists them) and reports each result as it finishes.
 */
import { readFileSync } from "node:fs";
import { ManualClock } from "../clock.js";
import { createHost, type HostOptions } from "../host.js";
import type { RunLimits } from "../lua/limits.js";
import type { Actor } from "../policy/types.js";
import { findScriptModules, type TestFile } from "./discover.js";
import type { CoverageCollector } from "./coverage.js";
import { RealTestClock, standInRegistry } from "./stand-in-stores.js";
import type { FileResult, TestResult } from "./results.js";
import { FileSession, HARNESS_MODULE, MAIN_CHUNK, MAIN_CHUNK_NAME, type ListedTest } from "./test-module.js";

export interface HarnessOptions {
  /** Path to registry.yaml, or registry documents (as for createHost). */
  registry: HostOptions["registry"];
  /** Policy directory or file, or policy documents (as for createHost). */
  policies: HostOptions["policies"];
  /** Who the tests run as, until `test.as` says otherwise. @default { id: "service:test", meta: {} } */
  actor?: Actor;
  /** Limits for each file's run, over {@link TEST_LIMITS}. */
  limits?: Partial<RunLimits>;
  /** Extra Lua modules by name → source (as for createHost). */
  modules?: Readonly<Record<string, string>>;
  /** Runs only tests whose `file > describe > test` name matches. */
  filter?: RegExp;
  /** Stops at the first failure. */
  bail?: boolean;
  /** Where virtual time starts, in ms since the epoch. @default VIRTUAL_EPOCH_MS (2026-01-01T00:00:00Z) */
  clockStart?: number;
  /** Directory report paths are relative to. @default process.cwd() */
  cwd?: string;
  /**
   * Run on the registry's configured backends (Redis, SQLite files) instead of fresh in-memory
   * stand-ins with the same limits. Their TTLs then follow each backend's clock (see the README).
   * @default false
   */
  realStores?: boolean;
  /** Collects line coverage of the test files and the modules they require, over every file run with it. */
  coverage?: CoverageCollector;
}

/** A whole file is one run: far more room than a production script gets. */
export const TEST_LIMITS: Readonly<Partial<RunLimits>> = Object.freeze({
  maxInstructions: 1e9,
  timeoutMs: 60_000,
  maxStoreOps: 1e9,
  // Many tests share the file's run and may each keep a handle: the pools still bound them.
  maxHandles: 1e6,
});

/** Virtual time starts at the same instant in every file, so runs are reproducible. */
export const VIRTUAL_EPOCH_MS = Date.UTC(2026, 0, 1);

export const DEFAULT_TEST_ACTOR: Actor = Object.freeze({ id: "service:test", meta: Object.freeze({}) });

const BUILTIN_MODULES = ["store", "errors", "time", "test", HARNESS_MODULE];

export interface FileHooks {
  onTestResult?: (result: TestResult) => void;
  shouldStop?: () => boolean;
}

/** What a listing run finds: the tests a file declares, or why it could not declare them. */
export interface FileListing {
  file: string;
  tests: ListedTest[];
  error?: FileResult["error"];
}

async function runSession(file: TestFile, options: HarnessOptions, mode: "run" | "list", hooks: FileHooks): Promise<FileSession> {
  const clock = options.realStores
    ? new RealTestClock()
    : new ManualClock(options.clockStart ?? VIRTUAL_EPOCH_MS, { autoAdvance: true });
  const host = createHost({
    registry: options.realStores ? options.registry : standInRegistry(options.registry),
    policies: options.policies,
    // The `test` module is host-side JavaScript, and test.as rebinds the run's local gateway.
    isolation: "inline",
    clock,
    sweepTimers: false,
    limits: { ...TEST_LIMITS, ...options.limits },
    ...(options.modules ? { modules: options.modules } : {}),
  });
  try {
    let source: Uint8Array;
    try {
      source = new Uint8Array(readFileSync(file.path));
    } catch (err) {
      source = new Uint8Array();
      const session = new FileSession({ file: file.display, source, mode, host, clock, scriptModules: new Map() });
      session.error = { kind: "load", message: `cannot read ${file.display}: ${(err as NodeJS.ErrnoException).code ?? String(err)}` };
      return session;
    }
    const reserved = new Set([...BUILTIN_MODULES, ...Object.keys(options.modules ?? {})]);
    const session = new FileSession({
      file: file.display,
      source,
      mode,
      host,
      clock,
      scriptModules: findScriptModules(file.path, options.cwd ?? process.cwd(), reserved),
      ...(options.filter ? { filter: options.filter } : {}),
      ...(options.coverage && mode === "run" ? { coverage: options.coverage } : {}),
      ...hooks,
    });
    const result = await host.run(MAIN_CHUNK, {
      actor: options.actor ?? DEFAULT_TEST_ACTOR,
      chunkName: MAIN_CHUNK_NAME,
      modules: session.modules(),
      onOutput: (text) => session.print(text),
    });
    session.settle(result);
    return session;
  } finally {
    await host.close();
  }
}

/** Runs one test file's tests and reports each as it finishes. */
export async function runTestFile(file: TestFile, options: HarnessOptions, hooks: FileHooks = {}): Promise<FileResult> {
  return (await runSession(file, options, "run", hooks)).result();
}

/** Loads a test file and lists its tests without running them (on fresh stores of its own). */
export async function listTestFile(file: TestFile, options: HarnessOptions): Promise<FileListing> {
  const session = await runSession(file, options, "list", {});
  const listing: FileListing = { file: file.display, tests: session.listed };
  if (session.error !== undefined) listing.error = session.error;
  return listing;
}
