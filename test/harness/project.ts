/** Test files for harness tests: a temporary folder of Lua files, reported relative to it. */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { discoverTestFiles } from "../../src/harness/discover.js";
import type { Reporter } from "../../src/harness/reporters/reporter.js";
import type { FileResult, RunSummary, TestResult } from "../../src/harness/results.js";
import { runTestFile, type HarnessOptions } from "../../src/harness/run-file.js";
import { runTests } from "../../src/harness/runner.js";
import { ADMIN, TEST_POLICIES, TEST_REGISTRY } from "../helpers.js";

export interface LuaProject {
  dir: string;
  options: HarnessOptions;
  /** Runs one test file of the project (default: the only `*_test.lua`). */
  runFile(file?: string, options?: Partial<HarnessOptions>): Promise<FileResult>;
  /** Runs every test file of the project. */
  runAll(options?: Partial<HarnessOptions>, reporter?: Reporter): Promise<RunSummary>;
  remove(): void;
}

/** Writes `files` (path → Lua source) into a fresh temporary folder. */
export function luaProject(files: Record<string, string>): LuaProject {
  const dir = mkdtempSync(join(tmpdir(), "luastore-harness-"));
  for (const [path, source] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), source);
  }
  const options: HarnessOptions = { registry: TEST_REGISTRY, policies: TEST_POLICIES, actor: ADMIN, cwd: dir };
  return {
    dir,
    options,
    async runFile(file, extra = {}) {
      const found = discoverTestFiles([file ?? "."], dir);
      if (found.length !== 1) throw new Error(`expected one test file, found ${found.map((f) => f.display).join(", ")}`);
      return runTestFile(found[0]!, { ...options, ...extra });
    },
    runAll(extra = {}, reporter = { onRunEnd: () => {} }) {
      return runTests(discoverTestFiles(["."], dir), { ...options, ...extra }, reporter);
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The 1-based line of the first line of `source` containing `marker`. */
export function lineOf(source: string, marker: string): number {
  const i = source.split("\n").findIndex((line) => line.includes(marker));
  if (i === -1) throw new Error(`marker ${marker} not in source`);
  return i + 1;
}

/** `name → status` of a file's tests, by their last path element. */
export function statuses(result: FileResult): Record<string, TestResult["status"]> {
  return Object.fromEntries(result.tests.map((t) => [t.path.join(" > "), t.status]));
}

/** The test named `name` (its path joined with " > "). */
export function testNamed(result: FileResult, name: string): TestResult {
  const t = result.tests.find((r) => r.path.join(" > ") === name);
  if (t === undefined) throw new Error(`no test '${name}' in ${result.tests.map((r) => r.path.join(" > ")).join(", ")}`);
  return t;
}
