/** The exact text of each reporter, on fixtures that pass, fail, skip and raise (durations normalized). */
import { describe, expect, it } from "vitest";
import { discoverTestFiles } from "../../src/harness/discover.js";
import { junitReporter, junitXml } from "../../src/harness/reporters/junit.js";
import { prettyReporter } from "../../src/harness/reporters/pretty.js";
import type { Reporter } from "../../src/harness/reporters/reporter.js";
import { tapReporter } from "../../src/harness/reporters/tap.js";
import { summarize, type TestResult } from "../../src/harness/results.js";
import { runTests } from "../../src/harness/runner.js";

const FIXTURES = "test/harness/fixtures";
const OPTIONS = {
  registry: `${FIXTURES}/registry.yaml`,
  policies: `${FIXTURES}/policies.yaml`,
  actor: { id: "service:test", meta: {} },
};

/** Durations vary from run to run; everything else must not. */
function normalize(text: string): string {
  return text
    .replace(/\((?:<1|\d+) ms\)/g, "(X ms)")
    .replace(/ in (?:<1 ms|\d+ ms|\d+\.\d+ s)$/gm, " in X ms")
    .replace(/time="\d+\.\d+"/g, 'time="X"');
}

async function report(makeReporter: (write: (text: string) => void) => Reporter, dir = `${FIXTURES}/report`): Promise<string> {
  let out = "";
  await runTests(discoverTestFiles([dir]), OPTIONS, makeReporter((text) => (out += text)));
  return normalize(out);
}

const lines = (...l: string[]): string => `${l.join("\n")}\n`;

describe("pretty reporter", () => {
  it("prints per-file progress, every failure with its source lines, and the summary last", async () => {
    expect(await report((write) => prettyReporter({ write }))).toBe(
      lines(
        "test/harness/fixtures/report/a_pass_test.lua",
        "  cart",
        "    ✓ adds an item (X ms)",
        "    totals",
        "      ✓ sums prices (X ms)",
        "        | total\t30",
        "    - applies coupons (skipped)",
        "  ✓ keeps a # in its name (X ms)",
        "test/harness/fixtures/report/b_fail_test.lua",
        "  users",
        "    ✗ has the right roles (X ms)",
        "    ✗ loads an unknown user (X ms)",
        "  with a broken hook",
        "    ✗ never gets here (X ms)",
        "test/harness/fixtures/report/c_broken_test.lua",
        "  ✗ raised while loading",
        "",
        "Failures (4)",
        "",
        "✗ test/harness/fixtures/report/b_fail_test.lua > users > has the right roles",
        "  eq failed",
        '    at .name: expected "Ada", actual "Bob"',
        '    at .roles[2]: expected "dev", actual "ops"',
        '    expected: { name = "Ada", roles = { "admin", "dev" } }',
        '      actual: { name = "Bob", roles = { "admin", "ops" } }',
        "  at test/harness/fixtures/report/b_fail_test.lua:10",
        '       9 |   test.it("has the right roles", function()',
        '    > 10 |     test.eq({ name = "Bob", roles = { "admin", "ops" } }, { name = "Ada", roles = { "admin", "dev" } })',
        "      11 |   end)",
        "",
        "✗ test/harness/fixtures/report/b_fail_test.lua > users > loads an unknown user",
        "  attempt to index a nil value (field '?')",
        "  at test/harness/fixtures/report/b_fail_test.lua:5",
        '      4 |   local users = { ["42"] = { name = "Bob" } }',
        "    > 5 |   return users[id].name",
        "      6 | end",
        "  traceback:",
        "    test/harness/fixtures/report/b_fail_test.lua:5: in upvalue 'load_user'",
        "    test/harness/fixtures/report/b_fail_test.lua:13: in function <test/harness/fixtures/report/b_fail_test.lua:12>",
        "",
        "✗ test/harness/fixtures/report/b_fail_test.lua > with a broken hook > never gets here (before_each hook failed)",
        "  fixture missing",
        "  at test/harness/fixtures/report/b_fail_test.lua:19",
        "      18 |   test.before_each(function()",
        '    > 19 |     error("fixture missing")',
        "      20 |   end)",
        "",
        "✗ test/harness/fixtures/report/c_broken_test.lua (raised while loading)",
        "  attempt to index a nil value (local 'settings')",
        "  at test/harness/fixtures/report/c_broken_test.lua:5",
        "      4 | local settings = nil",
        "    > 5 | print(settings.name)",
        "      6 |",
        "",
        "3 files in X ms",
        "3 passed, 4 failed, 1 skipped",
      ),
    );
  });

  it("shows a compile error with its line", async () => {
    expect(await report((write) => prettyReporter({ write }), `${FIXTURES}/compile`)).toBe(
      lines(
        "test/harness/fixtures/compile/syntax_test.lua",
        "  ✗ does not compile",
        "",
        "Failures (1)",
        "",
        "✗ test/harness/fixtures/compile/syntax_test.lua (does not compile)",
        "  unexpected symbol near '='",
        "  at test/harness/fixtures/compile/syntax_test.lua:4",
        '      3 | test.it("never compiles", function()',
        "    > 4 |   local x = = 1",
        "      5 | end)",
        "",
        "1 file in X ms",
        "0 passed, 1 failed",
      ),
    );
  });

  it("colors marks and the summary on a terminal", async () => {
    const out = await report((write) => prettyReporter({ write, color: true }), `${FIXTURES}/report`);
    expect(out).toContain("\x1b[32m✓\x1b[39m adds an item");
    expect(out).toContain("\x1b[31m✗\x1b[39m \x1b[31mhas the right roles\x1b[39m");
    expect(out.trimEnd().split("\n").at(-1)).toBe("\x1b[31m3 passed, 4 failed, 1 skipped\x1b[39m");
  });
});

describe("tap reporter", () => {
  it("prints TAP version 13: a flat line per test, YAML under failures, the plan, and the summary last", async () => {
    expect(await report((write) => tapReporter({ write }))).toBe(
      lines(
        "TAP version 13",
        "ok 1 - test/harness/fixtures/report/a_pass_test.lua > cart > adds an item",
        "# total\t30",
        "ok 2 - test/harness/fixtures/report/a_pass_test.lua > cart > totals > sums prices",
        "ok 3 - test/harness/fixtures/report/a_pass_test.lua > cart > applies coupons # SKIP",
        "ok 4 - test/harness/fixtures/report/a_pass_test.lua > keeps a \\# in its name",
        "not ok 5 - test/harness/fixtures/report/b_fail_test.lua > users > has the right roles",
        "  ---",
        "  message: |-",
        "    eq failed",
        '      at .name: expected "Ada", actual "Bob"',
        '      at .roles[2]: expected "dev", actual "ops"',
        '      expected: { name = "Ada", roles = { "admin", "dev" } }',
        '        actual: { name = "Bob", roles = { "admin", "ops" } }',
        '  at: "test/harness/fixtures/report/b_fail_test.lua:10"',
        "  ...",
        "not ok 6 - test/harness/fixtures/report/b_fail_test.lua > users > loads an unknown user",
        "  ---",
        "  message: |-",
        "    attempt to index a nil value (field '?')",
        '  at: "test/harness/fixtures/report/b_fail_test.lua:5"',
        "  traceback: |-",
        "    test/harness/fixtures/report/b_fail_test.lua:5: in upvalue 'load_user'",
        "    test/harness/fixtures/report/b_fail_test.lua:13: in function <test/harness/fixtures/report/b_fail_test.lua:12>",
        "  ...",
        "not ok 7 - test/harness/fixtures/report/b_fail_test.lua > with a broken hook > never gets here",
        "  ---",
        "  message: |-",
        "    fixture missing",
        '  at: "test/harness/fixtures/report/b_fail_test.lua:19"',
        "  hook: before_each",
        "  ...",
        "not ok 8 - test/harness/fixtures/report/c_broken_test.lua",
        "  ---",
        "  message: |-",
        "    attempt to index a nil value (local 'settings')",
        "  kind: raised while loading",
        '  at: "test/harness/fixtures/report/c_broken_test.lua:5"',
        "  ...",
        "1..8",
        "# 3 passed, 4 failed, 1 skipped",
      ),
    );
  });

  it("omits the skipped count when nothing was skipped", async () => {
    const out = await report((write) => tapReporter({ write }), `${FIXTURES}/compile`);
    expect(out.trimEnd().split("\n").slice(-2)).toEqual(["1..1", "# 0 passed, 1 failed"]);
  });
});

describe("junit reporter", () => {
  it("writes a testsuite per file, failure for assertions, error for the rest, skipped and system-out", async () => {
    expect(await report((write) => junitReporter({ write }))).toBe(
      lines(
        '<?xml version="1.0" encoding="UTF-8"?>',
        '<testsuites name="luastore test" tests="8" failures="1" errors="3" skipped="1" time="X">',
        '  <testsuite name="test/harness/fixtures/report/a_pass_test.lua" tests="4" failures="0" errors="0" skipped="1" time="X">',
        '    <testcase name="cart &gt; adds an item" classname="test/harness/fixtures/report/a_pass_test.lua" time="X"/>',
        '    <testcase name="cart &gt; totals &gt; sums prices" classname="test/harness/fixtures/report/a_pass_test.lua" time="X">',
        "      <system-out>total\t30",
        "</system-out>",
        "    </testcase>",
        '    <testcase name="cart &gt; applies coupons" classname="test/harness/fixtures/report/a_pass_test.lua" time="X">',
        "      <skipped/>",
        "    </testcase>",
        '    <testcase name="keeps a # in its name" classname="test/harness/fixtures/report/a_pass_test.lua" time="X"/>',
        "  </testsuite>",
        '  <testsuite name="test/harness/fixtures/report/b_fail_test.lua" tests="3" failures="1" errors="2" skipped="0" time="X">',
        '    <testcase name="users &gt; has the right roles" classname="test/harness/fixtures/report/b_fail_test.lua" time="X">',
        '      <failure message="eq failed" type="AssertionError">eq failed',
        "  at .name: expected &quot;Ada&quot;, actual &quot;Bob&quot;",
        "  at .roles[2]: expected &quot;dev&quot;, actual &quot;ops&quot;",
        "  expected: { name = &quot;Ada&quot;, roles = { &quot;admin&quot;, &quot;dev&quot; } }",
        "    actual: { name = &quot;Bob&quot;, roles = { &quot;admin&quot;, &quot;ops&quot; } }",
        "at test/harness/fixtures/report/b_fail_test.lua:10</failure>",
        "    </testcase>",
        '    <testcase name="users &gt; loads an unknown user" classname="test/harness/fixtures/report/b_fail_test.lua" time="X">',
        "      <error message=\"attempt to index a nil value (field '?')\" type=\"RuntimeError\">attempt to index a nil value (field '?')",
        "at test/harness/fixtures/report/b_fail_test.lua:5",
        "test/harness/fixtures/report/b_fail_test.lua:5: in upvalue 'load_user'",
        "test/harness/fixtures/report/b_fail_test.lua:13: in function &lt;test/harness/fixtures/report/b_fail_test.lua:12&gt;</error>",
        "    </testcase>",
        '    <testcase name="with a broken hook &gt; never gets here" classname="test/harness/fixtures/report/b_fail_test.lua" time="X">',
        '      <error message="before_each hook failed: fixture missing" type="RuntimeError">fixture missing',
        "at test/harness/fixtures/report/b_fail_test.lua:19</error>",
        "    </testcase>",
        "  </testsuite>",
        '  <testsuite name="test/harness/fixtures/report/c_broken_test.lua" tests="1" failures="0" errors="1" skipped="0" time="X">',
        '    <testcase name="(file)" classname="test/harness/fixtures/report/c_broken_test.lua" time="X">',
        "      <error message=\"raised while loading: attempt to index a nil value (local 'settings')\" type=\"RuntimeError\">attempt to index a nil value (local 'settings')",
        "at test/harness/fixtures/report/c_broken_test.lua:5</error>",
        "    </testcase>",
        "  </testsuite>",
        "</testsuites>",
        "<!-- 3 passed, 4 failed, 1 skipped -->",
      ),
    );
  });

  it("reports a file that does not compile as a SyntaxError error", async () => {
    const out = await report((write) => junitReporter({ write }), `${FIXTURES}/compile`);
    expect(out).toContain(
      '<error message="does not compile: unexpected symbol near \'=\'" type="SyntaxError">unexpected symbol near \'=\'\nat test/harness/fixtures/compile/syntax_test.lua:4</error>',
    );
  });

  it("escapes markup and drops characters XML 1.0 cannot carry", () => {
    const test: TestResult = {
      file: "a_test.lua",
      path: ['<b> & "q"'],
      status: "failed",
      durationMs: 0,
      output: "bell\x07!",
      failure: { message: "1 < 2 & 3 > 2\x00", assertion: true },
    };
    const xml = junitXml(summarize([{ file: "a_test.lua", tests: [test], durationMs: 0, output: "" }], 0, false));
    expect(xml).toContain('<testcase name="&lt;b&gt; &amp; &quot;q&quot;"');
    expect(xml).toContain('<failure message="1 &lt; 2 &amp; 3 &gt; 2" type="AssertionError">1 &lt; 2 &amp; 3 &gt; 2</failure>');
    expect(xml).toContain("<system-out>bell!</system-out>");
  });
});
