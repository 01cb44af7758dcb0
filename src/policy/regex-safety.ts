/**
 * Policy `matches` regexes: compiled by re2js, a JavaScript port of RE2, whose matching time is
 * linear in the input length whatever the pattern, so a key an untrusted script chose cannot stall
 * the store thread (`^(a+)+$` and `^a*a*a*a*a*a*b$` are as cheap as `^a+$`).
 *
 * The load-time check here is only for what RE2 does not do, so that the refusal names the
 * construct and where it is rather than RE2's generic parse error: backreferences and lookaround
 * (which no linear-time engine can offer). It also refuses the two places where matching byte
 * strings would silently change what a pattern means: a non-ASCII character inside `[...]` and
 * directly before a quantifier (regexes see one char per byte of UTF-8).
 */
import { RE2JS } from "re2js";

/** A compiled policy regex. `source` is the byte string it was compiled from. */
export interface PolicyRegex {
  readonly source: string;
  /** True when the regex matches somewhere in `value` (unanchored, like RegExp.prototype.test). */
  test(value: string): boolean;
}

/** Why a pattern is refused, and the index (in the pattern text as written) of the construct when known. */
export interface RegexRefusal {
  reason: string;
  index?: number;
}

/**
 * Compiles a policy regex written as `text`; it matches byte strings (`bytes` is `text` as UTF-8
 * bytes, one char each). Returns the regex, or why it is refused and where in `text`.
 */
export function compilePolicyRegex(text: string, bytes: string): PolicyRegex | RegexRefusal {
  const refused = unsupportedRegexConstruct(text);
  if (refused !== undefined) return refused;
  let compiled: RE2JS;
  try {
    compiled = RE2JS.compile(bytes);
  } catch (error) {
    const message = (error as Error).message.replace(/^error parsing regexp: /, "");
    return { reason: `invalid regular expression: ${message}` };
  }
  return { source: bytes, test: (value) => compiled.test(value) };
}

/** True for a compiled regex, false for a refusal. */
export function isPolicyRegex(value: PolicyRegex | RegexRefusal): value is PolicyRegex {
  return "test" in value;
}

/** What the previous token was, for the quantifier that may follow it. */
type Atom = "none" | "ascii" | "non-ascii";

/**
 * The first construct of `source` (a regex as written) that RE2 does not support or that would
 * change meaning on byte strings, with its index; undefined when there is none.
 */
export function unsupportedRegexConstruct(source: string): RegexRefusal | undefined {
  let atom: Atom = "none";
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    if (c === "\\") {
      const next = source[i + 1] ?? "";
      if (/[1-9]/.test(next) || next === "k") {
        return { reason: "backreferences are not supported (policy regexes run in linear time)", index: i };
      }
      atom = next > "\x7f" ? "non-ascii" : "ascii";
      i += 2;
    } else if (c === "[") {
      const end = classEnd(source, i);
      const nonAscii = source.slice(i, end).search(/[^\x00-\x7f]/);
      if (nonAscii >= 0) {
        return {
          reason: "non-ASCII characters inside [...] would match single bytes of their UTF-8 encoding; write them as alternatives, e.g. (?:é|è)",
          index: i + nonAscii,
        };
      }
      atom = "ascii";
      i = end;
    } else if (c === "(") {
      if (/^\(\?<?[=!]/.test(source.slice(i, i + 4))) {
        return { reason: "lookahead and lookbehind are not supported (policy regexes run in linear time)", index: i };
      }
      atom = "none";
      i += 1;
    } else if (c === "*" || c === "+" || c === "?" || (c === "{" && /^\{\d+(,\d*)?\}/.test(source.slice(i, i + 24)))) {
      if (atom === "non-ascii") {
        return { reason: "a quantifier after a non-ASCII character repeats only its last UTF-8 byte; wrap it in a group, e.g. (?:é)+", index: i };
      }
      atom = "none";
      i += 1;
    } else {
      atom = c > "\x7f" ? "non-ascii" : "ascii";
      i += 1;
    }
  }
  return undefined;
}

/** Index just past the `]` closing the class that opens at `start`. */
function classEnd(source: string, start: number): number {
  let i = start + 1;
  if (source[i] === "^") i += 1;
  // A `]` first in a class is a literal in RE2 syntax.
  if (source[i] === "]") i += 1;
  while (i < source.length) {
    const c = source[i]!;
    if (c === "\\") i += 2;
    else if (c === "]") return i + 1;
    else i += 1;
  }
  return source.length;
}
