/**
 * The terminal reporter: per-file progress with ✓/✗ per test and durations, then every failure
 * with its message, the source lines around it and the script's traceback, then the summary.
 */
import { fullName, summaryLine, type FileResult, type RunSummary, type TestFailure, type TestResult } from "../results.js";
import { coverageTable } from "../coverage-report.js";
import { sourceExcerpt } from "../source-excerpt.js";
import { fileErrorTitle, formatDuration, type Reporter } from "./reporter.js";
import { safeBlock, safeLine } from "./terminal-text.js";

export interface PrettyReporterOptions {
  write: (text: string) => void;
  /** ANSI colors. @default false */
  color?: boolean;
  /** Directory test file paths are relative to (for source excerpts). @default process.cwd() */
  cwd?: string;
}

type Paint = (text: string) => string;

function painter(color: boolean): Record<"green" | "red" | "yellow" | "dim" | "bold", Paint> {
  const sgr = (open: number, close: number): Paint => (color ? (t) => `\x1b[${open}m${t}\x1b[${close}m` : (t) => t);
  return { green: sgr(32, 39), red: sgr(31, 39), yellow: sgr(33, 39), dim: sgr(2, 22), bold: sgr(1, 22) };
}

function indentLines(text: string, indent: string): string {
  return text
    .split("\n")
    .map((line) => (line === "" ? line : indent + line))
    .join("\n");
}

export function prettyReporter(options: PrettyReporterOptions): Reporter {
  const { write } = options;
  const paint = painter(options.color ?? false);
  const cwd = options.cwd ?? process.cwd();
  /** The describe path whose headers were printed last in the current file. */
  let printedPath: readonly string[] = [];

  const describeFailure = (failure: TestFailure | { message: string; location?: TestFailure["location"]; traceback?: string }): string => {
    const lines = [indentLines(safeBlock(failure.message), "  ")];
    if (failure.location) {
      lines.push(paint.dim(`  at ${failure.location.file}:${failure.location.line}`));
      for (const line of sourceExcerpt(failure.location.file, failure.location.line, cwd)) {
        lines.push(line.startsWith(">") ? `    ${paint.red(line)}` : paint.dim(`    ${line}`));
      }
    }
    if (failure.traceback) {
      lines.push(paint.dim("  traceback:"));
      lines.push(paint.dim(indentLines(safeBlock(failure.traceback), "    ")));
    }
    return `${lines.join("\n")}\n`;
  };

  return {
    onFileStart(file) {
      printedPath = [];
      write(`${paint.bold(safeLine(file))}\n`);
    },

    onTestResult(result: TestResult) {
      const suites = result.path.slice(0, -1);
      let common = 0;
      while (common < suites.length && common < printedPath.length && suites[common] === printedPath[common]) common++;
      for (let depth = common; depth < suites.length; depth++) write(`${"  ".repeat(depth + 1)}${safeLine(suites[depth]!)}\n`);
      printedPath = suites;
      const indent = "  ".repeat(suites.length + 1);
      const name = safeLine(result.path[result.path.length - 1] ?? "");
      if (result.status === "passed") {
        write(`${indent}${paint.green("✓")} ${name} ${paint.dim(`(${formatDuration(result.durationMs)})`)}\n`);
      } else if (result.status === "failed") {
        write(`${indent}${paint.red("✗")} ${paint.red(name)} ${paint.dim(`(${formatDuration(result.durationMs)})`)}\n`);
      } else {
        write(`${indent}${paint.yellow("-")} ${paint.yellow(name)} ${paint.dim(result.skipReason ? `(skipped: ${safeLine(result.skipReason)})` : "(skipped)")}\n`);
      }
      if (result.output !== "") write(paint.dim(indentLines(safeBlock(result.output.replace(/\n$/, "")), `${indent}  | `)) + "\n");
    },

    onFileEnd(result: FileResult) {
      if (result.output !== "") write(paint.dim(indentLines(safeBlock(result.output.replace(/\n$/, "")), "  | ")) + "\n");
      if (result.error) write(`  ${paint.red("✗")} ${paint.red(fileErrorTitle(result.error.kind))}\n`);
    },

    onRunEnd(summary: RunSummary) {
      const failures: string[] = [];
      for (const file of summary.files) {
        if (file.error) {
          failures.push(`${paint.red("✗")} ${paint.bold(safeLine(file.file))} ${paint.red(`(${fileErrorTitle(file.error.kind)})`)}\n${describeFailure(file.error)}`);
        }
        for (const t of file.tests) {
          if (t.status !== "failed" || t.failure === undefined) continue;
          const hook = t.failure.hook ? ` ${paint.red(`(${t.failure.hook} hook failed)`)}` : "";
          failures.push(`${paint.red("✗")} ${paint.bold(safeLine(fullName(t.file, t.path)))}${hook}\n${describeFailure(t.failure)}`);
        }
      }
      if (failures.length > 0) write(`\n${paint.red(paint.bold(`Failures (${failures.length})`))}\n\n${failures.join("\n")}`);
      if (summary.coverage !== undefined) write(`\n${paint.bold("Coverage")}\n${safeBlock(coverageTable(summary.coverage))}`);
      const n = summary.files.length;
      write(`\n${n} file${n === 1 ? "" : "s"} in ${formatDuration(summary.durationMs)}\n`);
      if (summary.bailed) write(paint.yellow("stopped at the first failure (--bail)\n"));
      const parts = summaryLine(summary);
      write(`${summary.failed > 0 ? paint.red(parts) : paint.green(parts)}\n`);
    },
  };
}
