/**
 * The CLI's flags, parsed by node:util.parseArgs (strict: known flags only, `--flag value` or
 * `--flag=value`, `--` ends the flags) and then validated here: numbers where they enter, choices,
 * a flag given twice. Any problem is a UsageError (exit 2) that names the flag, with a
 * did-you-mean for an unknown one.
 */
import { parseArgs as parseNodeArgs } from "node:util";
import { closestName } from "../config/suggest.js";

export class UsageError extends Error {
  override readonly name = "UsageError";
}

export type FlagKind = "string" | "number" | "boolean" | "list";

export interface FlagSpec {
  kind: FlagKind;
  /** A one-letter alias (`-h`). */
  short?: string;
  /** For numbers: the smallest accepted value. */
  min?: number;
  /** For numbers: must be an integer. */
  integer?: boolean;
  /** For strings: the accepted values. */
  choices?: readonly string[];
}

export interface ParsedArgs {
  positionals: string[];
  flags: Map<string, string | number | boolean | string[]>;
}

/** Flags every command takes. */
export const COMMON_FLAGS: Readonly<Record<string, FlagSpec>> = {
  help: { kind: "boolean", short: "h" },
};

/** The flag name an unknown-flag or bad-value error from node:util.parseArgs is about. */
function flagOf(message: string): string | undefined {
  return /'(--?[^' <]+)/.exec(message)?.[1];
}

export function parseArgs(argv: readonly string[], specs: Readonly<Record<string, FlagSpec>>): ParsedArgs {
  const all = { ...COMMON_FLAGS, ...specs };
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean; short?: string }> = {};
  for (const [name, spec] of Object.entries(all)) {
    options[name] = {
      type: spec.kind === "boolean" ? "boolean" : "string",
      ...(spec.kind === "boolean" || spec.kind === "list" ? { multiple: spec.kind === "list" } : { multiple: true }),
      ...(spec.short ? { short: spec.short } : {}),
    };
  }
  let parsed;
  try {
    parsed = parseNodeArgs({ args: [...argv], options, allowPositionals: true, strict: true });
  } catch (err) {
    const e = err as Error & { code?: string };
    const flag = flagOf(e.message);
    if (e.code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && flag !== undefined) {
      const known = Object.keys(all).map((n) => `--${n}`);
      const guess = flag.startsWith("--") ? closestName(flag, known, 2) : undefined;
      throw new UsageError(`unknown flag '${flag}'${guess ? ` (did you mean '${guess}'?)` : ""} (known: ${known.join(", ")})`);
    }
    if (e.code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && flag !== undefined) {
      if (/does not take an argument/.test(e.message)) throw new UsageError(`flag '${flag}' takes no value`);
      throw new UsageError(`flag '${flag}' needs a value (for a value starting with '-', write ${flag}=VALUE)`);
    }
    throw new UsageError(e.message);
  }
  const flags = new Map<string, string | number | boolean | string[]>();
  for (const [name, raw] of Object.entries(parsed.values)) {
    const spec = all[name]!;
    if (spec.kind === "boolean") {
      flags.set(name, true);
      continue;
    }
    const values = raw as string[];
    if (spec.kind === "list") {
      flags.set(name, values);
      continue;
    }
    if (values.length > 1) throw new UsageError(`flag '--${name}' given twice`);
    const value = values[0]!;
    if (spec.kind === "number") {
      const n = value.trim() === "" ? Number.NaN : Number(value);
      if (!Number.isFinite(n)) throw new UsageError(`flag '--${name}' needs a number, got '${value}'`);
      if (spec.integer && !Number.isInteger(n)) throw new UsageError(`flag '--${name}' needs a whole number, got '${value}'`);
      if (spec.min !== undefined && n < spec.min) throw new UsageError(`flag '--${name}' must be >= ${spec.min}, got '${value}'`);
      flags.set(name, n);
    } else {
      if (spec.choices && !spec.choices.includes(value)) {
        const guess = closestName(value, spec.choices, 2);
        throw new UsageError(`flag '--${name}' must be one of ${spec.choices.join(", ")}, got '${value}'${guess ? ` (did you mean '${guess}'?)` : ""}`);
      }
      flags.set(name, value);
    }
  }
  return { positionals: parsed.positionals, flags };
}

/** Parses repeated `--meta KEY=VALUE` flags. */
export function parseMeta(list: readonly string[] | undefined): Record<string, string> {
  const meta: Record<string, string> = {};
  for (const item of list ?? []) {
    const eq = item.indexOf("=");
    if (eq <= 0) throw new UsageError(`--meta needs KEY=VALUE, got '${item}'`);
    meta[item.slice(0, eq)] = item.slice(eq + 1);
  }
  return meta;
}
