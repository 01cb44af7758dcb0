/** `luastore run FILE`: runs a script against the registry and policies. */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { createHost } from "../host.js";
import { parseArgs, UsageError, type FlagSpec } from "./args.js";
import { ACTOR_FLAGS, actorFrom, CONFIG_FLAGS, configPaths, reportConfigError, type CliIO } from "./common.js";

const FLAGS: Record<string, FlagSpec> = {
  ...CONFIG_FLAGS,
  ...ACTOR_FLAGS,
  timeout: { kind: "number", min: 0.001 },
  "max-instructions": { kind: "number", min: 1, integer: true },
  stats: { kind: "boolean" },
  audit: { kind: "string" },
};

export const RUN_USAGE = `usage: luastore run FILE [--registry PATH] [--policies DIR] [--actor ID] [--meta KEY=VALUE]...
                    [--timeout SECONDS] [--max-instructions N] [--stats] [--audit FILE]`;

export async function runCommand(argv: readonly string[], io: CliIO): Promise<number> {
  let host;
  let source: Buffer;
  let file: string;
  let actor;
  const limits: { timeoutMs?: number; maxInstructions?: number } = {};
  let stats = false;
  try {
    const args = parseArgs(argv, FLAGS);
    if (args.positionals.length !== 1) throw new UsageError(`run needs exactly one script file\n${RUN_USAGE}`);
    file = args.positionals[0]!;
    try {
      source = readFileSync(file);
    } catch (err) {
      throw new UsageError(`cannot read script ${file}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
    }
    const timeout = args.flags.get("timeout") as number | undefined;
    if (timeout !== undefined) limits.timeoutMs = timeout * 1000;
    const maxInstructions = args.flags.get("max-instructions") as number | undefined;
    if (maxInstructions !== undefined) limits.maxInstructions = maxInstructions;
    stats = args.flags.get("stats") === true;
    actor = actorFrom(args);
    const audit = args.flags.get("audit") as string | undefined;
    host = createHost({ ...configPaths(args), limits, sweepTimers: false, ...(audit ? { audit: { file: audit } } : {}) });
  } catch (err) {
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
      const e = result.error;
      io.stderr(`error: ${e.kind}: ${e.message}\n${e.traceback ? `${e.traceback}\n` : ""}`);
      return 1;
    }
    return 0;
  } finally {
    await host.close();
  }
}
