/** `luastore run FILE`: runs a script against the registry and policies. */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import type { RunFailure } from "../errors.js";
import { createHost, type Isolation } from "../host.js";
import type { RunLimits } from "../lua/limits.js";
import { parseArgs, UsageError, type FlagSpec } from "./args.js";
import { ACTOR_FLAGS, actorFrom, CONFIG_FLAGS, configPaths, reportConfigError, type CliIO } from "./common.js";

const FLAGS: Record<string, FlagSpec> = {
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
  stats: { kind: "boolean" },
  audit: { kind: "string" },
};

export const RUN_USAGE = `usage: luastore run FILE [--registry PATH] [--policies DIR] [--actor ID] [--meta KEY=VALUE]...
                    [--isolation worker|inline] [--timeout SECONDS] [--max-instructions N]
                    [--max-memory MIB] [--max-string BYTES] [--max-store-ops N] [--max-output BYTES]
                    [--max-call-bytes BYTES] [--stats] [--audit FILE]`;

/** Limit flags → RunLimits fields (values as given, except --timeout in seconds). */
const LIMIT_FLAGS = {
  "max-instructions": "maxInstructions",
  "max-memory": "maxMemoryMb",
  "max-string": "maxStringBytes",
  "max-store-ops": "maxStoreOps",
  "max-output": "maxOutputBytes",
  "max-call-bytes": "maxCallBytes",
} as const satisfies Record<string, keyof RunLimits>;

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
  let source: Buffer;
  let file: string;
  let actor;
  const limits: Partial<RunLimits> = {};
  let stats = false;
  try {
    const args = parseArgs(argv, FLAGS);
    if (args.positionals.length !== 1) throw new UsageError(`run needs exactly one script file\n${RUN_USAGE}`);
    file = args.positionals[0]!;
    // Flag problems first, then the file.
    actor = actorFrom(args);
    try {
      source = readFileSync(file);
    } catch (err) {
      throw new UsageError(`cannot read script ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const timeout = args.flags.get("timeout") as number | undefined;
    if (timeout !== undefined) limits.timeoutMs = timeout * 1000;
    for (const [flag, field] of Object.entries(LIMIT_FLAGS)) {
      const value = args.flags.get(flag) as number | undefined;
      if (value !== undefined) limits[field] = value;
    }
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
  try {
    await host.ready();
  } catch (err) {
    await host.close();
    return reportConfigError(err, io);
  }
  try {
    const result = await host.run(new Uint8Array(source), {
      actor,
      chunkName: `@${basename(file)}`,
      onOutput: io.stdout,
    });
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
