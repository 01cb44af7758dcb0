/**
 * `luastore/testing`: this file is itself a vitest suite built from Lua tests (the passing
 * fixtures), and it runs a second suite with failures in a child vitest to check what vitest
 * reports for each Lua test.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { defineLuaTests } from "../../src/harness/testing.js";

const FIXTURES = "test/harness/fixtures";

await defineLuaTests(`${FIXTURES}/vitest/passing`, {
  registry: `${FIXTURES}/registry.yaml`,
  policies: `${FIXTURES}/policies.yaml`,
});

interface JsonAssertion {
  ancestorTitles: string[];
  title: string;
  status: string;
  failureMessages: string[];
}

describe("defineLuaTests", () => {
  it("gives vitest one test per Lua test, nested as the Lua describes, with Lua failures", async () => {
    const dir = mkdtempSync(join(tmpdir(), "luastore-vitest-"));
    const outputFile = join(dir, "report.json");
    try {
      await promisify(execFile)(
        process.execPath,
        ["node_modules/vitest/vitest.mjs", "run", "--config", `${FIXTURES}/vitest/vitest.config.ts`, "--reporter=json", `--outputFile=${outputFile}`],
        { env: { ...process.env, NO_COLOR: "1" } },
      ).catch((err: { code?: number }) => {
        if (err.code !== 1) throw err; // 1: the suite has failing tests, as it should
      });
      const report = JSON.parse(readFileSync(outputFile, "utf8")) as { testResults: { assertionResults: JsonAssertion[] }[] };
      const results = report.testResults.flatMap((f) => f.assertionResults);
      const byName = results.map((r) => [[...r.ancestorTitles, r.title].join(" > "), r.status]);
      expect(byName).toEqual([
        ["test/harness/fixtures/vitest/mixed/broken_test.lua > raised while loading", "failed"],
        ["test/harness/fixtures/vitest/mixed/mixed_test.lua > outer > passes", "passed"],
        ["test/harness/fixtures/vitest/mixed/mixed_test.lua > outer > fails", "failed"],
        ["test/harness/fixtures/vitest/mixed/mixed_test.lua > outer > inner > twice", "passed"],
        ["test/harness/fixtures/vitest/mixed/mixed_test.lua > outer > inner > twice", "failed"],
        ["test/harness/fixtures/vitest/mixed/mixed_test.lua > outer > skipped", "skipped"],
      ]);
      const messages = results.map((r) => r.failureMessages.join("\n"));
      expect(messages[0]).toContain("LuaTestError: cannot load");
      expect(messages[2]).toContain("LuaTestError: eq failed\n  expected: 3\n    actual: 2");
      expect(messages[2]).toContain("mixed_test.lua:6:1");
      expect(messages[4]).toContain("LuaTestError: second of the name");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);

  it("refuses paths without Lua test files", async () => {
    await expect(defineLuaTests("src/harness", { registry: `${FIXTURES}/registry.yaml`, policies: `${FIXTURES}/policies.yaml` })).rejects.toThrow(
      "defineLuaTests: no *_test.lua files found in src/harness",
    );
  });
});
