/** `luastore run FILE|-`: runs a script against the registry and policies. */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import type { RunFailure } from "../errors.js";
import { createHost, type Isolation } from "../host.js";
import type { RunLimits } from "../lua/limits.js";
import { parseArgs, UsageError, type FlagSpec } from "./args.js";
import { ACTOR_FLAGS, actorFrom, CONFIG_FLAGS, configPaths, hostReady, jsonSafe, limitsFrom, readStdin, reportConfigError, type CliIO } from "./common.js";

export const FLAGS: Record<string, FlagSpec> = {
  ...CONFIG_FLAGS,
  ...ACTOR_FLAGS,
  isolation: { kind: "string", choices: ["worker", "inline"] },
  timeout: { kind: "number", min: 0.001 },
  "max-instructions": { kind: "number", min: 1, integer: true },
  "max-memory": { kind: "number", min: 1, integer: true },
  "max-string": { kind: "number", min: 1, integer: true },
  "max-store-ops": { kind: "number", min: 0, integer: true },
  "max-output": { kind: "number", min: 0, integer: true },
  "max-call-bytes": { kind: "number", min: 1, integer: true },
  "max-handles": { kind: "number", min: 1, integer: true },
  stats: { kind: "boolean" },
  audit: { kind: "string" },
  arg: { kind: "list" },
  args: { kind: "string" },
  json: { kind: "boolean" },
};

export const RUN_USAGE = "usage: luastore run FILE|- [flags] (luastore run --help for the flags)";

/** The chunk's `...`: --arg strings in order, or the elements of the --args JSON array. */
function chunkArgs(list: readonly string[] | undefined, json: string | undefined): unknown[] {
  if (json === undefined) return [...(list ?? [])];
  if (list !== undefined) throw new UsageError("give --arg or --args, not both");
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch (err) {
    throw new UsageError(`--args: not valid JSON: ${(err as Error).message}`);
  }
  if (!Array.isArray(parsed)) throw new UsageError("--args must be a JSON array (its elements become the chunk's ...)");
  return parsed;
}


/**
 * The report of a failed run. Only the first line starts with `error: KIND`: every other line of
 * the message is indented, so a script cannot print a line that reads like a host verdict, and a
 * script error of a reserved kind names the kind it was raised with beside RuntimeError.
 */
export function formatRunFailure(e: RunFailure): string {
  const kind = e.details ? `${e.kind} (the script raised kind ${e.details.kind})` : e.kind;
  const message = e.message.replace(/\r\n?|\n/g, "\n  ");
  return `error: ${kind}: ${message}\n${e.traceback ? `${e.traceback}\n` : ""}`;
}

export async function runCommand(argv: readonly string[], io: CliIO): Promise<number> {
  let host;
  let source: Uint8Array;
  let file: string;
  let actor;
  let limits: Partial<RunLimits>;
  let stats = false;
  let json = false;
  let values: unknown[];
  try {
    const args = parseArgs(argv, FLAGS);
    if (args.positionals.length !== 1) throw new UsageError(`run needs exactly one script file (or - for stdin)\n${RUN_USAGE}`);
    file = args.positionals[0]!;
    // Flag problems first, then the file.
    actor = actorFrom(args);
    values = chunkArgs(args.flags.get("arg") as string[] | undefined, args.flags.get("args") as string | undefined);
    json = args.flags.get("json") === true;
    try {
      source = file === "-" ? await (io.stdin ?? readStdin)() : readFileSync(file);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      throw new UsageError(
        code === "ENOENT" ? `no such script: ${file}` : `cannot read script ${file === "-" ? "from stdin" : file}: ${code ?? String(err)}`,
      );
    }
    limits = limitsFrom(args);
    stats = args.flags.get("stats") === true;
    const audit = args.flags.get("audit") as string | undefined;
    const isolation = (args.flags.get("isolation") as Isolation | undefined) ?? "worker";
    host = createHost({
      ...configPaths(args),
      limits,
      sweepTimers: false,
      isolation,
      // One script: one worker is all it needs, and the fastest to start.
      workers: 1,
      ...(audit ? { audit: { file: audit } } : {}),
    });
  } catch (err) {
    return reportConfigError(err, io);
  }
  const notReady = await hostReady(host, io);
  if (notReady !== undefined) return notReady;
  try {
    const result = await host.run(new Uint8Array(source), {
      actor,
      chunkName: file === "-" ? "=stdin" : `@${basename(file)}`,
      args: values,
      // With --json the output is part of the one document, not streamed.
      ...(json ? {} : { onOutput: io.stdout }),
    });
    if (json) {
      const doc = {
        ok: result.ok,
        values: result.values,
        output: result.output,
        ...(result.error ? { error: result.error } : {}),
        stats: result.stats,
        ...(stats ? { pools: host.pools(), stores: await host.metrics() } : {}),
      };
      io.stdout(`${JSON.stringify(doc, jsonSafe)}\n`);
      return result.ok ? 0 : 1;
    }
    if (stats) {
      io.stderr(`${JSON.stringify({ run: result.stats, pools: host.pools(), stores: await host.metrics() }, null, 2)}\n`);
    }
    if (!result.ok && result.error) {
      io.stderr(formatRunFailure(result.error));
      return 1;
    }
    return 0;
  } finally {
    await host.close();
  }
}
