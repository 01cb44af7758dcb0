/**
 * `luastore check`: validates the registry and the policies, then looks for what they would get
 * wrong at run time: what would fail when a store opens (errors), and policies that can never
 * apply (warnings; errors with --strict): an action no store method checks, a resource pattern
 * that matches no store. `--connect` also opens every Redis store and waits for an answer.
 */
import { accessSync, constants, existsSync, statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { isStoreAction, STORE_ACTIONS } from "../config/actions.js";
import { closestName } from "../config/suggest.js";
import { PolicyError, RegistryError, type Problem, type SourcePosition } from "../errors.js";
import { loadPolicies } from "../policy/index.js";
import { CompiledPolicyEngine } from "../policy/engine.js";
import type { PolicyDefinition } from "../policy/parse.js";
import { loadRegistry } from "../registry/index.js";
import type { RegistryConfig, StoreConfig } from "../registry/types.js";
import { openBackend } from "../runtime/lazy-store.js";
import { systemClock } from "../clock.js";
import { parseArgs, UsageError, type FlagSpec } from "./args.js";
import { CONFIG_FLAGS, configPaths, reportConfigError, type CliIO } from "./common.js";

export const FLAGS: Record<string, FlagSpec> = {
  ...CONFIG_FLAGS,
  strict: { kind: "boolean" },
  connect: { kind: "boolean" },
  json: { kind: "boolean" },
};

export type Severity = "error" | "warning";

export interface CheckProblem {
  severity: Severity;
  file: string;
  line: number;
  column: number;
  message: string;
  excerpt?: string;
}

function at(position: SourcePosition, severity: Severity, message: string): CheckProblem {
  return { severity, file: position.file, line: position.line, column: position.column, message };
}

function fromProblem(p: Problem): CheckProblem {
  return { severity: "error", file: p.file, line: p.line, column: p.column, message: p.message, ...(p.excerpt ? { excerpt: p.excerpt } : {}) };
}

/** Policies that can never apply: unknown actions, resource patterns matching no store. */
export function crossCheck(policies: readonly PolicyDefinition[], registry: RegistryConfig): CheckProblem[] {
  const problems: CheckProblem[] = [];
  const storeIds = registry.entries.map((e) => e.id);
  for (const policy of policies) {
    for (const action of policy.actions) {
      if (action.exact ? isStoreAction(action.source) : STORE_ACTIONS.some((a) => action.test(a))) continue;
      const guess = action.exact ? closestName(action.source, STORE_ACTIONS, 3) : undefined;
      problems.push(
        at(
          policy.source,
          "warning",
          `policy ${policy.id}: action ${JSON.stringify(action.source)} ${action.exact ? "is checked by no store method" : "matches no action a store method checks"}` +
            (guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ` (known: ${STORE_ACTIONS.join(", ")})`),
        ),
      );
    }
    for (const resource of policy.resources) {
      if (storeIds.some((id) => resource.test(id))) continue;
      const guess = resource.exact ? closestName(resource.source, storeIds, 3) : undefined;
      problems.push(
        at(
          policy.source,
          "warning",
          `policy ${policy.id}: resource ${JSON.stringify(resource.source)} matches no store in the registry` +
            (guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ""),
        ),
      );
    }
  }
  return problems;
}

/** What would fail when each store opens, found without opening anything (no file is created). */
export async function openProblems(registry: RegistryConfig, env: Readonly<Record<string, string | undefined>>): Promise<CheckProblem[]> {
  const problems: CheckProblem[] = [];
  for (const config of registry.entries) {
    const reason = await openProblem(config, registry.baseDir, env);
    if (reason !== undefined) problems.push(at(config.source, "error", `store ${config.id}: ${reason}`));
  }
  return problems;
}

async function openProblem(config: StoreConfig, baseDir: string, env: Readonly<Record<string, string | undefined>>): Promise<string | undefined> {
  if (config.kind === "store.redis") {
    // The store's own resolution (environment variables, URLs, TLS files), without connecting.
    const { resolveTarget } = await import("../store/redis.js");
    try {
      resolveTarget(config, env, baseDir);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      return message.startsWith(`store ${config.id}: `) ? message.slice(`store ${config.id}: `.length) : message;
    }
    return undefined;
  }
  if (config.kind !== "store.sql" || config.path === ":memory:") return undefined;
  const file = resolve(baseDir, config.path);
  if (existsSync(file)) {
    if (statSync(file).isDirectory()) return `path ${file} is a directory, not a database file`;
    try {
      accessSync(file, constants.R_OK | constants.W_OK);
    } catch {
      return `database file ${file} is not readable and writable`;
    }
    return undefined;
  }
  // The store creates missing directories: the nearest existing one must be a writable directory.
  let dir = dirname(file);
  while (!existsSync(dir)) dir = dirname(dir);
  if (!statSync(dir).isDirectory()) return `cannot create ${file}: ${dir} is not a directory`;
  try {
    accessSync(dir, constants.W_OK | constants.X_OK);
  } catch {
    return `cannot create ${file}: directory ${dir} is not writable`;
  }
  return undefined;
}

/** --connect: opens every Redis store and waits for one answer (bounded by its connect and command timeouts). */
async function connectProblems(registry: RegistryConfig): Promise<CheckProblem[]> {
  const problems: CheckProblem[] = [];
  for (const config of registry.entries) {
    if (config.kind !== "store.redis") continue;
    try {
      const store = await openBackend(config, { clock: systemClock, sweepTimers: false, baseDir: registry.baseDir });
      try {
        await store.size();
      } finally {
        await store.close();
      }
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      problems.push(at(config.source, "error", message.startsWith(`store ${config.id}`) ? message : `store ${config.id}: ${message}`));
    }
  }
  return problems;
}

function formatCheckProblem(p: CheckProblem): string {
  const where = p.line > 0 ? `${p.file}:${p.line}:${p.column}` : p.file;
  return `${where}: ${p.severity}: ${p.message}${p.excerpt ? `\n${p.excerpt}` : ""}`;
}

export async function checkCommand(argv: readonly string[], io: CliIO): Promise<number> {
  let paths;
  let strict = false;
  let connect = false;
  let json = false;
  try {
    const args = parseArgs(argv, FLAGS);
    if (args.positionals.length > 0) throw new UsageError(`check takes no arguments, got '${args.positionals[0]}'`);
    paths = configPaths(args);
    strict = args.flags.get("strict") === true;
    connect = args.flags.get("connect") === true;
    json = args.flags.get("json") === true;
  } catch (err) {
    return reportConfigError(err, io);
  }
  const problems: CheckProblem[] = [];
  let registry: RegistryConfig | undefined;
  let definitions: readonly PolicyDefinition[] | undefined;
  try {
    registry = loadRegistry(paths.registry);
  } catch (err) {
    if (!(err instanceof RegistryError)) throw err;
    problems.push(...err.problems.map(fromProblem));
  }
  try {
    const engine = loadPolicies(paths.policies);
    definitions = engine instanceof CompiledPolicyEngine ? engine.definitions : [];
  } catch (err) {
    if (!(err instanceof PolicyError)) throw err;
    problems.push(...err.problems.map(fromProblem));
  }
  if (registry !== undefined) {
    problems.push(...(await openProblems(registry, process.env)));
    if (connect) problems.push(...(await connectProblems(registry)));
  }
  if (registry !== undefined && definitions !== undefined) problems.push(...crossCheck(definitions, registry));
  if (strict) for (const p of problems) p.severity = "error";

  const errors = problems.filter((p) => p.severity === "error").length;
  const warnings = problems.length - errors;
  const ok = errors === 0;
  const stores = registry?.entries.length ?? 0;
  const policies = definitions?.length ?? 0;
  if (json) {
    io.stdout(`${JSON.stringify({ ok, stores, policies, errors, warnings, problems })}\n`);
    return ok ? 0 : 2;
  }
  if (problems.length > 0) io.stderr(`${problems.map(formatCheckProblem).join("\n")}\n`);
  const counts = `${errors} error(s), ${warnings} warning(s)`;
  if (!ok) {
    io.stderr(`${counts}\n`);
    return 2;
  }
  io.stdout(
    `ok: ${stores} store(s) in ${paths.registry}, ${policies} polic${policies === 1 ? "y" : "ies"} in ${paths.policies}` +
      `${warnings > 0 ? ` (${warnings} warning(s))` : ""}\n`,
  );
  return 0;
}
