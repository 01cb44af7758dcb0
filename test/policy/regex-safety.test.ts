import fc from "fast-check";
import { describe, expect, test } from "vitest";
import { byteStringFromText } from "../../src/bytes.js";
import { compilePolicyRegex, isPolicyRegex, unsupportedRegexConstruct, type PolicyRegex } from "../../src/policy/regex-safety.js";

function compiled(source: string): PolicyRegex {
  const regex = compilePolicyRegex(source, byteStringFromText(source));
  if (!isPolicyRegex(regex)) throw new Error(`${source} refused: ${regex.reason}`);
  return regex;
}

describe("policy regexes", () => {
  test.each([
    "^t[0-9]+:[a-z]+$",
    "^(?:foo|bar):",
    "(ab)+",
    "(?:a{2})*",
    "(a+)?",
    "^user:\\d{1,8}$",
    "[(+)]+",
    "\\(a+\\)+",
    "(?<name>ab)+",
    "(?P<name>ab)+",
    "^(?:é)+$",
    "^\\xff",
    // Nested quantifiers were refused under the backtracking engine; RE2 matches them in linear time.
    "^(a+)+$",
    "(a|ab)*c",
    "^a*a*a*a*a*a*b$",
    "[]a]+",
  ])("%s is accepted", (source) => {
    expect(unsupportedRegexConstruct(source)).toBeUndefined();
    expect(isPolicyRegex(compilePolicyRegex(source, byteStringFromText(source)))).toBe(true);
  });

  test.each([
    ["(a)\\1", "backreferences", 3],
    ["(?<x>a)\\k<x>", "backreferences", 7],
    ["a(?=b)", "lookahead", 1],
    ["a(?!b)", "lookahead", 1],
    ["(?<=a)b", "lookbehind", 0],
    ["x(?<!a)b", "lookbehind", 1],
    ["^[éè]", "inside [...]", 2],
    ["ab é+", "wrap it in a group", 4],
    ["é{2}", "wrap it in a group", 1],
  ])("%s is refused, naming the construct and where it is", (source, says, index) => {
    const refusal = compilePolicyRegex(source, byteStringFromText(source));
    expect(isPolicyRegex(refusal)).toBe(false);
    expect(refusal).toMatchObject({ index });
    expect((refusal as { reason: string }).reason).toContain(says);
  });

  test.each(["(unclosed", "a{1001}", "\\Z", "\\u0041", "[z-a]"])("%s does not compile and is refused as invalid", (source) => {
    const refusal = compilePolicyRegex(source, byteStringFromText(source));
    expect(isPolicyRegex(refusal)).toBe(false);
    expect((refusal as { reason: string }).reason).toContain("invalid regular expression");
  });
});

describe("RE2 matches what the backtracking engine matched", () => {
  // Every regex of the policy tests, plus the accepted shapes above that both engines take.
  const SOURCES = [
    "^t[0-9]+:[a-z]+$",
    "secret",
    ".",
    "^(?:é)+$",
    "^a.b$",
    "^\\xff",
    "^(?:foo|bar):",
    "(ab)+",
    "(?:a{2})*",
    "(a+)?",
    "^user:\\d{1,8}$",
    "[(+)]+",
    "\\(a+\\)+",
    "(?<name>ab)+",
    "^[a-z]+:.*:.*[0-9]$",
    "^a*a*a*a*a*a*b$",
    "^(a|ab)*c$",
    "\\bkey\\b",
    "^\\w+\\.\\W$",
    "[^:]+:[^:]*$",
    "^.{2,5}$",
  ];
  // Bytes the patterns care about, plus NUL, invalid UTF-8 and the halves of é. `\r` and `\v`
  // are left out: there the engines differ on purpose (see the next test).
  const BYTES = ["a", "b", "c", "t", "1", "9", ":", ".", "(", ")", "+", "_", " ", "k", "e", "y", "\n", "\x00", "\xff", "\xc3", "\xa9", "A", "Z"];
  const words = ["secret", "foo:", "bar:", "user:", "key", "ab", "aa", "t12:", "\xc3\xa9"];
  const input = fc
    .array(fc.oneof(fc.constantFrom(...BYTES), fc.constantFrom(...words)), { maxLength: 24 })
    .map((parts) => parts.join(""));

  test.each(SOURCES)("%s", (source) => {
    const re2 = compiled(source);
    // The old engine: a flagless RegExp over the pattern's UTF-8 bytes.
    const old = new RegExp(byteStringFromText(source));
    fc.assert(
      fc.property(input, (value) => re2.test(value) === old.test(value)),
      { numRuns: 400 },
    );
  });

  test("where they differ: RE2's . matches \\r, its \\s leaves out \\v and the byte 0xa0", () => {
    expect(compiled("^a.b$").test("a\rb")).toBe(true);
    expect(new RegExp("^a.b$").test("a\rb")).toBe(false);
    expect(compiled("\\s").test("\v")).toBe(false);
    // 0xa0 is the second byte of à in UTF-8: the old engine took it for a space.
    expect(compiled("\\s").test(byteStringFromText("à"))).toBe(false);
    expect(new RegExp("\\s").test(byteStringFromText("à"))).toBe(true);
    // Neither lets . match a newline.
    expect(compiled("^a.b$").test("a\nb")).toBe(false);
  });
});
