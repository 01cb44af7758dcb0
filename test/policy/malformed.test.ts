import { describe, expect, test } from "vitest";
import { PolicyError } from "../../src/errors.js";
import { compilePolicies, parsePolicies } from "../../src/policy/index.js";
import type { PolicyDocument } from "../../src/policy/index.js";

/** A problem as a test expects it: where, and a fragment of the message (never the whole text). */
interface Expected {
  file?: string;
  line: number;
  column: number;
  says: string;
}

interface MalformedCase {
  name: string;
  /** The policy file, one string per line, so that line numbers can be read off the array. */
  lines: string[];
  /** A second file loaded after the first, as `b.yaml`. */
  second?: string[];
  problems: Expected[];
}

const HEAD = ['version: "1.0"', "policies:"];
/** HEAD plus a valid policy on lines 3-6, then `extra` lines from line 7 on. */
const policy = (...extra: string[]) => [
  ...HEAD,
  "  - id: p",
  "    effect: allow",
  "    actions: [store.key.get]",
  "    resources: [app:cache]",
  ...extra,
];
/** A policy whose one condition starts on line 8 (field), 9 (operator), 10 (value), 11. */
const condition = (field: string, operator: string, ...rest: string[]) =>
  policy("    conditions:", `      - field: ${field}`, `        operator: ${operator}`, ...rest);

const cases: MalformedCase[] = [
  {
    name: "an unquoted version 1.0 is a number, refused at the value",
    lines: ["version: 1.0", "policies: []"],
    problems: [{ line: 1, column: 10, says: 'must be "1.0"' }],
  },
  {
    name: "a missing version is reported at the document",
    lines: ["policies: []"],
    problems: [{ line: 1, column: 1, says: 'missing required field "version"' }],
  },
  {
    name: "an unknown document field is refused at its key",
    lines: ['version: "1.0"', "policies: []", "owner: me"],
    problems: [{ line: 3, column: 1, says: 'unknown field "owner"' }],
  },
  {
    name: "an effect other than allow or deny is refused at the value",
    lines: [...HEAD, "  - id: p", "    effect: permit", "    actions: [store.get]", "    resources: [app:cache]"],
    problems: [{ line: 4, column: 13, says: "effect" }],
  },
  {
    name: "an unknown policy field is refused at its key with a suggestion",
    lines: policy("    action: [store.get]"),
    problems: [{ line: 7, column: 5, says: 'did you mean "actions"' }],
  },
  {
    name: "a missing actions list is reported at the policy",
    lines: [...HEAD, "  - id: p", "    effect: allow", "    resources: [app:cache]"],
    problems: [{ line: 3, column: 5, says: 'missing required field "actions"' }],
  },
  {
    name: "an empty resources list is refused",
    lines: [...HEAD, "  - id: p", "    effect: allow", "    actions: [store.get]", "    resources: []"],
    problems: [{ line: 6, column: 16, says: "non-empty list" }],
  },
  {
    name: "an empty actor pattern is refused at the item",
    lines: policy('    actors: ["tenant:*", ""]'),
    problems: [{ line: 7, column: 26, says: "non-empty string" }],
  },
  {
    name: "an empty actors list is refused rather than read as every actor",
    lines: policy("    actors: []"),
    problems: [{ line: 7, column: 13, says: "omit it to match every actor" }],
  },
  {
    name: "a policy that is not a mapping is refused",
    lines: [...HEAD, "  - just-a-name"],
    problems: [{ line: 3, column: 5, says: "a policy" }],
  },
  {
    name: "a duplicate id in another file points at the duplicate and names the first",
    lines: policy(),
    second: policy(),
    problems: [{ file: "b.yaml", line: 3, column: 9, says: 'duplicate policy id "p" (first declared at a.yaml:3)' }],
  },
  {
    name: "a duplicate id in the same file is refused",
    lines: [...policy(), "  - id: p", "    effect: deny", "    actions: [store.get]", "    resources: [app:cache]"],
    problems: [{ line: 7, column: 9, says: "a.yaml:3" }],
  },
  {
    name: "an unknown operator is refused at the operator",
    lines: condition("meta.key", "startswith", "        value: x"),
    problems: [{ line: 9, column: 19, says: 'did you mean "starts_with"' }],
  },
  {
    name: "an unknown field name is refused at the field",
    lines: condition("meta.kye", "eq", "        value: x"),
    problems: [{ line: 8, column: 16, says: 'unknown field "meta.kye" (did you mean "meta.key"?)' }],
  },
  {
    name: "a misspelt actor field gets a did-you-mean",
    lines: condition("actor.di", "eq", "        value: x"),
    problems: [{ line: 8, column: 16, says: '(did you mean "actor.id"?)' }],
  },
  {
    name: "a misspelt actor.meta prefix keeps the meta name in its did-you-mean",
    lines: condition("actor.mata.team", "eq", "        value: x"),
    problems: [{ line: 8, column: 16, says: '(did you mean "actor.meta.team"?)' }],
  },
  {
    name: "a request meta name that is not one points at the actor's open meta",
    lines: condition("meta.team", "eq", "        value: x"),
    problems: [{ line: 8, column: 16, says: '(did you mean "actor.meta.team"?)' }],
  },
  {
    name: "an unknown condition key is refused at its key",
    lines: condition("meta.key", "eq", "        value: x", "        values: [y]"),
    problems: [{ line: 11, column: 9, says: 'unknown field "values"' }],
  },
  {
    name: "exists with a value is refused at the value key",
    lines: condition("meta.key", "exists", "        value: x"),
    problems: [{ line: 10, column: 9, says: "takes no value" }],
  },
  {
    name: "eq without a value is reported at the condition",
    lines: condition("meta.key", "eq"),
    problems: [{ line: 8, column: 9, says: "needs a value" }],
  },
  {
    name: "in with a scalar instead of a list is refused at the value",
    lines: condition("meta.key", "in", "        value: a"),
    problems: [{ line: 10, column: 16, says: "list" }],
  },
  {
    name: "in with a map inside the list is refused at the item",
    lines: condition("meta.key", "in", "        value: [a, {b: c}]"),
    problems: [{ line: 10, column: 20, says: "list items" }],
  },
  {
    name: "lt with a string value is refused at the value",
    lines: condition("actor.meta.level", "lt", '        value: "3"'),
    problems: [{ line: 10, column: 16, says: "number" }],
  },
  {
    name: "lt on a field that can never hold a number is refused at the field",
    lines: condition("meta.key", "lt", "        value: 3"),
    problems: [{ line: 8, column: 16, says: "only actor.meta.<name> fields hold numbers" }],
  },
  {
    name: "both value and value_from are refused at value_from",
    lines: condition("meta.key", "eq", "        value: x", "        value_from: actor.id"),
    problems: [{ line: 11, column: 9, says: "either value or value_from" }],
  },
  {
    name: "value_from with in is refused",
    lines: condition("meta.key", "in", "        value_from: actor.id"),
    problems: [{ line: 10, column: 9, says: "not value_from" }],
  },
  {
    name: "an unterminated template is refused at the value",
    lines: condition("meta.key", "starts_with", '        value: "${actor.meta.tenant:"'),
    problems: [{ line: 10, column: 16, says: "unterminated" }],
  },
  {
    name: "a template over a request field is refused",
    lines: condition("meta.prefix", "eq", '        value: "${meta.key}"'),
    problems: [{ line: 10, column: 16, says: "can only reference actor.id or actor.meta.<name>" }],
  },
  {
    name: "an invalid regex is refused at the value",
    lines: condition("meta.key", "matches", '        value: "(unclosed"'),
    problems: [{ line: 10, column: 16, says: "invalid regular expression" }],
  },
  {
    name: "a regex with lookahead is refused at the lookahead",
    lines: condition("meta.key", "matches", '        value: "^a(?=b)"'),
    problems: [{ line: 10, column: 19, says: "lookahead" }],
  },
  {
    name: "a regex RE2 cannot parse is refused at the value",
    lines: condition("meta.key", "matches", "        value: 'a{1001}'"),
    problems: [{ line: 10, column: 16, says: "invalid regular expression" }],
  },
  {
    name: "a regex with a backreference is refused",
    lines: condition("meta.key", "matches", "        value: '(a)\\1'"),
    problems: [{ line: 10, column: 20, says: "backreferences" }],
  },
  {
    name: "a regex class with a non-ASCII character is refused",
    lines: condition("meta.key", "matches", "        value: '^[éè]'"),
    problems: [{ line: 10, column: 19, says: "inside [...]" }],
  },
  {
    name: "a duplicate key is a YAML error at the second key",
    lines: policy("    effect: deny"),
    problems: [{ line: 7, column: 5, says: "unique" }],
  },
  {
    name: "a YAML syntax error is reported where the parser stopped",
    lines: [...HEAD, "  - id: p", "    actions: [store.get", "    effect: allow"],
    problems: [{ line: 5, column: 5, says: "]" }],
  },
  {
    name: "an empty file is refused",
    lines: ["# nothing here"],
    problems: [{ line: 1, column: 1, says: "empty policy file" }],
  },
  {
    name: "every problem of every file is reported, each file top to bottom",
    lines: [...HEAD, "  - id: p", "    effect: maybe", "    actions: []", "    resources: [app:cache]", "    colour: red"],
    second: ["version: 2", "policies: {}"],
    problems: [
      { line: 4, column: 13, says: "effect" },
      { line: 5, column: 14, says: "actions" },
      { line: 7, column: 5, says: "colour" },
      { file: "b.yaml", line: 1, column: 10, says: "version" },
      { file: "b.yaml", line: 2, column: 11, says: "list of policies" },
    ],
  },
];

function problemsOf(run: () => unknown): PolicyError["problems"] {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    expect((error as PolicyError).code).toBe("POLICY_INVALID");
    return (error as PolicyError).problems;
  }
  throw new Error("expected a PolicyError");
}

describe("malformed policy files", () => {
  test.each(cases)("$name", ({ lines, second, problems }) => {
    const files = [{ file: "a.yaml", text: `${lines.join("\n")}\n` }];
    if (second !== undefined) files.push({ file: "b.yaml", text: `${second.join("\n")}\n` });
    const found = problemsOf(() => parsePolicies(files));
    expect(found.map(({ file, line, column }) => ({ file, line, column }))).toEqual(
      problems.map(({ file = "a.yaml", line, column }) => ({ file, line, column })),
    );
    found.forEach((problem, i) => {
      expect(problem.message).toContain(problems[i]!.says);
      expect(problem.excerpt).toContain(`${problem.line} | `);
    });
  });

  test("the same file without its problem loads", () => {
    expect(parsePolicies([{ file: "a.yaml", text: condition("meta.key", "exists").join("\n") }]).size).toBe(1);
  });
});

describe("malformed policy objects", () => {
  test("problems name the field path at line 0 of <policies>", () => {
    const document = {
      version: "1.0",
      policies: [
        { id: "a", effect: "permit", actions: ["store.get"], resources: ["app:cache"] },
        { id: "b", effect: "allow", actions: ["store.get"], resources: ["app:cache"], conditions: [{ field: "meta.key", operator: "in", value: "x" }] },
      ],
    } as unknown as PolicyDocument;
    const found = problemsOf(() => compilePolicies(document));
    expect(found.map(({ file, line, column }) => ({ file, line, column }))).toEqual([
      { file: "<policies>", line: 0, column: 0 },
      { file: "<policies>", line: 0, column: 0 },
    ]);
    expect(found[0]!.message).toContain("policies[0].effect");
    expect(found[1]!.message).toContain("policies[1].conditions[0].value");
  });

  test("a duplicate id across documents names the first document's field", () => {
    const document: PolicyDocument = { version: "1.0", policies: [{ id: "a", effect: "allow", actions: ["x"], resources: ["y"] }] };
    const found = problemsOf(() => compilePolicies([document, document]));
    expect(found).toHaveLength(1);
    expect(found[0]!.file).toBe("<policies[1]>");
    expect(found[0]!.message).toContain("<policies[0]> policies[0].id");
  });
});
