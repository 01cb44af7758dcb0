/**
 * `luastore/testing`: Lua test files inside a vitest suite, one vitest test per Lua test.
 *
 * ```ts
 * // test/lua-scripts.test.ts
 * import { defineLuaTests } from "luastore/testing";
 * await defineLuaTests("lua/", { registry: "registry.yaml", policies: "policies" });
 * ```
 *
 * vitest wants its tests declared while the test module loads, but a Lua run is asynchronous.
 * So the helper is awaited at the top level of the test module (ES modules allow it): it first
 * lists each file's tests with a listing run (the file body only, on throwaway stores), then
 * declares a vitest `describe` per file and per Lua `describe`, and an `it` per Lua test. When
 * the suite runs, a `beforeAll` runs the whole file once, on fresh stores as `luastore test`
 * does, and each `it` reports its Lua test's result.
 */
import { resolve } from "node:path";
import { beforeAll, describe, it } from "vitest";
import { discoverTestFiles, type TestFile } from "./discover.js";
import { fileErrorTitle } from "./reporters/reporter.js";
import type { FileError, FileResult, TestFailure, TestResult } from "./results.js";
import { listTestFile, runTestFile, type FileListing, type HarnessOptions } from "./run-file.js";

export interface LuaTestsOptions extends Omit<HarnessOptions, "bail"> {
  /** Milliseconds one file may take to run (the vitest hook timeout). @default 60_000 */
  timeout?: number;
}

/** A Lua test's failure as a vitest error; its stack points at the Lua line. */
export class LuaTestError extends Error {
  constructor(message: string, location: { file: string; line: number } | undefined, cwd: string) {
    super(message);
    this.name = "LuaTestError";
    this.stack = `${this.name}: ${message}${location ? `\n    at ${resolve(cwd, location.file)}:${location.line}:1` : ""}`;
  }
}

function failureError(failure: TestFailure | FileError, cwd: string, prefix = ""): LuaTestError {
  let message = prefix + failure.message;
  if ("hook" in failure && failure.hook) message = `${failure.hook} hook failed: ${message}`;
  if (failure.traceback) message += `\n${failure.traceback}`;
  return new LuaTestError(message, failure.location, cwd);
}

type Node = { kind: "test"; name: string; key: string; skip: boolean } | { kind: "suite"; name: string; children: Node[] };

/** A key per test that survives duplicate names: the path plus its occurrence. */
function keyer(): (path: readonly string[]) => string {
  const seen = new Map<string, number>();
  return (path) => {
    const base = path.join("\u0000");
    const n = (seen.get(base) ?? 0) + 1;
    seen.set(base, n);
    return `${base}\u0000#${n}`;
  };
}

/** The listed tests as a tree of describes, in declaration order. */
function treeOf(listing: FileListing): Node[] {
  const root: Node[] = [];
  const key = keyer();
  for (const test of listing.tests) {
    let children = root;
    for (const name of test.path.slice(0, -1)) {
      const last = children[children.length - 1];
      if (last?.kind === "suite" && last.name === name) children = last.children;
      else {
        const suite: Node = { kind: "suite", name, children: [] };
        children.push(suite);
        children = suite.children;
      }
    }
    children.push({ kind: "test", name: test.path[test.path.length - 1] ?? "", key: key(test.path), skip: test.skip });
  }
  return root;
}

function declareFile(file: TestFile, listing: FileListing, options: LuaTestsOptions, cwd: string): void {
  describe(file.display, () => {
    if (listing.error !== undefined) {
      const error = listing.error;
      it(`${fileErrorTitle(error.kind)}`, () => {
        throw failureError(error, cwd);
      });
      return;
    }
    let result: FileResult | undefined;
    const byKey = new Map<string, TestResult>();
    beforeAll(async () => {
      result = await runTestFile(file, options);
      const key = keyer();
      for (const t of result.tests) byKey.set(key(t.path), t);
    }, options.timeout ?? 60_000);

    const check = (node: Extract<Node, { kind: "test" }>) => (): void => {
      if (result === undefined) throw new LuaTestError("the Lua file did not run", undefined, cwd);
      const t = byKey.get(node.key);
      if (t === undefined) {
        if (result.error) throw failureError(result.error, cwd, `${fileErrorTitle(result.error.kind)}: `);
        throw new LuaTestError("this Lua test did not run", undefined, cwd);
      }
      if (t.output !== "") console.log(t.output.replace(/\n$/, ""));
      if (t.status === "failed" && t.failure) throw failureError(t.failure, cwd);
    };
    const declare = (nodes: Node[]): void => {
      for (const node of nodes) {
        if (node.kind === "suite") describe(node.name, () => declare(node.children));
        else if (node.skip) it.skip(node.name, check(node));
        else it(node.name, check(node));
      }
    };
    declare(treeOf(listing));
  });
}

/**
 * Declares vitest tests for the `*_test.lua` files under `paths`: a `describe` per file and per
 * Lua `describe`, an `it` per Lua test. Await it at the top level of a vitest test module.
 */
export async function defineLuaTests(paths: string | readonly string[], options: LuaTestsOptions): Promise<void> {
  const cwd = options.cwd ?? process.cwd();
  const given = typeof paths === "string" ? [paths] : paths;
  const files = discoverTestFiles(given, cwd);
  if (files.length === 0) throw new Error(`defineLuaTests: no *_test.lua files found in ${given.join(", ")}`);
  const harness: LuaTestsOptions = { ...options, cwd };
  for (const file of files) declareFile(file, await listTestFile(file, harness), harness, cwd);
}
