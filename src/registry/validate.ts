/**
 * Validates registry documents given as plain values (from YAML or from code) against the field
 * tables of src/registry/kinds.ts. It never stops at the first problem: every problem is collected,
 * positioned through a `Locator` that knows where each path came from.
 */
import { closestName } from "../config/suggest.js";
import type { Problem, SourcePosition } from "../errors.js";
import type { StoreConfig, StoreKind } from "./types.js";
import { describeValue, fieldEntries, fieldKeys, isSectionField, type AnyFieldTable } from "./fields.js";
import { COMMON_FIELDS, IDENTITY_KEYS, KIND_FIELDS, KIND_RULES, STORE_KINDS, commonRules, isStoreKind, type CommonSettings, type RuleProblem } from "./kinds.js";

/** Keys and sequence indexes from a document's root to a value, e.g. `["entries", 0, "pool", "max"]`. */
export type Path = readonly (string | number)[];

/** Turns paths of one document into positioned problems; one implementation per kind of input. */
export interface Locator {
  /** A problem at the value (or, with `"key"`, the key) at `path`, or at its nearest existing ancestor. */
  problem(path: Path, message: string, at?: "key" | "value"): Problem;
  /** How a message names the field at `path`, e.g. `max_size` or `entries[0].max_size`. */
  label(path: Path): string;
  /** Where the value at `path` is, for a message about another place ("registry.yaml:4:11"). */
  describe(path: Path): string;
  /** The position of the value at `path`. */
  position(path: Path): SourcePosition;
}

/** What validation accumulates across every document of a registry. */
export interface ValidationState {
  problems: Problem[];
  /** Entries without problems, in declaration order. */
  entries: StoreConfig[];
  /** Where each ID was first declared, so that a duplicate can say so. */
  firstDeclared: Map<string, string>;
}

const DOCUMENT_KEYS = ["version", "namespace", "entries"] as const;
const SUPPORTED_VERSION = "1.0";
const IDENTIFIER = /^[A-Za-z0-9_.-]+$/;
/**
 * Longest store id (`namespace:name`). `store.get` refuses a longer id as Invalid before any
 * policy sees it, so a script cannot hand the policy engine an id of its choosing of any length.
 */
export const MAX_STORE_ID_BYTES = 255;

type Mapping = Readonly<Record<string, unknown>>;

/** Validates one document, adding its problems and its valid entries to `state`. */
export function validateDocument(raw: unknown, locator: Locator, state: ValidationState): void {
  const check = new Checker(locator, state.problems);
  if (!isMapping(raw)) {
    const expected = "a registry document must be a mapping of version, namespace and entries";
    check.fieldProblem([], `${expected}, got ${describeValue(raw)}`);
    return;
  }
  check.unknownKeys(raw, [], DOCUMENT_KEYS);
  check.version(raw);
  const namespace = check.identifier(raw, [], "namespace");
  const entries = own(raw, "entries");
  if (entries === undefined) {
    check.missing([], "entries");
  } else if (!Array.isArray(entries)) {
    check.fieldProblem(["entries"], `must be a list of entries, got ${describeValue(entries)}`);
  } else {
    entries.forEach((entry: unknown, index) => validateEntry(entry, ["entries", index], namespace, check, state));
  }
}

function validateEntry(
  raw: unknown,
  path: Path,
  namespace: string | undefined,
  check: Checker,
  state: ValidationState,
): void {
  if (!isMapping(raw)) {
    check.fieldProblem(path, `an entry must be a mapping with name and kind, got ${describeValue(raw)}`);
    return;
  }
  const problemsBefore = state.problems.length;
  const name = check.identifier(raw, path, "name");
  const kind = check.kind(raw, path);
  // With an unknown kind the other keys may well be that kind's fields: reporting them would be noise.
  if (kind !== undefined) {
    check.unknownKeys(raw, path, entryKeys(kind));
  }
  const common = check.fields(COMMON_FIELDS, raw, path);
  const specific = kind === undefined ? {} : check.fields(KIND_FIELDS[kind], raw, path);
  if (kind !== undefined && state.problems.length === problemsBefore) {
    // Every field parsed, so `specific` has exactly the properties of the kind's settings.
    const rule = KIND_RULES[kind] as ((settings: Record<string, unknown>) => RuleProblem[]) | undefined;
    for (const { key, message } of rule?.(specific) ?? []) {
      check.fieldProblem(key === undefined ? path : [...path, key], message, "key");
    }
    // Every common field parsed too, so `common` has exactly the shared settings.
    for (const { key, message } of commonRules(common as unknown as CommonSettings)) {
      check.fieldProblem(key === undefined ? path : [...path, ...key.split(".")], message);
    }
  }

  if (namespace === undefined || name === undefined) return;
  const id = `${namespace}:${name}`;
  const namePath = [...path, "name"];
  if (id.length > MAX_STORE_ID_BYTES) {
    check.fieldProblem(namePath, `the id '${namespace}:${name.slice(0, 16)}...' is ${id.length} bytes; store ids are at most ${MAX_STORE_ID_BYTES}`);
    return;
  }
  const first = state.firstDeclared.get(id);
  if (first !== undefined) {
    check.fieldProblem(namePath, `duplicate id '${id}' (first declared at ${first})`);
    return;
  }
  state.firstDeclared.set(id, check.locator.describe(namePath));

  if (kind === undefined || state.problems.length > problemsBefore) return;
  // The field tables are typed per property (FieldTable<CommonSettings>, FieldTable<KindSettings<K>>),
  // so the values read from them have exactly the properties of the kind's config.
  const entry = { kind, id, namespace, name, ...common, ...specific, source: check.locator.position(path) };
  state.entries.push(entry as StoreConfig);
}

const keysOfKind = new Map<StoreKind, readonly string[]>();

/** Every key an entry of `kind` accepts (built once per kind). */
function entryKeys(kind: StoreKind): readonly string[] {
  let keys = keysOfKind.get(kind);
  if (keys === undefined) {
    keys = Object.freeze([...IDENTITY_KEYS, ...fieldKeys(COMMON_FIELDS), ...fieldKeys(KIND_FIELDS[kind])]);
    keysOfKind.set(kind, keys);
  }
  return keys;
}

/** Problem reporting and the checks shared by documents, entries and sections. */
class Checker {
  /** "Did you mean" answers by list of known keys, then by unknown key: a typo repeated in 20 000 entries is looked up once. */
  readonly #guesses = new Map<readonly string[], Map<string, string | undefined>>();

  constructor(
    readonly locator: Locator,
    private readonly problems: Problem[],
  ) {}

  /** A problem about the field at `path`, named by its label: `max_size: must be ...`. */
  fieldProblem(path: Path, detail: string, at?: "key" | "value"): void {
    const label = this.locator.label(path);
    this.problems.push(this.locator.problem(path, label === "" ? detail : `${label}: ${detail}`, at));
  }

  /** A required `key` is absent from the mapping at `path`; points at the mapping. */
  missing(path: Path, key: string): void {
    this.problems.push(this.locator.problem(path, `${this.locator.label([...path, key])}: required field is missing`));
  }

  unknownKeys(map: Mapping, path: Path, known: readonly string[]): void {
    for (const key of Object.keys(map)) {
      if (known.includes(key)) continue;
      let guesses = this.#guesses.get(known);
      if (guesses === undefined) this.#guesses.set(known, (guesses = new Map()));
      let guess = guesses.get(key);
      if (guess === undefined && !guesses.has(key)) {
        guess = closest(key, known);
        guesses.set(key, guess);
      }
      const hint = guess === undefined ? `known: ${known.join(", ")}` : `did you mean '${guess}'?`;
      this.fieldProblem([...path, key], `unknown field (${hint})`, "key");
    }
  }

  version(document: Mapping): void {
    const version = own(document, "version");
    if (version === undefined) {
      this.missing([], "version");
    } else if (typeof version === "number") {
      // YAML reads `version: 1.0` as the number 1, which would print confusingly as "1".
      const quoted = JSON.stringify(SUPPORTED_VERSION);
      this.fieldProblem(["version"], `must be the string ${quoted}, got a number (quote it: version: ${quoted})`);
    } else if (typeof version !== "string") {
      this.fieldProblem(["version"], `must be the string "${SUPPORTED_VERSION}", got ${describeValue(version)}`);
    } else if (version !== SUPPORTED_VERSION) {
      this.fieldProblem(["version"], `unsupported version ${JSON.stringify(version)} (supported: "${SUPPORTED_VERSION}")`);
    }
  }

  /** A namespace or name: a non-empty string of `[A-Za-z0-9_.-]`. */
  identifier(map: Mapping, path: Path, key: "namespace" | "name"): string | undefined {
    const value = own(map, key);
    const valuePath = [...path, key];
    if (value === undefined) {
      this.missing(path, key);
    } else if (typeof value !== "string") {
      this.fieldProblem(valuePath, `must be a string, got ${describeValue(value)}`);
    } else if (value === "") {
      this.fieldProblem(valuePath, "must not be empty");
    } else if (!IDENTIFIER.test(value)) {
      const colon = value.includes(":") ? "; ':' separates namespace and name in an id" : "";
      this.fieldProblem(valuePath, `${JSON.stringify(value)} may only contain letters, digits, '_', '.' and '-'${colon}`);
    } else {
      return value;
    }
    return undefined;
  }

  kind(entry: Mapping, path: Path): StoreKind | undefined {
    const kind = own(entry, "kind");
    if (kind === undefined) {
      this.missing(path, "kind");
    } else if (typeof kind !== "string") {
      this.fieldProblem([...path, "kind"], `must be a string, got ${describeValue(kind)}`);
    } else if (!isStoreKind(kind)) {
      this.fieldProblem([...path, "kind"], `unknown kind '${kind}' (known: ${STORE_KINDS.join(", ")})`);
    } else {
      return kind;
    }
    return undefined;
  }

  /** Reads the fields of `table` from `map`, applying defaults; values with problems are left out. */
  fields(table: AnyFieldTable, map: Mapping, path: Path): Record<string, unknown> {
    const values: Record<string, unknown> = {};
    // Field paths are built only where a problem or a section needs one: a registry of 20 000
    // entries reads some 300 000 fields, nearly all of them fine.
    for (const [property, field] of fieldEntries(table)) {
      const raw = own(map, field.key);
      if (isSectionField(field)) {
        if (raw !== undefined && !isMapping(raw)) {
          this.fieldProblem([...path, field.key], `must be a mapping, got ${describeValue(raw)}`);
          continue;
        }
        if (raw === undefined && field.optional === true) {
          values[property] = undefined;
          continue;
        }
        const section = raw ?? {};
        const fieldPath = [...path, field.key];
        this.unknownKeys(section, fieldPath, fieldKeys(field.fields));
        values[property] = this.fields(field.fields, section, fieldPath);
      } else if (raw === undefined) {
        if ("default" in field) values[property] = field.default;
        else this.missing(path, field.key);
      } else {
        const parsed = field.parse(raw);
        if (parsed.ok) values[property] = parsed.value;
        else this.fieldProblem([...path, field.key], parsed.message);
      }
    }
    return values;
  }
}

function isMapping(value: unknown): value is Mapping {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  const prototype: unknown = Object.getPrototypeOf(value);
  return prototype === Object.prototype || prototype === null;
}

/** An own property only: `constructor` or `toString` must read as absent, not as Object's. */
function own(map: Mapping, key: string): unknown {
  return Object.hasOwn(map, key) ? map[key] : undefined;
}

/** The known key a typo most likely meant, if any: one edit per three characters, at most two. */
function closest(key: string, known: readonly string[]): string | undefined {
  return closestName(key.toLowerCase(), known, Math.min(2, Math.max(1, Math.floor(key.length / 3))));
}
