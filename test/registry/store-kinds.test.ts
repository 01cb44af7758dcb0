/** The fields of store.sql and store.redis entries: defaults, normalization and positioned refusals. */
import { describe, expect, test } from "vitest";
import { parseRegistry } from "../../src/registry/index.js";
import { registryProblems } from "./registry-problems.js";

const entry = (kind: string, ...fields: string[]) =>
  ['version: "1.0"', "namespace: app", "entries:", "  - name: s", `    kind: ${kind}`, ...fields].join("\n");

/** The problems of a one-entry registry as `line:column message`. */
function problemsOf(text: string): string[] {
  return registryProblems(() => parseRegistry(text, "registry.yaml")).map((p) => `${p.line}:${p.column} ${p.message}`);
}

describe("store.sql entries", () => {
  test("an entry with only a path gets every default", () => {
    const [config] = parseRegistry(entry("store.sql", "    path: data/s.db"), "registry.yaml", "/srv").entries;
    expect(config).toMatchObject({
      kind: "store.sql",
      id: "app:s",
      path: "data/s.db",
      tableName: "kv",
      busyTimeoutMs: 5000,
      eviction: "none",
      maxSize: 10_000,
      cleanupIntervalMs: 300_000,
    });
  });

  test("explicit settings replace the defaults", () => {
    const text = entry("store.sql", '    path: ":memory:"', "    table_name: sessions_v2", "    busy_timeout: 250ms", "    eviction: lru");
    expect(parseRegistry(text, "registry.yaml").entries[0]).toMatchObject({
      path: ":memory:",
      tableName: "sessions_v2",
      busyTimeoutMs: 250,
      eviction: "lru",
    });
  });

  test("a missing path is refused at the entry", () => {
    expect(problemsOf(entry("store.sql"))).toEqual(["4:5 path: required field is missing"]);
  });

  test("a table name that is not a plain SQL identifier is refused", () => {
    for (const name of ['"kv; DROP TABLE x"', "1kv", "sqlite_master", '"my table"', "''"]) {
      const [problem] = problemsOf(entry("store.sql", "    path: s.db", `    table_name: ${name}`));
      expect(problem).toMatch(/^7:17 table_name: must be an SQL identifier/);
    }
  });

  test("an empty path or a path that is not a string is refused", () => {
    expect(problemsOf(entry("store.sql", '    path: ""'))).toEqual(['6:11 path: must be a file path or ":memory:", got a string ("")']);
    expect(problemsOf(entry("store.sql", "    path: [a]"))).toEqual(['6:11 path: must be a file path or ":memory:", got a list']);
  });

  test("store.redis fields are unknown to store.sql", () => {
    expect(problemsOf(entry("store.sql", "    path: s.db", "    url: redis://x"))[0]).toMatch(/^7:5 url: unknown field/);
  });
});

describe("store.redis entries", () => {
  test("an entry with only a url gets every default", () => {
    const [config] = parseRegistry(entry("store.redis", "    url: redis://127.0.0.1:6379/0"), "registry.yaml").entries;
    expect(config).toMatchObject({
      kind: "store.redis",
      url: "redis://127.0.0.1:6379/0",
      urlEnv: undefined,
      keyPrefix: "luastore:",
      connectTimeoutMs: 2000,
      commandTimeoutMs: 1000,
      cluster: false,
      eviction: "none",
      maxSize: 10_000,
    });
  });

  test("explicit settings replace the defaults", () => {
    const text = entry(
      "store.redis",
      "    url_env: REDIS_URL",
      '    key_prefix: "shop:"',
      "    connect_timeout: 5s",
      "    command_timeout: 250ms",
      "    cluster: true",
      "    max_size: 5",
    );
    expect(parseRegistry(text, "registry.yaml").entries[0]).toMatchObject({
      url: undefined,
      urlEnv: "REDIS_URL",
      keyPrefix: "shop:",
      connectTimeoutMs: 5000,
      commandTimeoutMs: 250,
      cluster: true,
      maxSize: 5,
    });
  });

  test("none of url, url_env, nodes and sentinels is refused at the entry", () => {
    expect(problemsOf(entry("store.redis"))).toEqual(["4:5 url: required field is missing (or give url_env, nodes or sentinels)"]);
  });

  test("both url and url_env are refused at url_env", () => {
    expect(problemsOf(entry("store.redis", "    url: redis://h", "    url_env: REDIS_URL"))).toEqual([
      "7:5 url_env: give one of url, url_env, nodes and sentinels, not url and url_env",
    ]);
  });

  test("a url that is not a redis URL is refused without echoing it", () => {
    const [http] = problemsOf(entry("store.redis", "    url: http://user:secret@h/"));
    expect(http).toBe("6:10 url: must be a redis:// or rediss:// URL like redis://127.0.0.1:6379/0, got a http: URL");
    expect(problemsOf(entry("store.redis", "    url: redis://h/db")).join()).toContain("the path must be a database number");
    expect(problemsOf(entry("store.redis", "    url: not a url")).join()).toContain("url: must be a redis://");
  });

  test("lru eviction is refused with what to use instead", () => {
    expect(problemsOf(entry("store.redis", "    url: redis://h", "    eviction: lru"))).toEqual([
      '7:15 eviction: must be none, got a string ("lru") (store.redis never evicts; use store.memory or store.sql for an LRU cache)',
    ]);
  });

  test("a key prefix with a brace is refused: it would move the Cluster hash tag", () => {
    expect(problemsOf(entry("store.redis", "    url: redis://h", '    key_prefix: "{x}"'))[0]).toMatch(
      /^7:17 key_prefix: must be a string of at most 256 characters without '\{' or '\}'/,
    );
  });

  test("cluster must be a boolean and url_env a variable name", () => {
    expect(problemsOf(entry("store.redis", "    url_env: 1X", "    cluster: yes"))).toEqual([
      '6:14 url_env: must be an environment variable name, got "1X"',
      '7:14 cluster: must be true or false, got a string ("yes")',
    ]);
  });
});
