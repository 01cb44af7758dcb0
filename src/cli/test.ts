/** `luastore test [PATH...]`: runs `*_test.lua` files with the `test` module and reports the results. */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { LuastoreError, OptionsError } from "../errors.js";
import { CoverageCollector } from "../harness/coverage.js";
import { lcov } from "../harness/coverage-report.js";
import { discoverTestFiles, type TestFile } from "../harness/discover.js";
import { prettyReporter } from "../harness/reporters/pretty.js";
import { jsonReporter } from "../harness/reporters/json.js";
import { junitReporter } from "../harness/reporters/junit.js";
import { combineReporters, type Reporter } from "../harness/reporters/reporter.js";
import { tapReporter } from "../harness/reporters/tap.js";
import type { HarnessOptions } from "../harness/run-file.js";
import type { RunSummary } from "../harness/results.js";
import { exitCodeOf, runTests } from "../harness/runner.js";
import { watchTests } from "../harness/watch.js";
import { validateLimits, type RunLimits } from "../lua/limits.js";
import { loadPolicies } from "../policy/index.js";
import { loadRegistry } from "../registry/index.js";
import { parseArgs, UsageError, type FlagSpec } from "./args.js";
import { ACTOR_FLAGS, actorFrom, CONFIG_FLAGS, configPaths, processIO, reportConfigError, type CliIO } from "./common.js";

const REPORTERS = ["pretty", "tap", "junit", "json"] as const;
type ReporterName = (typeof REPORTERS)[number];

export const FLAGS: Record<string, FlagSpec> = {
  ...CONFIG_FLAGS,
  ...ACTOR_FLAGS,
  filter: { kind: "string" },
  bail: { kind: "boolean" },
  "real-stores": { kind: "boolean" },
  reporter: { kind: "string", choices: REPORTERS },
  json: { kind: "boolean" },
  output: { kind: "string" },
  timeout: { kind: "number", min: 0.001 },
  "max-instructions": { kind: "number", min: 1, integer: true },
  isolation: { kind: "string", choices: ["inline", "worker"] },
  watch: { kind: "boolean" },
  coverage: { kind: "boolean" },
  "coverage-dir": { kind: "string" },
};


const DEFAULT_TEST_PATH = "lua";
const DEFAULT_COVERAGE_DIR = "coverage";

/** Colors only on a real terminal; NO_COLOR turns them off and FORCE_COLOR on. */
function useColor(io: CliIO): boolean {
  if (process.env.NO_COLOR) return false;
  if (process.env.FORCE_COLOR !== undefined && process.env.FORCE_COLOR !== "0") return true;
  return io === processIO && process.stdout.isTTY === true;
}

function makeReporter(name: ReporterName, write: (text: string) => void, color: boolean, cwd: string): Reporter {
  switch (name) {
    case "pretty":
      return prettyReporter({ write, color, cwd });
    case "tap":
      return tapReporter({ write });
    case "junit":
      return junitReporter({ write });
    case "json":
      return jsonReporter({ write });
  }
}

export async function testCommand(argv: readonly string[], io: CliIO): Promise<number> {
  const cwd = process.cwd();
  let options: HarnessOptions;
  let files;
  let reporterName: ReporterName;
  let output: string | undefined;
  let pattern: string | undefined;
  let given: string[];
  let paths: { registry: string; policies: string };
  let watchMode = false;
  let coverageDir: string | undefined;
  try {
    const args = parseArgs(argv, FLAGS);
    if (args.flags.get("isolation") === "worker") {
      throw new UsageError("--isolation worker is not available for luastore test yet; tests run inline");
    }
    pattern = args.flags.get("filter") as string | undefined;
    let filter: RegExp | undefined;
    if (pattern !== undefined) {
      try {
        filter = new RegExp(pattern);
      } catch (err) {
        throw new UsageError(`--filter: not a valid regular expression: ${(err as Error).message}`);
      }
    }
    reporterName = (args.flags.get("reporter") as ReporterName | undefined) ?? "pretty";
    if (args.flags.get("json") === true) {
      if (args.flags.has("reporter") && reporterName !== "json") throw new UsageError("give --json or --reporter, not both");
      reporterName = "json";
    }
    output = args.flags.get("output") as string | undefined;
    const limits: Partial<RunLimits> = {};
    const timeout = args.flags.get("timeout") as number | undefined;
    if (timeout !== undefined) limits.timeoutMs = timeout * 1000;
    const maxInstructions = args.flags.get("max-instructions") as number | undefined;
    if (maxInstructions !== undefined) limits.maxInstructions = maxInstructions;
    validateLimits(limits, "test");
    watchMode = args.flags.get("watch") === true;
    if (args.flags.get("coverage") === true) coverageDir = (args.flags.get("coverage-dir") as string | undefined) ?? DEFAULT_COVERAGE_DIR;
    else if (args.flags.has("coverage-dir")) throw new UsageError("--coverage-dir needs --coverage");
    // Coverage is of one whole run; a watch re-runs only some files.
    if (watchMode && coverageDir !== undefined) throw new UsageError("give --coverage or --watch, not both");
    paths = configPaths(args);
    // Every file builds a host of its own from these; check them once so a bad file stops the run before it starts.
    loadRegistry(paths.registry);
    loadPolicies(paths.policies);
    given = args.positionals.length > 0 ? args.positionals : [DEFAULT_TEST_PATH];
    files = discoverTestFiles(given, cwd);
    if (files.length === 0) throw new UsageError(`no *_test.lua files found in ${given.join(", ")}`);
    options = { ...paths, actor: actorFrom(args), limits, bail: args.flags.get("bail") === true, cwd };
    if (filter !== undefined) options.filter = filter;
    if (coverageDir !== undefined) options.coverage = new CoverageCollector();
    if (args.flags.get("real-stores") === true) options.realStores = true;
  } catch (err) {
    return reportConfigError(err, io);
  }

  const color = useColor(io);
  /** One run of `files` with the chosen reporter; with --output the report goes to the file and the terminal shows the pretty one. */
  const runOnce = async (toRun: readonly TestFile[]): Promise<RunSummary> => {
    const reportChunks: string[] = [];
    const reporter =
      output === undefined
        ? makeReporter(reporterName, io.stdout, color, cwd)
        : combineReporters(makeReporter(reporterName, (t) => reportChunks.push(t), false, cwd), prettyReporter({ write: io.stdout, color, cwd }));
    const summary = await runTests(toRun, options, reporter);
    if (output !== undefined) {
      try {
        writeFileSync(output, reportChunks.join(""));
      } catch (err) {
        throw new OptionsError(`cannot write ${output}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
    }
    if (pattern !== undefined && summary.passed + summary.failed + summary.skipped === 0) {
      io.stderr(`no test matched --filter ${pattern}\n`);
    }
    return summary;
  };

  if (watchMode) return watchCommand(given, paths, runOnce, io, cwd);
  let summary;
  try {
    summary = await runOnce(files);
    if (coverageDir !== undefined) writeLcov(coverageDir, options.coverage!);
  } catch (err) {
    if (err instanceof LuastoreError) return reportConfigError(err, io);
    throw err;
  }
  return exitCodeOf(summary, pattern !== undefined);
}

/** Writes `lcov.info` into `dir` (made when missing). */
function writeLcov(dir: string, coverage: CoverageCollector): void {
  const file = join(dir, "lcov.info");
  try {
    mkdirSync(dir, { recursive: true });
    writeFileSync(file, lcov(coverage.files()));
  } catch (err) {
    throw new OptionsError(`cannot write ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
  }
}

/**
 * --watch: runs the files, then re-runs those a change touches until Ctrl-C (SIGINT) or
 * `io.signal` ends it. A run in progress finishes first; a second Ctrl-C ends the process at once.
 */
async function watchCommand(
  given: readonly string[],
  paths: { registry: string; policies: string },
  runOnce: (files: readonly TestFile[]) => Promise<RunSummary>,
  io: CliIO,
  cwd: string,
): Promise<number> {
  const stop = new AbortController();
  const onSigint = (): void => {
    io.stderr("\nstopped watching\n");
    stop.abort();
  };
  process.once("SIGINT", onSigint);
  try {
    await watchTests({
      paths: given,
      cwd,
      configPaths: [paths.registry, paths.policies],
      runFiles: runOnce,
      status: io.stderr,
      error: (err) => void reportConfigError(err, io),
      signal: stop.signal,
    });
  } catch (err) {
    if (err instanceof LuastoreError) return reportConfigError(err, io);
    throw err;
  } finally {
    process.removeListener("SIGINT", onSigint);
  }
  return 0;
}
