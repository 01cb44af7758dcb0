import { describe, expect, test } from "vitest";
import { unsafeRegexReason } from "../../src/policy/regex-safety.js";

describe("policy regex safety", () => {
  test.each([
    "^t[0-9]+:[a-z]+$",
    "^(?:foo|bar):",
    "(ab)+",
    "(?:a{2})*",
    "(a+)?",
    "^user:\\d{1,8}$",
    "x{,3}+",
    "[(+)]+",
    "\\(a+\\)+",
    "(?<name>ab)+",
    "^(?:é)+$",
    "^\\xff",
  ])("%s is accepted", (source) => {
    expect(() => new RegExp(source)).not.toThrow();
    expect(unsafeRegexReason(source)).toBeUndefined();
  });

  test.each([
    ["(a+)+", "exponential"],
    ["(a*)*b", "exponential"],
    ["(a|ab)*c", "exponential"],
    ["(?:a?){2,}", "exponential"],
    ["((ab)+c)+", "exponential"],
    ["(a{1,3})+", "exponential"],
    ["((a|b)c)*", "exponential"],
    ["(a)\\1", "backreferences"],
    ["(?<x>a)\\k<x>", "backreferences"],
    ["[éè]", "inside [...]"],
    ["é+", "wrap it in a group"],
  ])("%s is refused", (source, says) => {
    expect(() => new RegExp(source)).not.toThrow();
    expect(unsafeRegexReason(source)).toContain(says);
  });
});
