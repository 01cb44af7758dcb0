/**
 * One JSON document for the whole run, written when it ends: every file with its tests (name
 * path, status, duration, failure, output), file-level errors, and the totals.
 */
import { fullName, type FileResult, type RunSummary } from "../results.js";
import type { Reporter } from "./reporter.js";

export function jsonReporter(options: { write: (text: string) => void }): Reporter {
  return {
    onRunEnd(summary: RunSummary) {
      const doc = {
        ok: summary.failed === 0,
        passed: summary.passed,
        failed: summary.failed,
        skipped: summary.skipped,
        bailed: summary.bailed,
        durationMs: summary.durationMs,
        files: summary.files.map((file: FileResult) => ({
          file: file.file,
          durationMs: file.durationMs,
          ...(file.error ? { error: file.error } : {}),
          tests: file.tests.map((t) => ({
            name: fullName(t.file, t.path),
            path: t.path,
            status: t.status,
            durationMs: t.durationMs,
            ...(t.failure ? { failure: t.failure } : {}),
            ...(t.skipReason ? { skipReason: t.skipReason } : {}),
            ...(t.output !== "" ? { output: t.output } : {}),
          })),
        })),
        ...(summary.coverage ? { coverage: summary.coverage } : {}),
      };
      options.write(`${JSON.stringify(doc)}\n`);
    },
  };
}
