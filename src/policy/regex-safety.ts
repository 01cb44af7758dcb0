/**
 * Load-time guard for `matches` regexes. V8's engine backtracks, so a policy regex such as
 * `(a+)+$` could take exponential time on a key an untrusted script chose. The check is
 * conservative: a group repeated by a quantifier (`*`, `+`, `{2,}`, ...) may not contain a
 * variable quantifier or a `|`, and backreferences are refused. Polynomial cases such as
 * `.*.*x` remain possible; they are bounded by the store's maximum key length.
 *
 * Regexes match byte strings, so a non-ASCII character is several "characters" to the
 * engine; the check refuses the two places where that silently changes meaning: inside
 * `[...]` and directly before a quantifier.
 */

interface GroupFrame {
  /** A quantifier with min != max appears somewhere inside. */
  variable: boolean;
  /** A `|` appears somewhere inside. */
  alternation: boolean;
}

/** What the previous token was, for the quantifier that may follow it. */
type Atom =
  | { kind: "none" }
  | { kind: "char"; nonAscii: boolean }
  | { kind: "group"; variable: boolean; alternation: boolean };

const NONE: Atom = { kind: "none" };

/** Returns why `source` (a valid JS regex source, as text) is refused, or undefined. */
export function unsafeRegexReason(source: string): string | undefined {
  const stack: GroupFrame[] = [{ variable: false, alternation: false }];
  let atom: Atom = NONE;
  let i = 0;
  while (i < source.length) {
    const c = source[i]!;
    const frame = stack[stack.length - 1]!;
    if (c === "\\") {
      const next = source[i + 1] ?? "";
      if (/[1-9]/.test(next) || next === "k") {
        return "backreferences are not allowed in policy regexes";
      }
      atom = { kind: "char", nonAscii: next > "\x7f" };
      i += 2;
    } else if (c === "[") {
      const end = classEnd(source, i);
      if (/[^\x00-\x7f]/.test(source.slice(i, end))) {
        return "non-ASCII characters inside [...] would match single bytes of their UTF-8 encoding; write them as alternatives, e.g. (?:é|è)";
      }
      atom = { kind: "char", nonAscii: false };
      i = end;
    } else if (c === "(") {
      stack.push({ variable: false, alternation: false });
      atom = NONE;
      i = groupBodyStart(source, i);
    } else if (c === ")") {
      const group = stack.length > 1 ? stack.pop()! : frame;
      const parent = stack[stack.length - 1]!;
      parent.variable ||= group.variable;
      parent.alternation ||= group.alternation;
      atom = { kind: "group", variable: group.variable, alternation: group.alternation };
      i += 1;
    } else if (c === "|") {
      frame.alternation = true;
      atom = NONE;
      i += 1;
    } else {
      const quantifier = readQuantifier(source, i);
      if (quantifier === undefined) {
        atom = { kind: "char", nonAscii: c > "\x7f" };
        i += 1;
        continue;
      }
      if (atom.kind === "char" && atom.nonAscii) {
        return "a quantifier after a non-ASCII character repeats only its last UTF-8 byte; wrap it in a group, e.g. (?:é)+";
      }
      if (atom.kind === "group" && quantifier.max > 1 && (atom.variable || atom.alternation)) {
        return "a repeated group contains a quantifier or `|` (like (a+)+ or (a|ab)*), which can take exponential time; rewrite it without nesting";
      }
      if (quantifier.min !== quantifier.max) frame.variable = true;
      atom = NONE;
      i = quantifier.end;
    }
  }
  return undefined;
}

/** Index just past a group's opening: `(`, `(?:`, `(?=`, `(?!`, `(?<=`, `(?<!` or `(?<name>`. */
function groupBodyStart(source: string, i: number): number {
  if (!source.startsWith("(?", i)) return i + 1;
  if (source.startsWith("(?<=", i) || source.startsWith("(?<!", i)) return i + 4;
  if (source.startsWith("(?<", i)) {
    const close = source.indexOf(">", i);
    return close < 0 ? source.length : close + 1;
  }
  return i + 3;
}

/** Index just past the `]` closing the class that opens at `start`. */
function classEnd(source: string, start: number): number {
  let i = start + 1;
  if (source[i] === "^") i += 1;
  while (i < source.length) {
    const c = source[i]!;
    if (c === "\\") i += 2;
    else if (c === "]") return i + 1;
    else i += 1;
  }
  return source.length;
}

/** Reads `*`, `+`, `?` or a `{n}`, `{n,}`, `{n,m}` quantifier (and a lazy `?`) at `i`. */
function readQuantifier(source: string, i: number): { min: number; max: number; end: number } | undefined {
  const c = source[i];
  let result: { min: number; max: number; end: number } | undefined;
  if (c === "*") result = { min: 0, max: Infinity, end: i + 1 };
  else if (c === "+") result = { min: 1, max: Infinity, end: i + 1 };
  else if (c === "?") result = { min: 0, max: 1, end: i + 1 };
  else if (c === "{") {
    // Outside unicode mode a `{` that does not start a valid quantifier is a literal.
    const match = /^\{(\d+)(,(\d*))?\}/.exec(source.slice(i));
    if (match === null) return undefined;
    const min = Number(match[1]);
    const max = match[2] === undefined ? min : match[3] === "" ? Infinity : Number(match[3]);
    result = { min, max, end: i + match[0].length };
  }
  if (result !== undefined && source[result.end] === "?") result.end += 1;
  return result;
}
