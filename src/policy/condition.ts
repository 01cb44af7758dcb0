/**
 * Compiled conditions, and their specialization to one actor. Binding resolves everything
 * that depends only on the actor (actor fields, `${...}` templates, `value_from` actor
 * fields): a condition then either holds, fails, or becomes a {@link BoundCondition} that
 * reads only request fields on the hot path.
 */
import { readActorField, readRequestField, type Field, type RequestField } from "./fields.js";
import type { Operand, Operator } from "./operators.js";
import type { PolicyRegex } from "./regex-safety.js";
import { resolveTemplate, type Template } from "./template.js";
import type { Actor, MetaValue, RequestMeta } from "./types.js";

/** A template or literal list item. */
export type ListItem = MetaValue | Template;

/** The right-hand side of a compiled condition. */
export type CompiledOperand =
  | { readonly kind: "none" }
  | { readonly kind: "literal"; readonly value: MetaValue | PolicyRegex }
  | { readonly kind: "template"; readonly template: Template }
  | { readonly kind: "list"; readonly items: readonly ListItem[] }
  | { readonly kind: "field"; readonly field: Field };

export interface CompiledCondition {
  readonly field: Field;
  readonly operator: Operator;
  readonly operand: CompiledOperand;
  /** The condition as written, for explanations. */
  readonly text: string;
}

/** A condition left to check per request: at least one side is a request field. */
export interface BoundCondition {
  readonly test: Operator["test"];
  /** The request field to read, or null when the left side is the constant `leftValue`. */
  readonly leftField: RequestField | null;
  readonly leftValue: MetaValue | undefined;
  /** The request field to read, or null when the operand is the constant `operand`. */
  readonly rightField: RequestField | null;
  readonly operand: Operand;
}

const UNRESOLVED = Symbol("unresolved");

/** Resolves an operand's actor-dependent parts; UNRESOLVED when a referenced actor field is missing. */
function resolveOperand(operand: CompiledOperand, actor: Actor): Operand | typeof UNRESOLVED {
  switch (operand.kind) {
    case "none":
      return undefined;
    case "literal":
      return operand.value;
    case "template":
      return resolveTemplate(operand.template, actor) ?? UNRESOLVED;
    case "list": {
      const values = new Set<MetaValue>();
      for (const item of operand.items) {
        const value = isTemplate(item) ? resolveTemplate(item, actor) : item;
        if (value === undefined) return UNRESOLVED;
        values.add(value);
      }
      return values;
    }
    case "field":
      if (operand.field.scope === "request") return undefined; // read per request
      return readActorField(operand.field, actor) ?? UNRESOLVED;
  }
}

/** True when a list item is a template rather than a literal. */
export function isTemplate(item: ListItem): item is Template {
  return typeof item === "object";
}

/**
 * Specializes a condition to an actor: `true`/`false` when it no longer depends on the
 * request, else a BoundCondition. A template or `value_from` naming a missing actor field
 * makes the condition false, so `starts_with: "${actor.meta.tenant}:"` never matches an
 * actor without a tenant.
 */
export function bindCondition(condition: CompiledCondition, actor: Actor): boolean | BoundCondition {
  const { field, operator, operand } = condition;
  const resolved = resolveOperand(operand, actor);
  if (resolved === UNRESOLVED) return false;
  const rightField = operand.kind === "field" && operand.field.scope === "request" ? operand.field : null;
  const leftField = field.scope === "request" ? field : null;
  const leftValue = field.scope === "actor" ? readActorField(field, actor) : undefined;
  if (leftField === null && rightField === null) return operator.test(leftValue, resolved);
  return { test: operator.test, leftField, leftValue, rightField, operand: resolved };
}

/** Checks a bound condition against a request (hot path: no allocation). */
export function holds(
  condition: BoundCondition,
  action: string,
  resource: string,
  meta: RequestMeta | undefined,
): boolean {
  const value =
    condition.leftField === null ? condition.leftValue : readRequestField(condition.leftField, action, resource, meta);
  if (condition.rightField === null) return condition.test(value, condition.operand);
  const operand = readRequestField(condition.rightField, action, resource, meta);
  return operand !== undefined && condition.test(value, operand);
}

/** The value a bound condition sees on its left side, for explanations. */
export function leftValueOf(
  condition: BoundCondition,
  action: string,
  resource: string,
  meta: RequestMeta | undefined,
): MetaValue | undefined {
  return condition.leftField === null ? condition.leftValue : readRequestField(condition.leftField, action, resource, meta);
}
