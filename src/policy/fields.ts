/**
 * The fields a condition can read. Actor fields are fixed for a run, so they are resolved
 * once when an actor is bound; request fields are read on every check.
 */
import { closestName } from "../config/suggest.js";
import type { Actor, MetaValue, RequestMeta } from "./types.js";

/**
 * The `meta.<name>` fields a request carries. A name outside this list is a load error, so a
 * typo such as `meta.kye` cannot silently turn a deny policy off. Add new RequestMeta
 * fields here.
 */
export const REQUEST_META_FIELDS = ["key", "prefix"] as const satisfies readonly (keyof RequestMeta)[];
export type RequestMetaField = (typeof REQUEST_META_FIELDS)[number];

/** A field of the actor: its id or one of its metadata values. */
export type ActorField =
  | { readonly scope: "actor"; readonly kind: "id"; readonly text: string }
  | { readonly scope: "actor"; readonly kind: "meta"; readonly name: string; readonly text: string };

/** A field of the request: the action, the resource or one of the RequestMeta values. */
export type RequestField =
  | { readonly scope: "request"; readonly kind: "action" | "resource"; readonly text: string }
  | { readonly scope: "request"; readonly kind: "meta"; readonly name: RequestMetaField; readonly text: string };

export type Field = ActorField | RequestField;

/** The field names accepted, for error messages. */
export const FIELD_NAMES_HELP = `actor.id, actor.meta.<name>, action, resource, ${REQUEST_META_FIELDS.map((n) => `meta.${n}`).join(", ")}`;

/** Parses a field name; returns an error message when it names no field. */
export function parseField(text: string): Field | string {
  if (text === "actor.id") return { scope: "actor", kind: "id", text };
  if (text === "action" || text === "resource") return { scope: "request", kind: text, text };
  if (text.startsWith("actor.meta.")) {
    const name = text.slice("actor.meta.".length);
    if (name !== "") return { scope: "actor", kind: "meta", name, text };
  }
  if (text.startsWith("meta.")) {
    const name = text.slice("meta.".length);
    const known = REQUEST_META_FIELDS.find((n) => n === name);
    if (known !== undefined) return { scope: "request", kind: "meta", name: known, text };
  }
  const guess = fieldGuess(text);
  return `unknown field ${JSON.stringify(text)}${guess ? ` (did you mean ${JSON.stringify(guess)}?)` : ""} (expected one of ${FIELD_NAMES_HELP})`;
}

/** Every field name with no open part: what a typo is most often a typo of. */
const FIXED_FIELDS = ["actor.id", "action", "resource", ...REQUEST_META_FIELDS.map((n) => `meta.${n}`)];

/**
 * The field an unknown name most likely meant: a fixed field within two edits (`meta.kye` →
 * `meta.key`), `actor.meta.<name>` for a misspelt prefix (`actor.mata.team`), or the actor's
 * meta for a request meta name that is not one (`meta.team` → `actor.meta.team`: actors carry
 * open metadata, requests only {@link REQUEST_META_FIELDS}).
 */
function fieldGuess(text: string): string | undefined {
  const fixed = closestName(text, FIXED_FIELDS, 2);
  if (fixed !== undefined) return fixed;
  const dots = [...text.matchAll(/\./g)].map((m) => m.index);
  for (const dot of dots) {
    const name = text.slice(dot + 1);
    if (name === "") continue;
    const prefix = text.slice(0, dot);
    if (prefix === "meta") return `actor.meta.${name}`;
    if (prefix !== "actor.meta" && closestName(prefix, ["actor.meta"], 2) !== undefined) return `actor.meta.${name}`;
  }
  return undefined;
}

/** True when `value` is a string, a number or a boolean. */
export function isMetaValue(value: unknown): value is MetaValue {
  const type = typeof value;
  return type === "string" || type === "number" || type === "boolean";
}

/**
 * Reads an actor field. Only own properties count: `actor.meta.constructor` must not find
 * Object.prototype's, or a policy could match an actor that has no such metadata.
 */
export function readActorField(field: ActorField, actor: Actor): MetaValue | undefined {
  if (field.kind === "id") return actor.id;
  if (!Object.hasOwn(actor.meta, field.name)) return undefined;
  const value: unknown = actor.meta[field.name];
  return isMetaValue(value) ? value : undefined;
}

/** Reads a request field (hot path). */
export function readRequestField(
  field: RequestField,
  action: string,
  resource: string,
  meta: RequestMeta | undefined,
): string | undefined {
  switch (field.kind) {
    case "action":
      return action;
    case "resource":
      return resource;
    case "meta":
      return meta === undefined ? undefined : meta[field.name];
  }
}
