/**
 * How a registry entry's fields are declared: each normalized property names its YAML key, a parser
 * that checks and converts the raw value, and a default (no default means required). The loader
 * walks these tables, so a store kind's fields are declared once, in src/registry/kinds.ts.
 */
import { formatDuration, formatSize, parseDuration, parseSize } from "./units.js";

/** A checked and normalized value, or why the raw value is refused (read as "<field>: <message>"). */
export type Parsed<T> = { ok: true; value: T } | { ok: false; message: string };

/** A field holding one value. */
export interface ValueField<T> {
  /** The key as written in registry.yaml, e.g. `max_size`. */
  readonly key: string;
  readonly parse: (raw: unknown) => Parsed<T>;
  /** Used when the key is absent. A field without a `default` property is required. */
  readonly default?: T;
}

/** A field holding a nested mapping with its own fields, e.g. `pool: { max: 64 }`. */
export interface SectionField<T> {
  readonly key: string;
  readonly fields: FieldTable<T>;
}

/** A nested mapping that may be absent (then the property is undefined), e.g. `quota`. */
export interface OptionalSectionField<T> extends SectionField<T> {
  readonly optional: true;
}

/** A field of type `T`; only object-typed properties may be sections. */
export type Field<T> =
  | ValueField<T>
  | ([T] extends [object] ? SectionField<T> : never)
  | (undefined extends T
      ? [NonNullable<T>] extends [readonly unknown[]]
        ? never // a list is a value, not a section
        : [NonNullable<T>] extends [object]
          ? OptionalSectionField<NonNullable<T>>
          : never
      : never);

/** One field per property of the normalized config `T`; the compiler checks none is forgotten. */
export type FieldTable<T> = { readonly [P in keyof T]-?: Field<T[P]> };

/** A field table with its config type erased, as the loader walks it. */
export type AnyFieldTable = { readonly [property: string]: AnyField };
export type AnyField = ValueField<unknown> | { readonly key: string; readonly fields: AnyFieldTable; readonly optional?: true };

/** True when the field is a nested mapping. */
export function isSectionField(field: AnyField): field is { readonly key: string; readonly fields: AnyFieldTable; readonly optional?: true } {
  return "fields" in field;
}

const keysOfTable = new WeakMap<AnyFieldTable, readonly string[]>();
const entriesOfTable = new WeakMap<AnyFieldTable, readonly (readonly [string, AnyField])[]>();

/** A table's `[property, field]` pairs, in declaration order (built once per table). */
export function fieldEntries(table: AnyFieldTable): readonly (readonly [string, AnyField])[] {
  let entries = entriesOfTable.get(table);
  if (entries === undefined) {
    entries = Object.freeze(Object.entries(table));
    entriesOfTable.set(table, entries);
  }
  return entries;
}

/** The YAML keys a table accepts, in declaration order (built once per table). */
export function fieldKeys(table: AnyFieldTable): readonly string[] {
  let keys = keysOfTable.get(table);
  if (keys === undefined) {
    keys = Object.freeze(Object.values(table).map((field) => field.key));
    keysOfTable.set(table, keys);
  }
  return keys;
}

/** An integer in `[min, max]` (max defaults to the largest safe integer). */
export function integer(range: { min: number; max?: number }): (raw: unknown) => Parsed<number> {
  const { min, max = Number.MAX_SAFE_INTEGER } = range;
  const expected = max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`;
  return (raw) => {
    if (typeof raw !== "number" || !Number.isInteger(raw)) return refuse(`must be ${expected}, got ${describeValue(raw)}`);
    if (raw < min || raw > max) return refuse(`must be ${expected}, got ${raw}`);
    return accept(raw);
  };
}

/** A positive duration (see parseDuration), normalized to milliseconds, at most `maxMs`. */
export function duration(range: { maxMs: number }): (raw: unknown) => Parsed<number> {
  return (raw) => {
    if (typeof raw !== "number" && typeof raw !== "string") {
      return refuse(`must be a duration (a number of seconds or a string like "30s"), got ${describeValue(raw)}`);
    }
    const parsed = parseDuration(raw);
    if (!parsed.ok) return parsed;
    if (parsed.value <= 0) return refuse(`must be greater than 0, got ${JSON.stringify(raw)}`);
    if (parsed.value > range.maxMs) {
      return refuse(`must be at most ${formatDuration(range.maxMs)}, got ${JSON.stringify(raw)}`);
    }
    return parsed;
  };
}

/** A size (see parseSize), normalized to bytes, in `[min, max]`. */
export function size(range: { min: number; max: number }): (raw: unknown) => Parsed<number> {
  return (raw) => {
    if (typeof raw !== "number" && typeof raw !== "string") {
      return refuse(`must be a size (a number of bytes or a string like "64KiB"), got ${describeValue(raw)}`);
    }
    const parsed = parseSize(raw);
    if (!parsed.ok) return parsed;
    if (parsed.value < range.min || parsed.value > range.max) {
      const bounds = `${formatSize(range.min)} to ${formatSize(range.max)}`;
      return refuse(`must be from ${bounds}, got ${JSON.stringify(raw)} (${parsed.value} bytes)`);
    }
    return parsed;
  };
}

/** One of a fixed set of strings. */
export function oneOf<const T extends string>(choices: readonly T[]): (raw: unknown) => Parsed<T> {
  const list = choices.join(", ");
  return (raw) =>
    typeof raw === "string" && (choices as readonly string[]).includes(raw)
      ? accept(raw as T)
      : refuse(`must be one of ${list}, got ${describeValue(raw)}`);
}

/** `true` or `false` (YAML booleans; "yes"/"no" strings are refused rather than guessed). */
export function boolean(): (raw: unknown) => Parsed<boolean> {
  return (raw) => (typeof raw === "boolean" ? accept(raw) : refuse(`must be true or false, got ${describeValue(raw)}`));
}

/** A string matching `pattern`; `expected` says what it must be, e.g. "an SQL identifier". */
export function text(options: { pattern: RegExp; expected: string }): (raw: unknown) => Parsed<string> {
  return (raw) => {
    if (typeof raw !== "string") return refuse(`must be ${options.expected}, got ${describeValue(raw)}`);
    if (!options.pattern.test(raw)) return refuse(`must be ${options.expected}, got ${JSON.stringify(raw)}`);
    return accept(raw);
  };
}

/** An actor field: `actor.id` or `actor.meta.<name>`. */
export function actorField(): (raw: unknown) => Parsed<string> {
  const expected = "actor.id or actor.meta.<name>";
  return (raw) => {
    if (typeof raw !== "string") return refuse(`must be ${expected}, got ${describeValue(raw)}`);
    if (!/^actor\.(id|meta\.[A-Za-z0-9_.-]+)$/.test(raw)) return refuse(`must be ${expected}, got ${JSON.stringify(raw)}`);
    return accept(raw);
  };
}

/** Describes a raw value for a message: `a string ("5x")`, `a list`, `null`, `the number 3.5`. */
export function describeValue(raw: unknown): string {
  if (raw === null) return "null";
  if (raw === undefined) return "undefined";
  if (Array.isArray(raw)) return "a list";
  switch (typeof raw) {
    case "string":
      return `a string (${JSON.stringify(raw.length > 40 ? `${raw.slice(0, 37)}...` : raw)})`;
    case "number":
      return `the number ${raw}`;
    case "boolean":
      return `a boolean (${raw})`;
    case "object": {
      const prototype: unknown = Object.getPrototypeOf(raw);
      if (prototype === Object.prototype || prototype === null) return "a mapping";
      const className: unknown = (raw as { constructor?: { name?: unknown } }).constructor?.name;
      if (typeof className === "string" && className !== "") return `an object of class ${className}`;
      return "an object with a prototype";
    }
    default:
      return `a ${typeof raw}`;
  }
}

function accept<T>(value: T): Parsed<T> {
  return { ok: true, value };
}

function refuse<T>(message: string): Parsed<T> {
  return { ok: false, message };
}
