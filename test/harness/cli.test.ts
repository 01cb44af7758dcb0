/** `luastore test` through the real CLI entry point: flags, reporters, files and exit codes. */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";

const FIXTURES = "test/harness/fixtures";
const CONFIG = ["--registry", `${FIXTURES}/registry.yaml`, "--policies", `${FIXTURES}/policies.yaml`];

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

const lastLine = (text: string): string => text.trimEnd().split("\n").at(-1) ?? "";

const scratch = mkdtempSync(join(tmpdir(), "luastore-cli-test-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("exit codes", () => {
  it("0 when every test passes: the shipped examples, found under lua/ by default", async () => {
    const { code, stdout, stderr } = await cli("test");
    expect(stderr).toBe("");
    expect(stdout).toContain("lua/examples/session_store_test.lua");
    expect(lastLine(stdout)).toMatch(/^\d+ passed, 0 failed$/);
    expect(code).toBe(0);
  });

  it("1 when a test fails, with the summary as the last line", async () => {
    const { code, stdout } = await cli("test", `${FIXTURES}/report`, ...CONFIG);
    expect(lastLine(stdout)).toBe("3 passed, 4 failed, 1 skipped");
    expect(code).toBe(1);
  });

  it("2 when a test file does not compile, reported with file and line, even when others fail too", async () => {
    const { code, stdout } = await cli("test", `${FIXTURES}/compile`, `${FIXTURES}/report`, ...CONFIG);
    expect(stdout).toContain("✗ test/harness/fixtures/compile/syntax_test.lua (does not compile)");
    expect(stdout).toContain("at test/harness/fixtures/compile/syntax_test.lua:4");
    expect(code).toBe(2);
  });

  const ok = [`${FIXTURES}/actor`, ...CONFIG];
  it.each([
    [[...ok, "--frobnicate"], /unknown flag '--frobnicate'/],
    [[...ok, "--reporter", "xml"], /flag '--reporter' must be one of pretty, tap, junit, json, got 'xml'/],
    [[...ok, "--timeout", "0"], /flag '--timeout' must be >= 0.001/],
    [[...ok, "--max-instructions", "1.5"], /flag '--max-instructions' needs a whole number/],
    [[...ok, "--filter", "("], /--filter: not a valid regular expression/],
    [[...ok, "--meta", "tenant"], /--meta needs KEY=VALUE/],
    [[...ok, "--isolation", "worker"], /--isolation worker is not available for luastore test yet/],
    [["no/such/dir", ...CONFIG], /no such file or directory: no\/such\/dir/],
    [["src/harness", ...CONFIG], /no \*_test\.lua files found in src\/harness/],
    [[`${FIXTURES}/actor`, "--registry", `${FIXTURES}/policies.yaml`, "--policies", `${FIXTURES}/policies.yaml`], /^registry: \d+ problem\(s\)/],
    [[`${FIXTURES}/actor`, "--registry", `${FIXTURES}/registry.yaml`, "--policies", `${FIXTURES}/registry.yaml`], /^policies: \d+ problem\(s\)/],
  ])("2 on bad input: test %j", async (args, message) => {
    const { code, stdout, stderr } = await cli("test", ...args);
    expect(stderr).toMatch(message);
    expect(stdout).toBe("");
    expect(code).toBe(2);
  });

  it("accepts --isolation inline", async () => {
    expect((await cli("test", `${FIXTURES}/actor`, ...CONFIG, "--isolation", "inline")).code).toBe(0);
  });
});

describe("flags", () => {
  it("--filter runs only matching tests; matching nothing is a failure", async () => {
    const passing = `${FIXTURES}/report/a_pass_test.lua`;
    const some = await cli("test", passing, ...CONFIG, "--filter", "cart > .* item", "--reporter", "tap");
    expect(some.stdout).toBe(
      "TAP version 13\nok 1 - test/harness/fixtures/report/a_pass_test.lua > cart > adds an item\n1..1\n# 1 passed, 0 failed\n",
    );
    expect(some.code).toBe(0);
    const none = await cli("test", passing, ...CONFIG, "--filter", "no such test");
    expect(none.stderr).toBe("no test matched --filter no such test\n");
    expect(none.code).toBe(1);
  });

  it("--bail stops at the first failure", async () => {
    const { code, stdout } = await cli("test", `${FIXTURES}/report`, ...CONFIG, "--bail", "--reporter", "tap");
    expect(stdout.split("\n").filter((l) => /^(not )?ok /.test(l))).toHaveLength(5);
    expect(stdout.trimEnd().split("\n").slice(-3)).toEqual([
      "1..5",
      "# stopped at the first failure (--bail)",
      "# 3 passed, 1 failed, 1 skipped",
    ]);
    expect(code).toBe(1);
  });

  it("--actor sets who the tests run as", async () => {
    expect((await cli("test", `${FIXTURES}/actor`, ...CONFIG)).code).toBe(0);
    const reader = await cli("test", `${FIXTURES}/actor`, ...CONFIG, "--actor", "reader");
    expect(reader.stdout).toContain("PermissionDenied");
    expect(reader.code).toBe(1);
  });

  it("--max-instructions and --timeout bound each file's run", async () => {
    const instructions = await cli("test", `${FIXTURES}/limits`, ...CONFIG, "--max-instructions", "100000");
    expect(instructions.stdout).toContain("InstructionLimit: instruction limit exceeded (100000 instructions)");
    expect(instructions.code).toBe(1);
    const timeout = await cli("test", `${FIXTURES}/limits`, ...CONFIG, "--timeout", "0.2");
    expect(timeout.stdout).toContain("Timeout: timeout: run exceeded 200 ms");
    expect(timeout.code).toBe(1);
  });

  it("a file that catches an error and then spins is stopped with its kind, and the next file still runs", async () => {
    // Regression: after one caught error fengari's count hook stopped firing, so this file hung
    // `luastore test` for good. Each budget that must fire is far below the one that must not
    // (0.5 s against the default 50M instructions; 100 000 instructions against the default 5 s).
    const timeout = await cli("test", `${FIXTURES}/limits-caught`, ...CONFIG, "--timeout", "0.5");
    expect(timeout.stdout).toContain("Timeout: timeout: run exceeded 500 ms");
    expect(timeout.stdout).toContain("✓ runs after the file that was stopped");
    expect(timeout.code).toBe(1);
    const instructions = await cli("test", `${FIXTURES}/limits-caught`, ...CONFIG, "--max-instructions", "100000");
    expect(instructions.stdout).toContain("InstructionLimit: instruction limit exceeded (100000 instructions)");
    expect(instructions.stdout).toContain("✓ runs after the file that was stopped");
    expect(instructions.code).toBe(1);
  });

  it("--output writes the report to a file and shows the pretty report on the terminal", async () => {
    const file = join(scratch, "junit.xml");
    const { code, stdout } = await cli("test", `${FIXTURES}/report`, ...CONFIG, "--reporter", "junit", "--output", file);
    const xml = readFileSync(file, "utf8");
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="luastore test" tests="8"')).toBe(true);
    expect(stdout).toContain("✓ adds an item");
    expect(lastLine(stdout)).toBe("3 passed, 4 failed, 1 skipped");
    expect(code).toBe(1);
  });

  it("help lists the test command", async () => {
    expect((await cli("help")).stdout).toContain("test [PATH...]");
    expect((await cli("test", "--help")).stdout).toContain("usage: luastore test [PATH...]");
  });
});
