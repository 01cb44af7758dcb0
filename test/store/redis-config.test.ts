/**
 * store.redis topology fields: Cluster seed lists, Sentinel, TLS files and ACL credentials, as the
 * registry reads them (positioned refusals) and as createStore resolves them (env variables, files),
 * and that no credential ever shows in a message. Needs no Redis: the connection is never made.
 */
import { describe, expect, test } from "vitest";
import { systemClock } from "../../src/clock.js";
import { ErrorKind } from "../../src/errors.js";
import { parseRegistry } from "../../src/registry/index.js";
import { createStore } from "../../src/store/create-store.js";
import { registryProblems } from "../registry/registry-problems.js";

const entry = (...fields: string[]) =>
  ['version: "1.0"', "namespace: app", "entries:", "  - name: r", "    kind: store.redis", ...fields].join("\n");

function problemsOf(text: string): string[] {
  return registryProblems(() => parseRegistry(text, "registry.yaml")).map((p) => `${p.line}:${p.column} ${p.message}`);
}

describe("store.redis topology fields", () => {
  test("nodes is a Cluster seed list", () => {
    const [config] = parseRegistry(
      entry("    nodes:", "      - redis://10.0.0.1:7000", "      - redis://10.0.0.2:7000"),
      "registry.yaml",
    ).entries;
    expect(config).toMatchObject({ nodes: ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"], url: undefined });
  });

  test("a Cluster refuses a database path, positioned at the URL or the nodes", () => {
    expect(problemsOf(entry("    url: redis://h:7000/3", "    cluster: true"))).toEqual([
      "6:5 url: a Redis Cluster has only database 0: drop the /3 path",
    ]);
    expect(problemsOf(entry("    nodes: [redis://h:7000, redis://h:7001/2]"))).toEqual([
      "6:5 nodes: a Redis Cluster has only database 0: drop the /2 path of every node",
    ]);
  });

  test("a Cluster URL from url_env with a database path is refused when the store is built", () => {
    const [config] = parseRegistry(entry("    url_env: R", "    cluster: true"), "registry.yaml").entries;
    expect(() => createStore(config!, { clock: systemClock, env: { R: "redis://h:7000/1" } })).toThrow(
      expect.objectContaining({ kind: ErrorKind.INVALID, message: expect.stringContaining("only database 0") }),
    );
  });

  test("nodes entries must be redis URLs, all TLS or none", () => {
    expect(problemsOf(entry("    nodes: [redis://h:1, http://h:2]"))).toEqual([
      "6:12 nodes: node 2: must be a redis:// or rediss:// URL like redis://127.0.0.1:6379/0, got a http: URL",
    ]);
    expect(problemsOf(entry("    nodes: [redis://h:1, rediss://h:2]"))[0]).toMatch(/^6:12 nodes: mixes redis:\/\/ and rediss:\/\//);
    expect(problemsOf(entry("    nodes: []"))[0]).toMatch(/^6:12 nodes: must be a list/);
  });

  test("sentinels and sentinel_name go together", () => {
    const [config] = parseRegistry(
      entry('    sentinels: ["10.0.0.1:26379", "[::1]:26380"]', "    sentinel_name: mymaster"),
      "registry.yaml",
    ).entries;
    expect(config).toMatchObject({
      sentinels: [
        { host: "10.0.0.1", port: 26379 },
        { host: "::1", port: 26380 },
      ],
      sentinelName: "mymaster",
    });
    expect(problemsOf(entry('    sentinels: ["h:26379"]'))).toEqual([
      "6:5 sentinels: sentinel_name is missing: the name the sentinels monitor the primary by",
    ]);
    expect(problemsOf(entry("    url: redis://h", "    sentinel_name: m"))).toEqual(["7:5 sentinel_name: only with sentinels"]);
    expect(problemsOf(entry('    sentinels: ["h"]', "    sentinel_name: m"))[0]).toMatch(/^6:16 sentinels: sentinel 1: must be "host:port"/);
    expect(problemsOf(entry('    sentinels: ["h:1"]', "    sentinel_name: m", "    cluster: true"))).toEqual([
      "8:5 cluster: a Sentinel setup is not a Cluster: drop cluster or sentinels",
    ]);
  });

  test("one of url, url_env, nodes and sentinels", () => {
    expect(problemsOf(entry("    url: redis://h", "    nodes: [redis://h:1]"))).toEqual([
      "7:5 nodes: give one of url, url_env, nodes and sentinels, not url and nodes",
    ]);
  });

  test("credentials: a value or an env variable, never both; never echoed", () => {
    expect(problemsOf(entry("    url: redis://h", "    password: hunter2hunter2", "    password_env: P"))).toEqual([
      "8:5 password_env: give password or password_env, not both",
    ]);
    const problems = problemsOf(entry("    url: redis://h", "    password: [hunter2hunter2]")).join("\n");
    expect(problems).toMatch(/password: must be a non-empty string/);
    expect(problems).not.toContain("hunter2");
  });

  test("tls files need rediss URLs, and a certificate comes with its key", () => {
    expect(problemsOf(entry("    url: redis://h", "    tls: { ca_file: ca.pem }"))).toEqual([
      "7:5 tls: TLS files need rediss:// URLs, not redis://",
    ]);
    expect(problemsOf(entry("    url: rediss://h", "    tls: { cert_file: c.pem }"))).toEqual([
      "7:5 tls: give cert_file and key_file together (a client certificate and its key)",
    ]);
    expect(problemsOf(entry("    url: rediss://h", "    tls: { ca: x }"))[0]).toMatch(/^7:12 tls\.ca: unknown field/);
  });

  test("a missing TLS file or an unset credential variable is refused when the store is built", () => {
    const [tls] = parseRegistry(entry("    url: rediss://h", "    tls: { ca_file: no-such-ca.pem }"), "registry.yaml", "/nowhere").entries;
    expect(() => createStore(tls!, { clock: systemClock, baseDir: "/nowhere" })).toThrow(
      expect.objectContaining({ kind: ErrorKind.INVALID, message: expect.stringContaining("/nowhere/no-such-ca.pem") }),
    );
    const [env] = parseRegistry(entry("    url: redis://h", "    username_env: U", "    password_env: P"), "registry.yaml").entries;
    expect(() => createStore(env!, { clock: systemClock, env: { U: "app" } })).toThrow(
      expect.objectContaining({ kind: ErrorKind.INVALID, message: expect.stringContaining("P (password_env) is not set") }),
    );
  });
});
