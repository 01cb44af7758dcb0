/** What the CLI commands share: the registry/policy/actor flags and their defaults. */
import { LuastoreError, formatProblems, PolicyError, RegistryError } from "../errors.js";
import type { Host } from "../host.js";
import type { RunLimits } from "../lua/limits.js";
import type { Actor } from "../policy/types.js";
import { parseMeta, UsageError, type FlagSpec, type ParsedArgs } from "./args.js";

/** The actor `run`, `test` and `explain` use when --actor is not given; the shipped policies grant it the app stores. */
export const DEFAULT_ACTOR_ID = "service:cli";

export const CONFIG_FLAGS: Record<string, FlagSpec> = {
  registry: { kind: "string" },
  policies: { kind: "string" },
};

export const ACTOR_FLAGS: Record<string, FlagSpec> = {
  actor: { kind: "string" },
  meta: { kind: "list" },
};

export function configPaths(args: ParsedArgs): { registry: string; policies: string } {
  return {
    registry: (args.flags.get("registry") as string | undefined) ?? "registry.yaml",
    policies: (args.flags.get("policies") as string | undefined) ?? "policies",
  };
}

export function actorFrom(args: ParsedArgs): Actor {
  const id = (args.flags.get("actor") as string | undefined) ?? DEFAULT_ACTOR_ID;
  if (id.length === 0) throw new UsageError("--actor must not be empty");
  return { id, meta: parseMeta(args.flags.get("meta") as string[] | undefined) };
}

/** Limit flags → RunLimits fields (values as given; --timeout, in seconds, is read apart). */
export const LIMIT_FLAGS = {
  "max-instructions": "maxInstructions",
  "max-memory": "maxMemoryMb",
  "max-string": "maxStringBytes",
  "max-store-ops": "maxStoreOps",
  "max-output": "maxOutputBytes",
  "max-call-bytes": "maxCallBytes",
  "max-handles": "maxHandles",
} as const satisfies Record<string, keyof RunLimits>;

/** The run limits that `--timeout` and the flags of `table` (those the command takes) ask for. */
export function limitsFrom(args: ParsedArgs, table: Partial<Record<string, keyof RunLimits>> = LIMIT_FLAGS): Partial<RunLimits> {
  const limits: Partial<RunLimits> = {};
  const timeout = args.flags.get("timeout") as number | undefined;
  if (timeout !== undefined) limits.timeoutMs = timeout * 1000;
  for (const [flag, field] of Object.entries(table)) {
    const value = args.flags.get(flag) as number | undefined;
    if (value !== undefined && field !== undefined) limits[field] = value;
  }
  return limits;
}

/**
 * Waits until `host` is ready. A registry, policy or store problem found then closes the host and
 * is reported: the exit code comes back; undefined means the host is ready.
 */
export async function hostReady(host: Host, io: CliIO): Promise<number | undefined> {
  try {
    await host.ready();
    return undefined;
  } catch (err) {
    await host.close();
    return reportConfigError(err, io);
  }
}

/** Output streams (and stdin for `run -`), injectable for tests. */
export interface CliIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** The whole of stdin. @default reads the process's stdin */
  stdin?: () => Promise<Uint8Array>;
  /** Where `repl` reads its lines. @default the process's stdin */
  input?: NodeJS.ReadableStream;
}

/** Reads the process's stdin to its end. */
export async function readStdin(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** A JSON.stringify replacer for what results may hold beyond JSON: bytes, big integers, non-finite numbers. */
export function jsonSafe(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.from(value).toString("utf8");
  if (typeof value === "bigint") return value.toString();
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return value;
}

export const processIO: CliIO = {
  stdout: (t) => void process.stdout.write(t),
  stderr: (t) => void process.stderr.write(t),
};

/** Reports a configuration error (registry, policy, options) and returns exit code 2. */
export function reportConfigError(err: unknown, io: CliIO): number {
  if (err instanceof RegistryError || err instanceof PolicyError) {
    io.stderr(`${err.name === "RegistryError" ? "registry" : "policies"}: ${err.problems.length} problem(s)\n${formatProblems(err.problems)}\n`);
    return 2;
  }
  if (err instanceof UsageError || err instanceof LuastoreError) {
    io.stderr(`error: ${err.message}\n`);
    return 2;
  }
  throw err;
}
