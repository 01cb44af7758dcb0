/**
 * `${...}` templates in condition values: `"${actor.meta.tenant}:"` becomes, for an actor with
 * tenant `t1`, the byte string `t1:`. Only actor fields may be referenced, so a template is
 * evaluated once per bound actor. `$${` writes a literal `${`.
 */
import { byteStringFromText } from "../bytes.js";
import { parseField, readActorField, type ActorField } from "./fields.js";
import type { Actor, MetaValue } from "./types.js";

/**
 * A string value with actor-field references. Literal parts are byte strings. A template
 * that is exactly one reference yields the actor value itself (a number stays a number);
 * otherwise the parts are concatenated into a string.
 */
export interface Template {
  readonly parts: readonly (string | ActorField)[];
}

/**
 * Parses a value written in a policy file: a byte string when it has no references, a
 * Template when it has, or `{ error }` for bad syntax.
 */
export function parseTemplate(text: string): string | Template | { error: string } {
  if (!text.includes("${")) return byteStringFromText(text);
  const parts: (string | ActorField)[] = [];
  let literal = "";
  let i = 0;
  while (i < text.length) {
    if (text.startsWith("$${", i)) {
      literal += "${";
      i += 3;
    } else if (text.startsWith("${", i)) {
      const close = text.indexOf("}", i + 2);
      if (close < 0) return { error: `unterminated "\${" in ${JSON.stringify(text)}` };
      const name = text.slice(i + 2, close);
      const field = parseField(name);
      if (typeof field === "string" || field.scope !== "actor") {
        return { error: `template "\${${name}}" can only reference actor.id or actor.meta.<name>` };
      }
      if (literal !== "") parts.push(byteStringFromText(literal));
      literal = "";
      parts.push(field);
      i = close + 1;
    } else {
      literal += text[i];
      i += 1;
    }
  }
  if (literal !== "") parts.push(byteStringFromText(literal));
  if (parts.every((part) => typeof part === "string")) return parts.join("");
  return { parts };
}

/** Resolves a template for an actor; undefined when it references a missing actor field. */
export function resolveTemplate(template: Template, actor: Actor): MetaValue | undefined {
  const { parts } = template;
  const only = parts[0];
  if (parts.length === 1 && only !== undefined && typeof only !== "string") return readActorField(only, actor);
  let text = "";
  for (const part of parts) {
    if (typeof part === "string") {
      text += part;
    } else {
      const value = readActorField(part, actor);
      if (value === undefined) return undefined;
      text += String(value);
    }
  }
  return text;
}
