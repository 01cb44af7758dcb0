/** What a reporter hears during a test run; each event arrives as it happens. */
import type { FileResult, RunSummary, TestResult } from "../results.js";

export interface Reporter {
  onRunStart?(files: readonly string[]): void;
  onFileStart?(file: string): void;
  /** A test finished (or was skipped); results of one file arrive in declaration order. */
  onTestResult?(result: TestResult): void;
  /** A file finished; `result.error` is set when it failed outside any test. */
  onFileEnd?(result: FileResult): void;
  onRunEnd(summary: RunSummary): void;
}

/** One reporter that forwards every event to each of `reporters`. */
export function combineReporters(...reporters: Reporter[]): Reporter {
  return {
    onRunStart: (files) => reporters.forEach((r) => r.onRunStart?.(files)),
    onFileStart: (file) => reporters.forEach((r) => r.onFileStart?.(file)),
    onTestResult: (result) => reporters.forEach((r) => r.onTestResult?.(result)),
    onFileEnd: (result) => reporters.forEach((r) => r.onFileEnd?.(result)),
    onRunEnd: (summary) => reporters.forEach((r) => r.onRunEnd(summary)),
  };
}

/** How a file-level error is named in reports. */
export function fileErrorTitle(kind: "compile" | "load" | "run"): string {
  switch (kind) {
    case "compile":
      return "does not compile";
    case "load":
      return "raised while loading";
    case "run":
      return "run stopped";
  }
}

/** Milliseconds for people: `<1 ms`, `12 ms`, `1.25 s`. */
export function formatDuration(ms: number): string {
  if (ms < 1) return "<1 ms";
  if (ms < 1000) return `${Math.round(ms)} ms`;
  return `${(ms / 1000).toFixed(2)} s`;
}
