/** Runs test files one after another, each on fresh stores, and tells a reporter as it goes. */
import type { TestFile } from "./discover.js";
import type { Reporter } from "./reporters/reporter.js";
import { summarize, type FileResult, type RunSummary } from "./results.js";
import { runTestFile, type HarnessOptions } from "./run-file.js";

/** Runs `files` in order; with `bail`, stops at the first failure (within a file too). */
export async function runTests(files: readonly TestFile[], options: HarnessOptions, reporter: Reporter): Promise<RunSummary> {
  const started = performance.now();
  const results: FileResult[] = [];
  let failures = 0;
  let bailed = false;
  const shouldStop = (): boolean => {
    if (options.bail !== true || failures === 0) return false;
    bailed = true;
    return true;
  };
  reporter.onRunStart?.(files.map((f) => f.display));
  for (const file of files) {
    if (shouldStop()) break;
    reporter.onFileStart?.(file.display);
    const result = await runTestFile(file, options, {
      shouldStop,
      onTestResult: (test) => {
        if (test.status === "failed") failures++;
        reporter.onTestResult?.(test);
      },
    });
    if (result.error !== undefined) failures++;
    results.push(result);
    reporter.onFileEnd?.(result);
  }
  const summary = summarize(results, performance.now() - started, bailed);
  if (options.coverage !== undefined) summary.coverage = options.coverage.summary();
  reporter.onRunEnd(summary);
  return summary;
}

/**
 * The exit code of a run: 2 when a file does not compile, 1 when a test failed (or a filter
 * matched nothing), else 0.
 */
export function exitCodeOf(summary: RunSummary, filtered: boolean): 0 | 1 | 2 {
  if (summary.compileErrors > 0) return 2;
  if (summary.failed > 0) return 1;
  if (filtered && summary.passed + summary.skipped === 0) return 1;
  return 0;
}
