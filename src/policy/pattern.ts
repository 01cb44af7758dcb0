/**
 * Actor, action and resource patterns: `*` matches any run of bytes, everything else is
 * literal, and the whole string must match. Requested values are never patterns: a resource
 * literally named `app:*` is matched as those five bytes.
 */

/** A compiled pattern. `source` is the byte string it was compiled from. */
export interface Pattern {
  readonly source: string;
  /** True when the pattern has no `*`, so it can be indexed by exact string. */
  readonly exact: boolean;
  test(value: string): boolean;
}

/**
 * Compiles a pattern (a byte string) into the cheapest matcher for its shape: an exact
 * compare, a prefix or suffix check, or a segment scan.
 */
export function compilePattern(source: string): Pattern {
  const segments = source.split("*");
  if (segments.length === 1) {
    return { source, exact: true, test: (value) => value === source };
  }
  const first = segments[0] ?? "";
  const last = segments[segments.length - 1] ?? "";
  // `**` means the same as `*`: drop the empty middle segments.
  const middle = segments.slice(1, -1).filter((s) => s !== "");
  if (middle.length === 0) {
    if (first === "" && last === "") return { source, exact: false, test: () => true };
    if (last === "") return { source, exact: false, test: (value) => value.startsWith(first) };
    if (first === "") return { source, exact: false, test: (value) => value.endsWith(last) };
    const minLength = first.length + last.length;
    return {
      source,
      exact: false,
      test: (value) => value.length >= minLength && value.startsWith(first) && value.endsWith(last),
    };
  }
  return { source, exact: false, test: (value) => matchSegments(value, first, middle, last) };
}

/**
 * Matches `first*m1*m2*...*last`. Taking the leftmost occurrence of each middle segment is
 * always right when `*` is the only wildcard, so this never backtracks; an anchored RegExp
 * with several `[\s\S]*` would backtrack polynomially on long non-matching inputs.
 */
function matchSegments(value: string, first: string, middle: readonly string[], last: string): boolean {
  if (!value.startsWith(first)) return false;
  const end = value.length - last.length;
  if (end < first.length || !value.endsWith(last)) return false;
  let at = first.length;
  for (const segment of middle) {
    const found = value.indexOf(segment, at);
    if (found < 0 || found + segment.length > end) return false;
    at = found + segment.length;
  }
  return true;
}

/** True when any of `patterns` matches `value`. */
export function matchesAny(patterns: readonly Pattern[], value: string): boolean {
  for (const pattern of patterns) {
    if (pattern.test(value)) return true;
  }
  return false;
}
