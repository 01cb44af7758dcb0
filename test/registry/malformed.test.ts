import { describe, expect, test } from "vitest";
import { parseRegistry } from "../../src/registry/index.js";
import { registryProblems } from "./registry-problems.js";

/** A problem as a test expects it: where, and a fragment of the message (never the whole text). */
interface Expected {
  line: number;
  column: number;
  says: string;
}

interface MalformedCase {
  name: string;
  /** The registry file, one string per line, so that line numbers can be read off the array. */
  lines: string[];
  problems: Expected[];
}

const HEAD = ['version: "1.0"', "namespace: app", "entries:"];
/** HEAD plus one entry starting at line 4, with `extra` lines from line 6 on. */
const cacheEntry = (...extra: string[]) => [...HEAD, "  - name: cache", "    kind: store.memory", ...extra];

const cases: MalformedCase[] = [
  {
    name: "an unknown kind is refused at the kind, naming the known kinds",
    lines: [...HEAD, "  - name: cache", "    kind: store.mongo"],
    problems: [{ line: 5, column: 11, says: "kind: unknown kind 'store.mongo' (known: store.memory, store.sql, store.redis)" }],
  },
  {
    name: "an unknown entry field is refused at its key, with the field it most likely meant",
    lines: cacheEntry("    max_sise: 5"),
    problems: [{ line: 6, column: 5, says: "max_sise: unknown field (did you mean 'max_size'?)" }],
  },
  {
    name: "an unknown document field is refused at its key",
    lines: ['version: "1.0"', "namespace: app", "owner: me", "entries: []"],
    problems: [{ line: 3, column: 1, says: "owner: unknown field (known: version, namespace, entries)" }],
  },
  {
    name: "an unknown pool field is refused at its key",
    lines: cacheEntry("    pool:", "      max: 8", "      size: 1"),
    problems: [{ line: 8, column: 7, says: "pool.size: unknown field (known: max)" }],
  },
  {
    name: "a string where an integer is meant is a wrong type",
    lines: cacheEntry("    max_size: lots"),
    problems: [{ line: 6, column: 15, says: 'max_size: must be an integer >= 1, got a string ("lots")' }],
  },
  {
    name: "a quota by something that is not an actor field is refused at the value",
    lines: cacheEntry("    quota:", "      by: meta.tenant", "      max_keys: 10"),
    problems: [{ line: 7, column: 11, says: 'quota.by: must be actor.id or actor.meta.<name>, got "meta.tenant"' }],
  },
  {
    name: "a quota without max_keys is refused at the quota, and a bad max_bytes at its value",
    lines: cacheEntry("    quota:", "      by: actor.id", "      max_bytes: 5x"),
    problems: [
      { line: 7, column: 7, says: "quota.max_keys: required field is missing" },
      { line: 8, column: 18, says: "quota.max_bytes:" },
    ],
  },
  {
    name: "a quota larger than max_size is refused at max_keys (each share reserves max_keys of the store)",
    lines: cacheEntry("    max_size: 100", "    quota: { by: actor.meta.tenant, max_keys: 101 }"),
    problems: [{ line: 7, column: 47, says: "quota.max_keys: must be at most max_size (100)" }],
  },
  {
    name: "an unknown quota field is refused at its key",
    lines: cacheEntry("    quota: { by: actor.id, max_keys: 1, max_key: 2 }"),
    problems: [{ line: 6, column: 41, says: "quota.max_key: unknown field (did you mean 'max_keys'?)" }],
  },
  {
    name: "a scalar where the pool mapping is meant is a wrong type",
    lines: cacheEntry("    pool: 8"),
    problems: [{ line: 6, column: 11, says: "pool: must be a mapping, got the number 8" }],
  },
  {
    name: "a name that is not a string is a wrong type",
    lines: [...HEAD, "  - name: 42", "    kind: store.memory"],
    problems: [{ line: 4, column: 11, says: "name: must be a string, got the number 42" }],
  },
  {
    name: "a fractional number where an integer is meant is refused",
    lines: cacheEntry("    max_size: 2.5"),
    problems: [{ line: 6, column: 15, says: "must be an integer >= 1, got the number 2.5" }],
  },
  {
    name: "max_key_length above 65535 is out of range",
    lines: cacheEntry("    max_key_length: 70000"),
    problems: [{ line: 6, column: 21, says: "max_key_length: must be an integer from 1 to 65535, got 70000" }],
  },
  {
    name: "pool.max of 0 is out of range",
    lines: cacheEntry("    pool:", "      max: 0"),
    problems: [{ line: 7, column: 12, says: "pool.max: must be an integer >= 1, got 0" }],
  },
  {
    name: "max_value_size above 64MiB is out of range",
    lines: cacheEntry("    max_value_size: 128MiB"),
    problems: [{ line: 6, column: 21, says: "max_value_size: must be from 1B to 64MiB" }],
  },
  {
    name: "max_memory below 1MiB is out of range",
    lines: cacheEntry("    max_memory: 512KiB"),
    problems: [{ line: 6, column: 17, says: "max_memory: must be from 1MiB to 1GiB" }],
  },
  {
    name: "a duration with words is a bad duration",
    lines: cacheEntry("    cleanup_interval: 5 minutes"),
    problems: [{ line: 6, column: 23, says: 'cleanup_interval: invalid duration "5 minutes"' }],
  },
  {
    name: "a duration with units out of order is a bad duration",
    lines: cacheEntry("    cleanup_interval: 30s1m"),
    problems: [{ line: 6, column: 23, says: "largest first" }],
  },
  {
    name: "a zero cleanup_interval is out of range",
    lines: cacheEntry("    cleanup_interval: 0s"),
    problems: [{ line: 6, column: 23, says: "cleanup_interval: must be greater than 0" }],
  },
  {
    name: "a cleanup_interval too long for a timer is out of range",
    lines: cacheEntry("    cleanup_interval: 30000h"),
    problems: [{ line: 6, column: 23, says: "cleanup_interval: must be at most" }],
  },
  {
    name: "a misspelt stale_for is refused at its key, with the field it most likely meant",
    lines: cacheEntry("    stale_fr: 30s"),
    problems: [{ line: 6, column: 5, says: "stale_fr: unknown field (did you mean 'stale_for'?)" }],
  },
  {
    name: "a stale_for with words is a bad duration, at its value, on every kind",
    lines: [...HEAD, "  - name: db", "    kind: store.sql", "    path: x.db", "    stale_for: 5 minutes"],
    problems: [{ line: 7, column: 16, says: 'stale_for: invalid duration "5 minutes"' }],
  },
  {
    name: "a zero stale_for is out of range",
    lines: cacheEntry("    stale_for: 0s"),
    problems: [{ line: 6, column: 16, says: "stale_for: must be greater than 0" }],
  },
  {
    name: "a size with an unknown unit is a bad size",
    lines: cacheEntry("    max_value_size: 10XB"),
    problems: [{ line: 6, column: 21, says: 'max_value_size: invalid size "10XB"' }],
  },
  {
    name: "a size that is not a whole number of bytes is a bad size",
    lines: cacheEntry("    max_value_size: 0.3KiB"),
    problems: [{ line: 6, column: 21, says: "not a whole number of bytes" }],
  },
  {
    name: "an eviction outside none and lru is refused",
    lines: cacheEntry("    eviction: fifo"),
    problems: [{ line: 6, column: 15, says: 'eviction: must be one of none, lru, got a string ("fifo")' }],
  },
  {
    name: "a duplicate ID points at the second name and says where the first is",
    lines: [...cacheEntry(), "---", 'version: "1.0"', "namespace: app", "entries:", "  - { name: cache, kind: store.memory }"],
    problems: [{ line: 10, column: 13, says: "duplicate id 'app:cache' (first declared at registry.yaml:4:11)" }],
  },
  {
    name: "a missing namespace points at the document",
    lines: ['version: "1.0"', "entries: []"],
    problems: [{ line: 1, column: 1, says: "namespace: required field is missing" }],
  },
  {
    name: "a missing namespace in a second document points at that document",
    lines: [...cacheEntry(), "---", "# jobs", 'version: "1.0"', "entries: []"],
    problems: [{ line: 8, column: 1, says: "namespace: required field is missing" }],
  },
  {
    name: "a missing name points at the entry",
    lines: [...HEAD, "  - kind: store.memory", "    max_size: 5"],
    problems: [{ line: 4, column: 5, says: "name: required field is missing" }],
  },
  {
    name: "a missing kind points at the entry",
    lines: [...HEAD, "  - name: cache"],
    problems: [{ line: 4, column: 5, says: "kind: required field is missing" }],
  },
  {
    name: "a namespace with a space has bad characters",
    lines: ['version: "1.0"', "namespace: my app", "entries: []"],
    problems: [{ line: 2, column: 12, says: `namespace: "my app" may only contain letters, digits` }],
  },
  {
    name: "a name with ':' has bad characters, since ':' separates namespace and name",
    lines: [...HEAD, '  - name: "app:cache"', "    kind: store.memory"],
    problems: [{ line: 4, column: 11, says: "':' separates namespace and name" }],
  },
  {
    name: "an empty namespace is refused",
    lines: ['version: "1.0"', 'namespace: ""', "entries: []"],
    problems: [{ line: 2, column: 12, says: "namespace: must not be empty" }],
  },
  {
    name: "a YAML syntax error is reported where yaml finds it",
    lines: [...HEAD, "  - name: cache: x", "    kind: store.memory"],
    problems: [{ line: 4, column: 11, says: "Nested mappings are not allowed" }],
  },
  {
    name: "a duplicate mapping key is reported at the second key",
    lines: cacheEntry("    name: other"),
    problems: [{ line: 6, column: 5, says: "Map keys must be unique" }],
  },
  {
    name: "version 1.0 written as a number asks for the string",
    lines: ["version: 1.0", "namespace: app", "entries: []"],
    problems: [{ line: 1, column: 10, says: 'version: must be the string "1.0", got a number (quote it' }],
  },
  {
    name: "an unsupported version string is refused",
    lines: ['version: "2.0"', "namespace: app", "entries: []"],
    problems: [{ line: 1, column: 10, says: 'version: unsupported version "2.0" (supported: "1.0")' }],
  },
  {
    name: "a missing version points at the document",
    lines: ["namespace: app", "entries: []"],
    problems: [{ line: 1, column: 1, says: "version: required field is missing" }],
  },
  {
    name: "entries that are not a list are refused at their value",
    lines: ['version: "1.0"', "namespace: app", "entries: cache"],
    problems: [{ line: 3, column: 10, says: 'entries: must be a list of entries, got a string ("cache")' }],
  },
  {
    name: "entries given as a mapping are refused at the mapping",
    lines: [...HEAD, "  cache:", "    kind: store.memory"],
    problems: [{ line: 4, column: 3, says: "entries: must be a list of entries, got a mapping" }],
  },
  {
    name: "missing entries point at the document",
    lines: ['version: "1.0"', "namespace: app"],
    problems: [{ line: 1, column: 1, says: "entries: required field is missing" }],
  },
  {
    name: "an entry that is not a mapping is refused at the item",
    lines: [...HEAD, "  - cache"],
    problems: [{ line: 4, column: 5, says: "entries[0]: an entry must be a mapping with name and kind" }],
  },
  {
    name: "an empty file is refused",
    lines: [""],
    problems: [{ line: 1, column: 1, says: "registry is empty" }],
  },
  {
    name: "a file of comments and document markers only is refused as empty",
    lines: ["# nothing yet", "---", ""],
    problems: [{ line: 1, column: 1, says: "registry is empty" }],
  },
  {
    name: "a document that is a list is refused",
    lines: ["- name: cache"],
    problems: [{ line: 1, column: 1, says: "a registry document must be a mapping" }],
  },
  {
    name: "a key with no value is null, refused at the key",
    lines: cacheEntry("    max_size:"),
    problems: [{ line: 6, column: 5, says: "max_size: must be an integer >= 1, got null" }],
  },
  {
    name: "a __proto__ key is an unknown field, not a prototype",
    lines: cacheEntry("    __proto__: { max_size: 1 }"),
    problems: [{ line: 6, column: 5, says: "__proto__: unknown field" }],
  },
  {
    name: "a pair in a flow list ([name: cache]) reads as a one-key mapping, as in yaml's toJS",
    lines: ['version: "1.0"', "namespace: app", "entries: [name: cache]"],
    problems: [{ line: 3, column: 11, says: "kind: required field is missing" }],
  },
  {
    name: "an id over 255 bytes is refused at the name (store.get refuses longer ids unseen by policy)",
    lines: [...HEAD, `  - name: ${"n".repeat(252)}`, "    kind: store.memory"],
    problems: [{ line: 4, column: 11, says: "is 256 bytes; store ids are at most 255" }],
  },
  {
    name: "an alias bomb is refused instead of expanded",
    lines: [
      "a: &a [x, x, x, x, x, x, x, x, x, x]",
      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "d: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
    ],
    // a, b and c expand to 11, 111 and 1111 nodes: the 8th *c takes the document past 10 000.
    problems: [{ line: 4, column: 33, says: "expands the document past 10000 nodes" }],
  },
];

describe("malformed registries are refused with positioned problems", () => {
  test.each(cases)("$name", ({ lines, problems: expected }) => {
    const problems = registryProblems(() => parseRegistry(lines.join("\n"), "registry.yaml"));
    expect(problems.map(({ file, line, column }) => ({ file, line, column }))).toEqual(
      expected.map(({ line, column }) => ({ file: "registry.yaml", line, column })),
    );
    problems.forEach((problem, i) => expect(problem.message).toContain(expected[i]!.says));
  });
});

describe("every problem is collected", () => {
  test("problems across entries, fields and documents are all reported, in file order", () => {
    const text = [
      "version: 1.0", // 1
      "namespce: app", // 2
      "entries:", // 3
      "  - name: a:b", // 4
      "    kind: store.mongo", // 5
      "  - name: c", // 6
      "    kind: store.memory", // 7
      "    max_size: 0", // 8
      "    cleanup_interval: 5x", // 9
      "    max_value_size: 1 MiB", // 10
      "    pool:", // 11
      "      max: -1", // 12
      "      min: 1", // 13
      "  - kind: store.memory", // 14
      "---", // 15
      'version: "1.0"', // 16
      "namespace: jobs", // 17
      "entries:", // 18
      "  - name: q", // 19
      "    kind: store.memory", // 20
      "  - name: q", // 21
      "    kind: store.memory", // 22
      "    eviction: fifo", // 23
    ].join("\n");
    const problems = registryProblems(() => parseRegistry(text, "registry.yaml"));
    expect(problems.map(({ line, column, message }) => [line, column, message.split(":")[0]])).toEqual([
      [1, 1, "namespace"],
      [1, 10, "version"],
      [2, 1, "namespce"],
      [4, 11, "name"],
      [5, 11, "kind"],
      [8, 15, "max_size"],
      [9, 23, "cleanup_interval"],
      [10, 21, "max_value_size"],
      [12, 12, "pool.max"],
      [13, 7, "pool.min"],
      [14, 5, "name"],
      [21, 11, "name"],
      [23, 15, "eviction"],
    ]);
    expect(problems[11]!.message).toContain("duplicate id 'jobs:q' (first declared at registry.yaml:19:11)");
  });

  test("a syntax error in one document does not hide the problems of the next", () => {
    const text = [
      ...HEAD, // 1-3
      "  - name: cache: x", // 4
      "---", // 5
      'version: "1.0"', // 6
      "namespace: jobs", // 7
      "entries:", // 8
      "  - name: q", // 9
      "    kind: store.memory", // 10
      "    max_size: 0", // 11
    ].join("\n");
    const problems = registryProblems(() => parseRegistry(text, "registry.yaml"));
    expect(problems.map(({ line, column }) => [line, column])).toEqual([
      [4, 11],
      [11, 15],
    ]);
  });

  test("a duplicate key does not hide the other problems of its document", () => {
    const text = cacheEntry("    name: other", "    max_size: -1").join("\n");
    const problems = registryProblems(() => parseRegistry(text, "registry.yaml"));
    expect(problems.map(({ line, column }) => [line, column])).toEqual([
      [6, 5],
      [7, 15],
    ]);
  });

  test("each problem carries the offending line and a caret under the column", () => {
    const [problem] = registryProblems(() => parseRegistry(cacheEntry("    max_size: 0").join("\n"), "registry.yaml"));
    expect(problem!.excerpt).toBe(["6 |     max_size: 0", "  |               ^"].join("\n"));
  });
});
