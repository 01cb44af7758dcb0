/**
 * TAP version 13: one flat `ok`/`not ok` line per test named `file > describe > test`, skipped
 * tests as `ok N - name # SKIP`, a YAML block under each failure, the plan at the end, and the
 * summary as the last comment line.
 */
import { fullName, summaryLine, type FileError, type RunSummary, type TestFailure, type TestResult } from "../results.js";
import { coverageTable } from "../coverage-report.js";
import { fileErrorTitle, type Reporter } from "./reporter.js";
import { safeBlock, safeLine } from "./terminal-text.js";

/** A TAP description: one line, `#` escaped (it would start a directive), control characters escaped. */
function description(text: string): string {
  return safeLine(text.replace(/\\/g, "\\\\").replace(/#/g, "\\#").replace(/\r?\n/g, " "));
}

function yamlBlock(failure: Pick<TestFailure, "message" | "location" | "traceback"> & { hook?: string; kind?: string }): string {
  const lines = ["  ---", "  message: |-", ...safeBlock(failure.message).split("\n").map((l) => `    ${l}`)];
  if (failure.kind) lines.push(`  kind: ${failure.kind}`);
  if (failure.location) lines.push(`  at: "${failure.location.file}:${failure.location.line}"`);
  if (failure.hook) lines.push(`  hook: ${failure.hook}`);
  if (failure.traceback) lines.push("  traceback: |-", ...safeBlock(failure.traceback).split("\n").map((l) => `    ${l}`));
  lines.push("  ...");
  return `${lines.join("\n")}\n`;
}

function comments(output: string): string {
  if (output === "") return "";
  return safeBlock(output)
    .replace(/\n$/, "")
    .split("\n")
    .map((line) => `# ${line}\n`)
    .join("");
}

export function tapReporter(options: { write: (text: string) => void }): Reporter {
  const { write } = options;
  let n = 0;
  return {
    onRunStart() {
      write("TAP version 13\n");
    },

    onTestResult(result: TestResult) {
      n++;
      const name = description(fullName(result.file, result.path));
      write(comments(result.output));
      if (result.status === "passed") write(`ok ${n} - ${name}\n`);
      else if (result.status === "skipped") write(`ok ${n} - ${name} # SKIP${result.skipReason ? ` ${description(result.skipReason)}` : ""}\n`);
      else write(`not ok ${n} - ${name}\n${result.failure ? yamlBlock(result.failure) : ""}`);
    },

    onFileEnd(result) {
      write(comments(result.output));
      const error: FileError | undefined = result.error;
      if (error === undefined) return;
      n++;
      write(`not ok ${n} - ${description(result.file)}\n${yamlBlock({ ...error, kind: fileErrorTitle(error.kind) })}`);
    },

    onRunEnd(summary: RunSummary) {
      write(`1..${n}\n`);
      if (summary.bailed) write("# stopped at the first failure (--bail)\n");
      if (summary.coverage !== undefined) write(comments(`coverage\n${coverageTable(summary.coverage)}`));
      write(`# ${summaryLine(summary)}\n`);
    },
  };
}
