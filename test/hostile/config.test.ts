/**
 * [hostile] The loader cannot be stalled or fooled: the red team's malformed registry and policy
 * files, each refused with the right problem code and position (or, for a file as a whole, its
 * path), and the host process still able to load a good configuration afterwards. Nothing here
 * is timed: a loader that read /dev/zero or a FIFO without end, or overflowed its stack, would
 * fail the test by hanging or throwing something other than the expected error.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LineIndex, MAX_ALIAS_EXPANSION, MAX_ANCHORS, MAX_CONFIG_DEPTH } from "../../src/config/yaml-source.js";
import { DEFAULT_MAX_CONFIG_BYTES } from "../../src/config/read-file.js";
import { PolicyError, RegistryError, type Problem } from "../../src/errors.js";
import { main } from "../../src/cli/main.js";
import { createHost } from "../../src/host.js";
import { loadPolicies, parsePolicies } from "../../src/policy/index.js";
import { loadRegistry, parseRegistry } from "../../src/registry/index.js";

const GOOD_REGISTRY = ['version: "1.0"', "namespace: app", "entries:", "  - name: cache", "    kind: store.memory", ""].join("\n");
const GOOD_POLICY = [
  'version: "1.0"',
  "policies:",
  "  - id: p",
  "    effect: allow",
  '    actions: ["store.get"]',
  '    resources: ["app:*"]',
  "",
].join("\n");

let dir: string;
const path = (name: string) => join(dir, name);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "luastore-hostile-config-"));
  writeFileSync(path("registry.yaml"), GOOD_REGISTRY);
  writeFileSync(path("policy.yaml"), GOOD_POLICY);
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** The problems of a refused load, after checking it was refused with the error the loader promises. */
function refused(load: () => unknown, kind: typeof RegistryError | typeof PolicyError): readonly Problem[] {
  let caught: unknown;
  try {
    load();
  } catch (error) {
    caught = error;
  }
  expect(caught).toBeInstanceOf(kind);
  return (caught as RegistryError | PolicyError).problems;
}
const registryRefused = (load: () => unknown) => refused(load, RegistryError);
const policiesRefused = (load: () => unknown) => refused(load, PolicyError);

/** The host still loads a good configuration after a refusal. */
async function hostSurvives(): Promise<void> {
  const host = createHost({ registry: path("registry.yaml"), policies: path("policy.yaml"), isolation: "inline", sweepTimers: false });
  const r = await host.run(`return select(2, require("store").get("app:cache")) == nil`, { actor: { id: "a", meta: {} } });
  expect(r.values).toEqual([true]);
  await host.close();
}

describe("[hostile] config files that are not regular files, too big or unreadable", () => {
  it("--registry /dev/zero and --policies /dev/zero are refused with the path, unread", async () => {
    expect(registryRefused(() => loadRegistry("/dev/zero"))).toMatchObject([{ file: "/dev/zero", line: 0, code: "NOT_A_FILE" }]);
    expect(policiesRefused(() => loadPolicies("/dev/zero"))).toMatchObject([{ file: "/dev/zero", line: 0, code: "NOT_A_FILE" }]);
    await hostSurvives();
  });

  it("luastore check --registry /dev/zero --policies /dev/zero exits 2 naming both, and run refuses it too", async () => {
    const cli = async (...argv: string[]) => {
      let stderr = "";
      const code = await main(argv, { stdout: () => {}, stderr: (t) => (stderr += t) });
      return { code, stderr };
    };
    const check = await cli("check", "--registry", "/dev/zero", "--policies", "/dev/zero");
    expect(check.code).toBe(2);
    // `check` prints each problem with its severity (error or warning).
    expect(check.stderr).toContain("/dev/zero: error: cannot read registry file: it is a character device, not a regular file");
    expect(check.stderr).toContain("/dev/zero: error: cannot read policy file: it is a character device, not a regular file");
    expect(check.stderr).not.toContain("/dev/zero:0:0");
    writeFileSync(path("ok.lua"), "return 1");
    const run = await cli("run", path("ok.lua"), "--registry", "/dev/zero", "--isolation", "inline");
    expect(run.code).not.toBe(0);
    expect(run.stderr).toContain("/dev/zero: cannot read registry file");
  });

  it("a policy file that is a symbolic link to /dev/zero is refused, given alone or in a policy directory", async () => {
    const policies = path("linked-policies");
    mkdirSync(policies);
    writeFileSync(join(policies, "a.yaml"), GOOD_POLICY);
    symlinkSync("/dev/zero", join(policies, "b.yaml"));
    const [problem] = policiesRefused(() => loadPolicies(join(policies, "b.yaml")));
    expect(problem).toMatchObject({ file: join(policies, "b.yaml"), code: "NOT_A_FILE" });
    expect(problem!.message).toContain("/dev/zero");
    expect(policiesRefused(() => loadPolicies(policies))).toMatchObject([{ file: join(policies, "b.yaml"), code: "NOT_A_FILE" }]);
    await hostSurvives();
  });

  it("a FIFO with no writer is refused at once, not waited on", async () => {
    execFileSync("mkfifo", [path("fifo.yaml")]);
    expect(registryRefused(() => loadRegistry(path("fifo.yaml")))).toMatchObject([{ file: path("fifo.yaml"), code: "NOT_A_FILE" }]);
    expect(policiesRefused(() => loadPolicies(path("fifo.yaml")))).toMatchObject([{ file: path("fifo.yaml"), code: "NOT_A_FILE" }]);
    await hostSurvives();
  });

  it(`a file over the size limit (default ${DEFAULT_MAX_CONFIG_BYTES} bytes) is refused with its size`, async () => {
    const big = `${GOOD_REGISTRY}# ${"x".repeat(DEFAULT_MAX_CONFIG_BYTES)}\n`;
    writeFileSync(path("big.yaml"), big);
    const [problem] = registryRefused(() => loadRegistry(path("big.yaml")));
    expect(problem).toMatchObject({ file: path("big.yaml"), line: 0, code: "FILE_TOO_LARGE" });
    expect(problem!.message).toContain(String(Buffer.byteLength(big)));
    expect(problem!.message).toContain(String(DEFAULT_MAX_CONFIG_BYTES));
    // The limit is the caller's to set.
    expect(policiesRefused(() => loadPolicies(path("policy.yaml"), { maxFileBytes: 64 }))).toMatchObject([{ code: "FILE_TOO_LARGE" }]);
    expect(loadRegistry(path("big.yaml"), { maxFileBytes: 2 * DEFAULT_MAX_CONFIG_BYTES }).entries).toHaveLength(1);
    await hostSurvives();
  });

  it("an unreadable path says 'cannot read' with the OS reason, printed as path: message, not path:0:0", () => {
    symlinkSync(path("loop-b.yaml"), path("loop-a.yaml"));
    symlinkSync(path("loop-a.yaml"), path("loop-b.yaml"));
    const cases: [string, string][] = [
      [path("missing.yaml"), "ENOENT"],
      [join(path("registry.yaml"), "inside.yaml"), "ENOTDIR"],
      [path("loop-a.yaml"), "ELOOP"],
    ];
    for (const [file, code] of cases) {
      let caught: RegistryError | undefined;
      try {
        loadRegistry(file);
      } catch (error) {
        caught = error as RegistryError;
      }
      expect(caught).toBeInstanceOf(RegistryError);
      expect(caught!.problems).toMatchObject([{ file, line: 0, code: "CANNOT_READ" }]);
      expect(caught!.message).toContain(`${file}: cannot read registry file:`);
      expect(caught!.message).toContain(`(${code})`);
      expect(caught!.message).not.toContain(`${file}:0:0`);
      expect(policiesRefused(() => loadPolicies(file))).toMatchObject([{ file, code: "CANNOT_READ" }]);
    }
  });
});

describe("[hostile] config text that would fool the parser", () => {
  it("invalid UTF-8 in a policy value is refused at its line and column, not read as U+FFFD", async () => {
    // é's first byte alone, in place of the # below.
    const text = Buffer.from(GOOD_POLICY.replace('"app:*"', '"app:caf#"'));
    text[text.indexOf("#")] = 0xc3;
    writeFileSync(path("bad-utf8.yaml"), text);
    // Line 6 is `    resources: ["app:caf` + the bad byte: column 25.
    expect(policiesRefused(() => loadPolicies(path("bad-utf8.yaml")))).toMatchObject([
      { file: path("bad-utf8.yaml"), line: 6, column: 25, code: "INVALID_UTF8" },
    ]);
    writeFileSync(path("bad-utf8-registry.yaml"), Buffer.concat([Buffer.from("version: \"1.0\"\nnamespace: é"), Buffer.from([0xff, 0xfe]), Buffer.from("\n")]));
    expect(registryRefused(() => loadRegistry(path("bad-utf8-registry.yaml")))).toMatchObject([{ line: 2, column: 13, code: "INVALID_UTF8" }]);
    await hostSurvives();
  });

  it("nesting 10 000 deep (flow or block) is refused at the node past the depth limit, with no stack overflow", async () => {
    const n = 10_000;
    // Brackets and `-` indicators are counted on the tokens, before yaml parses (and would recurse):
    // the 65th `[` (column 7 + 65) is refused.
    const flow = `${GOOD_REGISTRY}extra: ${"[".repeat(n)}${"]".repeat(n)}\n`;
    const flowLine = GOOD_REGISTRY.split("\n").length;
    expect(registryRefused(() => parseRegistry(flow, "r.yaml"))).toMatchObject([{ line: flowLine, column: 7 + MAX_CONFIG_DEPTH + 1, code: "TOO_DEEP" }]);
    // `- - - x`: the k-th sequence starts at column 2k - 1, at depth k.
    const block = `${"- ".repeat(n)}x\n`;
    expect(policiesRefused(() => parsePolicies([{ file: "p.yaml", text: block }]))).toMatchObject([
      { line: 1, column: 2 * (MAX_CONFIG_DEPTH + 1) - 1, code: "TOO_DEEP" },
    ]);
    // Nesting by indentation: k0 at depth 1, k_i at depth i + 1 on line i + 1. Within what the
    // parser survives, the document is parsed and refused at the first node past the limit...
    const staircase = (lines: number) => `${Array.from({ length: lines }, (_, i) => `${" ".repeat(i)}k${i}:`).join("\n")} x\n`;
    // (a key counts as a level below its mapping: k63, on line 64, is at depth 65).
    expect(registryRefused(() => parseRegistry(staircase(100), "r.yaml"))).toMatchObject([{ line: MAX_CONFIG_DEPTH, column: MAX_CONFIG_DEPTH, code: "TOO_DEEP" }]);
    // ...and 10 000 levels of it are refused on the tokens, before the parser could recurse that deep.
    const [deep] = registryRefused(() => parseRegistry(staircase(n), "r.yaml"));
    expect(deep).toMatchObject({ code: "TOO_DEEP" });
    expect(deep!.line).toBeGreaterThan(MAX_CONFIG_DEPTH);
    expect(deep!.line).toBeLessThanOrEqual(4 * MAX_CONFIG_DEPTH);
    await hostSurvives();
  });

  it("parsing hands process.env back unchanged, whether the file loads, is refused early or is refused after parsing", () => {
    // The parse stands a plain copy in for process.env while it runs (see yaml-source.ts).
    const env = process.env;
    process.env.LUASTORE_TEST_ENV_PROBE = "kept";
    try {
      parseRegistry(GOOD_REGISTRY, "r.yaml");
      expect(process.env).toBe(env);
      registryRefused(() => parseRegistry(`${"[".repeat(1000)}${"]".repeat(1000)}\n`, "r.yaml"));
      expect(process.env).toBe(env);
      registryRefused(() => parseRegistry(`${GOOD_REGISTRY}oops: [\n`, "r.yaml"));
      expect(process.env).toBe(env);
      expect(process.env.LUASTORE_TEST_ENV_PROBE).toBe("kept");
    } finally {
      delete process.env.LUASTORE_TEST_ENV_PROBE;
    }
  });

  it("an alias bomb is refused at the alias that takes it past the expansion limit, in registry and policy files", () => {
    const bomb = [
      "a: &a [x, x, x, x, x, x, x, x, x, x]",
      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
      "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]",
      "",
    ].join("\n");
    // a, b, c expand to 11, 111, 1111 nodes; with b's and c's aliases (110 + 1110), the 8th *c
    // (the first at column 8, then every 4) passes 10 000.
    expect(MAX_ALIAS_EXPANSION).toBe(10_000);
    const at = { line: 4, column: 8 + 7 * 4, code: "ALIAS_EXPANSION" };
    expect(registryRefused(() => parseRegistry(bomb, "r.yaml"))).toMatchObject([at]);
    expect(policiesRefused(() => parsePolicies([{ file: "p.yaml", text: bomb }]))).toMatchObject([at]);
  });

  it("a chain of 10 000 aliases, each one level deeper, is refused where it passes the depth limit", () => {
    const lines = ["a0: &a0 [x]"];
    for (let i = 1; i < 10_000; i++) lines.push(`a${i}: &a${i} [*a${i - 1}]`);
    // On line i + 1, *a_{i-1} sits at depth 3 and expands i + 1 levels (i lists and x): *a62, on
    // line 63 after "a62: &a62 [", is the first to reach past 64.
    expect(registryRefused(() => parseRegistry(lines.join("\n"), "r.yaml"))).toMatchObject([
      { line: MAX_CONFIG_DEPTH - 1, column: "a62: &a62 [".length + 1, code: "TOO_DEEP" },
    ]);
  });

  it(`more than ${MAX_ANCHORS} anchors in a document are refused at the first one too many`, () => {
    const lines = Array.from({ length: MAX_ANCHORS + 5 }, (_, i) => `k${i}: &a${i} v`);
    expect(registryRefused(() => parseRegistry(lines.join("\n"), "r.yaml"))).toMatchObject([
      { line: MAX_ANCHORS + 1, column: `k${MAX_ANCHORS}: &a${MAX_ANCHORS} `.length + 1, code: "ALIAS_EXPANSION" },
    ]);
  });

  it("an alias inside the node it names (a cycle) is refused at the alias", () => {
    const text = `${GOOD_REGISTRY}loop: &l [a, *l]\n`;
    const line = GOOD_REGISTRY.split("\n").length;
    expect(registryRefused(() => parseRegistry(text, "r.yaml"))).toMatchObject([{ line, column: 14, code: "ALIAS_CYCLE" }]);
    expect(policiesRefused(() => parsePolicies([{ file: "p.yaml", text: "version: &v [*v]\n" }]))).toMatchObject([
      { line: 1, column: 14, code: "ALIAS_CYCLE" },
    ]);
  });

  it("9007199254740993 is refused as an integer beyond 2^53, not read as ...992", () => {
    const registry = `${GOOD_REGISTRY.trimEnd()}\n    max_size: 9007199254740993\n`;
    expect(registryRefused(() => parseRegistry(registry, "r.yaml"))).toMatchObject([{ line: 6, column: 15, code: "UNSAFE_INTEGER" }]);
    const condition = "      - { field: actor.meta.level, operator: lt, value: -9007199254740993 }";
    const policy = `${GOOD_POLICY}    conditions:\n${condition}\n`;
    expect(policiesRefused(() => parsePolicies([{ file: "p.yaml", text: policy }]))).toMatchObject([
      { line: 8, column: condition.indexOf("-9") + 1, code: "UNSAFE_INTEGER" },
    ]);
    // 2^53 - 1 is exact and accepted; a quoted number is a string and not checked.
    expect(parseRegistry(`${GOOD_REGISTRY.trimEnd()}\n    max_size: 9007199254740991\n`, "r.yaml").entries).toHaveLength(1);
  });
});

describe("[hostile] many mistakes in one big file", () => {
  // Big inputs on a loaded machine: generous test timeouts (a guard, not a measurement).
  const BIG = 120_000;
  /** A registry of `n` entries, each with one unknown field: n problems. */
  function registryWithMistakes(n: number): string {
    const lines = ['version: "1.0"', "namespace: app", "entries:"];
    for (let i = 0; i < n; i++) lines.push(`  - name: s${i}`, "    kind: store.memory", `    max_sise: ${i}`);
    return `${lines.join("\n")}\n`;
  }

  it("20 000 mistakes in a 1 MB registry are all reported, positioned from one line index", () => {
    const text = registryWithMistakes(20_000);
    expect(text.length).toBeGreaterThan(1_000_000);
    const before = LineIndex.builds;
    const problems = registryRefused(() => parseRegistry(text, "r.yaml"));
    expect(LineIndex.builds - before).toBe(1);
    expect(problems).toHaveLength(20_000);
    expect(problems[19_999]).toMatchObject({ line: 3 + 3 * 20_000, column: 5 });
    expect(problems[19_999]!.excerpt).toContain("max_sise: 19999");
  }, BIG);

  it("150 000 duplicate keys in one mapping are all reported (found with a set; collected without push(...spread))", () => {
    const text = `x:\n${"  k: 1\n".repeat(150_000)}`;
    const problems = policiesRefused(() => parsePolicies([{ file: "p.yaml", text }]));
    expect(problems).toHaveLength(149_999);
    expect(problems[0]).toMatchObject({ line: 3, column: 3 });
    // The same text as a registry: the duplicates, then the document's own problems.
    expect(registryRefused(() => parseRegistry(text, "r.yaml")).length).toBeGreaterThanOrEqual(149_999);
  }, BIG);

  it("20 000 mistakes in one policy file, and 20 000 YAML errors, are positioned from one line index each", () => {
    const lines = ['version: "1.0"', "policies:"];
    for (let i = 0; i < 20_000; i++) lines.push(`  - { id: p${i}, effect: allow, actions: [a], resources: [r], colour: ${i} }`);
    const before = LineIndex.builds;
    const problems = policiesRefused(() => parsePolicies([{ file: "p.yaml", text: `${lines.join("\n")}\n` }]));
    expect(LineIndex.builds - before).toBe(1);
    expect(problems).toHaveLength(20_000);
    expect(problems[19_999]).toMatchObject({ line: 20_002 });

    const duplicates = ['version: "1.0"', "x:", ...Array.from({ length: 20_000 }, (_, i) => `  k: ${i}`)].join("\n");
    const yamlBefore = LineIndex.builds;
    expect(registryRefused(() => parseRegistry(duplicates, "r.yaml")).length).toBeGreaterThanOrEqual(19_999);
    expect(LineIndex.builds - yamlBefore).toBe(1);
  }, BIG);
});
