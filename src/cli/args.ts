/**
 * A small strict flag parser for the CLI: known flags only, `--flag value` or `--flag=value`,
 * repeatable flags collected, numbers validated where they enter. Any problem is a
 * UsageError (exit 2) with a message that names the flag.
 */
export class UsageError extends Error {
  override readonly name = "UsageError";
}

export type FlagKind = "string" | "number" | "boolean" | "list";

export interface FlagSpec {
  kind: FlagKind;
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

export function parseArgs(argv: readonly string[], specs: Readonly<Record<string, FlagSpec>>): ParsedArgs {
  const positionals: string[] = [];
  const flags = new Map<string, string | number | boolean | string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (!arg.startsWith("--") || arg === "--") {
      if (arg.startsWith("-") && arg.length > 1) throw new UsageError(`unknown flag '${arg}'`);
      positionals.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const name = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const spec = specs[name];
    if (spec === undefined) {
      throw new UsageError(`unknown flag '--${name}' (known: ${Object.keys(specs).map((n) => `--${n}`).join(", ")})`);
    }
    if (spec.kind === "boolean") {
      if (eq !== -1) throw new UsageError(`flag '--${name}' takes no value`);
      flags.set(name, true);
      continue;
    }
    let value: string;
    if (eq !== -1) value = arg.slice(eq + 1);
    else {
      const next = argv[i + 1];
      if (next === undefined) throw new UsageError(`flag '--${name}' needs a value`);
      value = next;
      i++;
    }
    if (spec.kind === "list") {
      const list = (flags.get(name) as string[] | undefined) ?? [];
      list.push(value);
      flags.set(name, list);
    } else if (spec.kind === "number") {
      const n = value.trim() === "" ? Number.NaN : Number(value);
      if (!Number.isFinite(n)) throw new UsageError(`flag '--${name}' needs a number, got '${value}'`);
      if (spec.integer && !Number.isInteger(n)) throw new UsageError(`flag '--${name}' needs a whole number, got '${value}'`);
      if (spec.min !== undefined && n < spec.min) throw new UsageError(`flag '--${name}' must be >= ${spec.min}, got '${value}'`);
      flags.set(name, n);
    } else {
      if (spec.choices && !spec.choices.includes(value)) {
        throw new UsageError(`flag '--${name}' must be one of ${spec.choices.join(", ")}, got '${value}'`);
      }
      if (flags.has(name)) throw new UsageError(`flag '--${name}' given twice`);
      flags.set(name, value);
    }
  }
  return { positionals, flags };
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
