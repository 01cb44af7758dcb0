import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, test } from "vitest";
import { formatProblems } from "../../src/errors.js";
import { loadRegistry, parseRegistry, type RegistryDocument } from "../../src/registry/index.js";
import { registryProblems } from "./registry-problems.js";

const fixtures = join(dirname(fileURLToPath(import.meta.url)), "fixtures");

const DEFAULTS = {
  maxSize: 10_000,
  cleanupIntervalMs: 300_000,
  maxKeyLength: 1024,
  maxValueSize: 1_048_576,
  pool: { max: 64 },
  eviction: "none",
  maxMemory: 64 * 1024 * 1024,
} as const;

const yaml = (...lines: string[]) => lines.join("\n");
const oneEntry = (...fields: string[]) =>
  yaml('version: "1.0"', "namespace: app", "entries:", "  - name: cache", "    kind: store.memory", ...fields);

describe("valid registries", () => {
  test("an entry with only name and kind gets every default", () => {
    const registry = parseRegistry(oneEntry(), "registry.yaml", "/srv");
    expect(registry).toEqual({
      baseDir: "/srv",
      entries: [
        {
          kind: "store.memory",
          id: "app:cache",
          namespace: "app",
          name: "cache",
          ...DEFAULTS,
          source: { file: "registry.yaml", line: 4, column: 5 },
        },
      ],
    });
  });

  test("explicit settings replace the defaults", () => {
    const text = oneEntry(
      "    max_size: 1",
      "    cleanup_interval: 250ms",
      "    eviction: lru",
      "    max_key_length: 65535",
      "    max_value_size: 64MiB",
      "    pool: { max: 2 }",
      "    max_memory: 8MiB",
    );
    const [entry] = parseRegistry(text, "registry.yaml").entries;
    expect(entry).toMatchObject({
      maxMemory: 8 * 1024 * 1024,
      maxSize: 1,
      cleanupIntervalMs: 250,
      eviction: "lru",
      maxKeyLength: 65535,
      maxValueSize: 64 * 1024 * 1024,
      pool: { max: 2 },
    });
  });

  test("a pool mapping without max gets the default max", () => {
    const [entry] = parseRegistry(oneEntry("    pool: {}"), "registry.yaml").entries;
    expect(entry!.pool).toEqual({ max: 64 });
  });

  test.each([
    ["250ms", 250],
    ["30s", 30_000],
    ["5m", 300_000],
    ["1h", 3_600_000],
    ["1m30s", 90_000],
    ["1.5s", 1_500],
    ["2.5", 2_500],
    ["45", 45_000],
  ])("cleanup_interval %s is %d ms", (written, ms) => {
    const [entry] = parseRegistry(oneEntry(`    cleanup_interval: ${written}`), "registry.yaml").entries;
    expect(entry!.cleanupIntervalMs).toBe(ms);
  });

  test("stale_for is a duration in ms on memory, sql and redis entries, and absent by default", () => {
    const config = parseRegistry(
      [
        'version: "1.0"',
        "namespace: app",
        "entries:",
        "  - { name: a, kind: store.memory, stale_for: 30s }",
        "  - { name: b, kind: store.sql, path: b.db, stale_for: 1.5 }",
        "  - { name: c, kind: store.redis, url: redis://127.0.0.1:6379/0, stale_for: 1m }",
        "  - { name: d, kind: store.memory }",
      ].join("\n"),
      "registry.yaml",
    );
    expect(config.entries.map((e) => e.staleForMs)).toEqual([30_000, 1_500, 60_000, undefined]);
  });

  test.each([
    ["2048", 2_048],
    ["512B", 512],
    ["64KiB", 65_536],
    ["1MiB", 1_048_576],
    ["1.5MiB", 1_572_864],
    ["64KB", 64_000],
    ["1MB", 1_000_000],
  ])("max_value_size %s is %d bytes", (written, bytes) => {
    const [entry] = parseRegistry(oneEntry(`    max_value_size: ${written}`), "registry.yaml").entries;
    expect(entry!.maxValueSize).toBe(bytes);
  });

  test("entries of every document keep declaration order, each with its namespace and position", () => {
    const text = yaml(
      'version: "1.0"',
      "namespace: app",
      "entries:",
      "  - { name: b, kind: store.memory }",
      "  - { name: a, kind: store.memory }",
      "---",
      'version: "1.0"',
      "namespace: jobs",
      "entries:",
      "  - name: a",
      "    kind: store.memory",
    );
    const { entries } = parseRegistry(text, "registry.yaml");
    expect(entries.map((e) => [e.id, e.source.line, e.source.column])).toEqual([
      ["app:b", 4, 5],
      ["app:a", 5, 5],
      ["jobs:a", 10, 5],
    ]);
  });

  test("a document with no entries is allowed", () => {
    expect(parseRegistry(yaml('version: "1.0"', "namespace: app", "entries: []"), "r.yaml").entries).toEqual([]);
  });

  test("empty documents from a stray or trailing '---' are skipped", () => {
    const text = yaml("---", oneEntry(), "---", "# nothing here", "---");
    expect(parseRegistry(text, "registry.yaml").entries.map((e) => e.id)).toEqual(["app:cache"]);
  });

  test("names may use letters, digits, '_', '.' and '-'", () => {
    const text = yaml('version: "1.0"', "namespace: my-app.v2", "entries:", "  - { name: user_cache.1, kind: store.memory }");
    expect(parseRegistry(text, "registry.yaml").entries[0]!.id).toBe("my-app.v2:user_cache.1");
  });

  test("parseRegistry resolves baseDir from the file name by default", () => {
    expect(parseRegistry(oneEntry(), "conf/registry.yaml").baseDir).toBe(resolve("conf"));
  });
});

describe("loadRegistry from a file", () => {
  test("reads the file, with baseDir its directory and positions in it", () => {
    const file = join(fixtures, "registry.yaml");
    const registry = loadRegistry(file);
    expect(registry.baseDir).toBe(fixtures);
    expect(registry.entries.map((e) => e.id)).toEqual(["app:cache", "app:sessions", "jobs:queue"]);
    expect(registry.entries[1]).toEqual({
      kind: "store.memory",
      id: "app:sessions",
      namespace: "app",
      name: "sessions",
      maxSize: 500,
      cleanupIntervalMs: 30_000,
      eviction: "lru",
      maxKeyLength: 256,
      maxValueSize: 65_536,
      pool: { max: 8 },
      maxMemory: 64 * 1024 * 1024,
      source: { file, line: 7, column: 5 },
    });
    expect(registry.entries[2]!.cleanupIntervalMs).toBe(1_500);
  });

  test("options.baseDir overrides the file's directory", () => {
    expect(loadRegistry(join(fixtures, "registry.yaml"), { baseDir: "/srv" }).baseDir).toBe("/srv");
  });

  test("a missing file is a RegistryError at line 0 saying so", () => {
    const file = join(fixtures, "missing.yaml");
    const problems = registryProblems(() => loadRegistry(file));
    expect(problems).toEqual([{ file, line: 0, column: 0, message: expect.stringContaining("no such file"), excerpt: "", code: "CANNOT_READ" }]);
  });

  test("a directory is a RegistryError at line 0 saying so", () => {
    const problems = registryProblems(() => loadRegistry(fixtures));
    expect(problems).toMatchObject([{ file: fixtures, line: 0, column: 0, message: expect.stringContaining("directory") }]);
  });

  test("problems format as file:line:column: message, then the line and a caret", () => {
    const file = join(fixtures, "invalid-registry.yaml");
    const problems = registryProblems(() => loadRegistry(file));
    expect(formatProblems(problems).split("\n")).toEqual([
      `${file}:6:15: max_size: must be an integer >= 1, got 0`,
      "6 |     max_size: 0",
      "  |               ^",
      `${file}:7:15: eviction: must be one of none, lru, got a string ("fifo")`,
      "7 |     eviction: fifo",
      "  |               ^",
    ]);
  });
});

describe("loadRegistry from objects", () => {
  const document: RegistryDocument = {
    version: "1.0",
    namespace: "app",
    entries: [{ name: "cache", kind: "store.memory", cleanup_interval: "1m", max_value_size: "64KiB", pool: { max: 4 } }],
  };

  test("a document is validated and normalized like YAML, with no position", () => {
    expect(loadRegistry(document, { baseDir: "/srv" })).toEqual({
      baseDir: "/srv",
      entries: [
        {
          kind: "store.memory",
          id: "app:cache",
          namespace: "app",
          name: "cache",
          ...DEFAULTS,
          cleanupIntervalMs: 60_000,
          maxValueSize: 65_536,
          pool: { max: 4 },
          source: { file: "<registry>", line: 0, column: 0 },
        },
      ],
    });
  });

  test("baseDir defaults to the working directory", () => {
    expect(loadRegistry(document).baseDir).toBe(process.cwd());
  });

  test("a list of documents keeps their order", () => {
    const jobs: RegistryDocument = { version: "1.0", namespace: "jobs", entries: [{ name: "q", kind: "store.memory" }] };
    expect(loadRegistry([document, jobs]).entries.map((e) => e.id)).toEqual(["app:cache", "jobs:q"]);
  });

  test("a problem names the field path and has line 0", () => {
    const bad = { ...document, entries: [{ name: "cache", kind: "store.memory", max_size: 0 }] } as RegistryDocument;
    expect(registryProblems(() => loadRegistry(bad))).toEqual([
      { file: "<registry>", line: 0, column: 0, message: "entries[0].max_size: must be an integer >= 1, got 0", excerpt: "" },
    ]);
  });

  test("every problem of every document is collected, each naming its document", () => {
    const first = {
      version: "1.0",
      namespace: "app",
      extra: true,
      entries: [{ name: "cache", kind: "store.memory", pool: { max: 0 } }],
    };
    const second = { version: "1.0", namespace: "app", entries: [{ name: "cache", kind: "store.memory" }] };
    const problems = registryProblems(() => loadRegistry([first, second, null] as unknown as RegistryDocument[]));
    expect(problems.map((p) => [p.line, p.message.split(": ")[0]])).toEqual([
      [0, "documents[0].extra"],
      [0, "documents[0].entries[0].pool.max"],
      [0, "documents[1].entries[0].name"],
      [0, "documents[2]"],
    ]);
    expect(problems[2]!.message).toContain("first declared at documents[0].entries[0].name");
  });

  test("an object with a prototype is not a mapping, so inherited fields cannot slip in", () => {
    const entry = Object.assign(Object.create({ max_size: 0 }) as object, { name: "cache", kind: "store.memory" });
    const problems = registryProblems(() =>
      loadRegistry({ version: "1.0", namespace: "app", entries: [entry] } as unknown as RegistryDocument),
    );
    expect(problems.map((p) => p.message)).toEqual([
      "entries[0]: an entry must be a mapping with name and kind, got an object of class Object",
    ]);
  });

  test("a Map is not a mapping", () => {
    const problems = registryProblems(() => loadRegistry(new Map() as unknown as RegistryDocument));
    expect(problems[0]!.message).toBe(
      "a registry document must be a mapping of version, namespace and entries, got an object of class Map",
    );
  });

  test("an empty list of documents is refused", () => {
    expect(registryProblems(() => loadRegistry([]))[0]!.message).toContain("registry is empty");
  });
});
