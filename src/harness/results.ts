/** What a test run produces: one result per Lua test, one per file, and the totals. */
import type { CoverageSummary } from "./coverage-report.js";

export type TestStatus = "passed" | "failed" | "skipped";

/** The hooks a failure can come from when it is not the test's own body. */
export type HookName = "before_all" | "before_each" | "after_each" | "after_all";

/** A line in a Lua source file, as the test run names it (path relative to the working directory). */
export interface SourceLocation {
  file: string;
  line: number;
}

export interface TestFailure {
  /** What went wrong, without the `file:line:` prefix (assertion failures span several lines). */
  message: string;
  /** Where: the assertion's line for assertion failures, the raising line otherwise. */
  location?: SourceLocation;
  /** True when an assertion of the `test` module failed; false when the code raised. */
  assertion: boolean;
  /** Set when a hook failed rather than the test body. */
  hook?: HookName;
  /** The Lua traceback (script frames only), for errors that are not assertion failures. */
  traceback?: string;
}

export interface TestResult {
  /** The test file, relative to the working directory. */
  file: string;
  /** Names of the enclosing `describe` blocks, then the test's name. */
  path: readonly string[];
  status: TestStatus;
  /** Wall-clock milliseconds (virtual time does not count). */
  durationMs: number;
  failure?: TestFailure;
  /** Why a skipped test did not run, when it was not skipped by `it_skip` (the file's run was stopped). */
  skipReason?: string;
  /** What the test printed. */
  output: string;
}

/** Why a whole file failed outside any test. */
export interface FileError {
  /**
   * `compile`: the file (or a module it requires while loading) does not compile;
   * `load`: it raised while declaring its tests; `run`: the run stopped (a limit, a timeout).
   */
  kind: "compile" | "load" | "run";
  message: string;
  location?: SourceLocation;
  traceback?: string;
}

export interface FileResult {
  file: string;
  tests: TestResult[];
  error?: FileError;
  durationMs: number;
  /** What the file printed outside its tests. */
  output: string;
  /**
   * Absolute paths of the Lua files next to the test file that it required in this run (directly
   * or through another module), in the order they were first required, a module that did not
   * compile included: what `luastore test --watch` re-runs the file for.
   */
  modules?: string[];
}

export interface RunSummary {
  files: FileResult[];
  /** Tests that passed. */
  passed: number;
  /** Tests that failed, plus files that failed outside any test. */
  failed: number;
  skipped: number;
  /** Files that do not compile (the run exits with 2). */
  compileErrors: number;
  /** True when --bail stopped the run early. */
  bailed: boolean;
  durationMs: number;
  /** Line coverage of the files under test, with --coverage. */
  coverage?: CoverageSummary;
}

/** The display name of a test: `file > describe > test`. */
export function fullName(file: string, path: readonly string[]): string {
  return [file, ...path].join(" > ");
}

/** Totals over file results. */
export function summarize(files: FileResult[], durationMs: number, bailed: boolean): RunSummary {
  let passed = 0;
  let failed = 0;
  let skipped = 0;
  let compileErrors = 0;
  for (const file of files) {
    for (const t of file.tests) {
      if (t.status === "passed") passed++;
      else if (t.status === "failed") failed++;
      else skipped++;
    }
    if (file.error !== undefined) {
      failed++;
      if (file.error.kind === "compile") compileErrors++;
    }
  }
  return { files, passed, failed, skipped, compileErrors, bailed, durationMs };
}

/** `N passed, N failed` and `, N skipped` when any were skipped: the last words of every terminal report. */
export function summaryLine(summary: Pick<RunSummary, "passed" | "failed" | "skipped">): string {
  const line = `${summary.passed} passed, ${summary.failed} failed`;
  return summary.skipped > 0 ? `${line}, ${summary.skipped} skipped` : line;
}
