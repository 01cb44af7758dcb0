/**
 * Condition operators. Each one says what its `value` must be and how it tests a field value
 * against the resolved operand. A new operator is one entry in {@link OPERATORS}.
 *
 * Comparisons are strict: no coercion between strings, numbers and booleans (`"5"` is not
 * `5`), and a missing field (`undefined`) fails every operator except `nexists`.
 */
import type { PolicyRegex } from "./regex-safety.js";
import type { MetaValue } from "./types.js";

/** The right-hand side of a condition once templates and `value_from` are resolved. */
export type Operand = MetaValue | ReadonlySet<MetaValue> | PolicyRegex | undefined;

/** What an operator's `value` must be. */
export type OperandKind =
  /** `exists`/`nexists`: no value. */
  | "none"
  /** A string, number or boolean; strings may hold templates. */
  | "scalar"
  /** A string, may hold templates. */
  | "string"
  /** A finite number. */
  | "number"
  /** A non-empty list of scalars; strings may hold templates. */
  | "list"
  /** A regular expression source, compiled at load (RE2 syntax, linear-time matching). */
  | "regex";

export interface Operator {
  readonly name: string;
  readonly operand: OperandKind;
  /** Whether `value_from: <field>` may replace `value`. */
  readonly valueFrom: boolean;
  /**
   * Numeric operators only make sense on actor metadata, the only fields that can hold
   * numbers; a condition comparing `meta.key` with `lt` could never hold, so it is refused.
   */
  readonly actorMetaOnly: boolean;
  /** The parser guarantees `operand` has the shape `operand` names (or comes from `value_from`). */
  readonly test: (value: MetaValue | undefined, operand: Operand) => boolean;
}

function operator(
  name: string,
  operand: OperandKind,
  test: Operator["test"],
  options: { valueFrom?: boolean; actorMetaOnly?: boolean } = {},
): Operator {
  return { name, operand, test, valueFrom: options.valueFrom ?? false, actorMetaOnly: options.actorMetaOnly ?? false };
}

const isNumber = (v: unknown): v is number => typeof v === "number";
const isString = (v: unknown): v is string => typeof v === "string";

/** Every operator by name. */
export const OPERATORS: ReadonlyMap<string, Operator> = new Map(
  [
    operator("eq", "scalar", (v, o) => v !== undefined && v === o, { valueFrom: true }),
    operator("ne", "scalar", (v, o) => v !== undefined && o !== undefined && v !== o, { valueFrom: true }),
    operator("in", "list", (v, o) => v !== undefined && (o as ReadonlySet<MetaValue>).has(v)),
    operator("nin", "list", (v, o) => v !== undefined && !(o as ReadonlySet<MetaValue>).has(v)),
    operator("starts_with", "string", (v, o) => isString(v) && isString(o) && v.startsWith(o), { valueFrom: true }),
    operator("ends_with", "string", (v, o) => isString(v) && isString(o) && v.endsWith(o), { valueFrom: true }),
    operator("contains", "string", (v, o) => isString(v) && isString(o) && v.includes(o), { valueFrom: true }),
    operator("matches", "regex", (v, o) => isString(v) && (o as PolicyRegex).test(v)),
    operator("exists", "none", (v) => v !== undefined),
    operator("nexists", "none", (v) => v === undefined),
    operator("lt", "number", (v, o) => isNumber(v) && isNumber(o) && v < o, { valueFrom: true, actorMetaOnly: true }),
    operator("lte", "number", (v, o) => isNumber(v) && isNumber(o) && v <= o, { valueFrom: true, actorMetaOnly: true }),
    operator("gt", "number", (v, o) => isNumber(v) && isNumber(o) && v > o, { valueFrom: true, actorMetaOnly: true }),
    operator("gte", "number", (v, o) => isNumber(v) && isNumber(o) && v >= o, { valueFrom: true, actorMetaOnly: true }),
  ].map((op) => [op.name, op]),
);
