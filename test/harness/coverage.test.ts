/**
 * `luastore test --coverage`: which lines of the Lua under test ran, from the line hook, with the
 * executable lines read from the compiled prototypes; a table, lcov, and the JSON report. The line
 * hook shares one hook function with the count hook, and the limits stay exact with it.
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lua } from "fengari";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";
import { createHost, type Host } from "../../src/host.js";
import { installLineHook } from "../../src/lua/control.js";
import type { ModuleOpener } from "../../src/lua/sandbox.js";
import { ADMIN, TEST_POLICIES, TEST_REGISTRY } from "../helpers.js";

const FIXTURES = "test/harness/fixtures";
const CONFIG = ["--registry", `${FIXTURES}/registry.yaml`, "--policies", `${FIXTURES}/policies.yaml`];
const MODULE = `${FIXTURES}/line-coverage/lib/calc.lua`;
const TEST_FILE = `${FIXTURES}/line-coverage/calc_test.lua`;

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

/** An lcov tracefile as records: SF → { DA line → hits, LF, LH }; throws on any line that is not lcov. */
function parseLcov(text: string): Map<string, { da: Map<number, number>; lf: number; lh: number }> {
  const records = new Map<string, { da: Map<number, number>; lf: number; lh: number }>();
  let current: { file: string; da: Map<number, number>; lf: number; lh: number } | undefined;
  for (const line of text.split("\n").filter(Boolean)) {
    const [tag, value = ""] = line.split(/:(.*)/s);
    if (tag === "TN") continue;
    if (tag === "SF") current = { file: value, da: new Map(), lf: -1, lh: -1 };
    else if (tag === "DA" && current) {
      const [l, n] = value.split(",").map(Number);
      current.da.set(l!, n!);
    } else if (tag === "LF" && current) current.lf = Number(value);
    else if (tag === "LH" && current) current.lh = Number(value);
    else if (line === "end_of_record" && current) {
      records.set(current.file, current);
      current = undefined;
    } else throw new Error(`not an lcov line: ${line}`);
  }
  expect(current, "every record ends with end_of_record").toBeUndefined();
  return records;
}

const scratch = mkdtempSync(join(tmpdir(), "luastore-coverage-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("luastore test --coverage", () => {
  // lib/calc.lua: the test calls add(1, 2) and sign(5). sign's `return -1` (9) and `return 0` (11)
  // never run, nor unused's body (17, 18); `function M.unused()` (16) and its `end` (19) do, as the
  // module's main chunk stores the function (SETFIELD at 16, CLOSURE at 19). Lines 2, 6, 12, 15
  // and 20 hold no instruction, and a function's `end` does not count for the return the compiler
  // adds there.
  const EXECUTABLE = [1, 3, 4, 5, 7, 8, 9, 10, 11, 13, 14, 16, 17, 18, 19, 21];
  const UNCOVERED = [9, 11, 17, 18];

  it("reports exactly which lines of the module ran, in the JSON report and in lcov", async () => {
    const dir = join(scratch, "json");
    const r = await cli("test", `${FIXTURES}/line-coverage`, ...CONFIG, "--coverage", "--coverage-dir", dir, "--json");
    expect(r.code).toBe(0);
    const doc = JSON.parse(r.stdout) as { passed: number; coverage: { lines: number; covered: number; files: { file: string; lines: number; covered: number; percent: number; uncovered: number[] }[] } };
    expect(doc.passed).toBe(2);
    // Only the Lua under test: not lua/harness/test.lua, not the host's modules.
    expect(doc.coverage.files.map((f) => f.file)).toEqual([TEST_FILE, MODULE]);
    expect(doc.coverage.files[1]).toEqual({ file: MODULE, lines: EXECUTABLE.length, covered: EXECUTABLE.length - UNCOVERED.length, percent: 75, uncovered: UNCOVERED });
    expect(doc.coverage.files[0]).toMatchObject({ uncovered: [], percent: 100 });

    const records = parseLcov(readFileSync(join(dir, "lcov.info"), "utf8"));
    expect([...records.keys()]).toEqual([TEST_FILE, MODULE]);
    const calc = records.get(MODULE)!;
    expect([...calc.da.keys()]).toEqual(EXECUTABLE);
    expect([...calc.da].filter(([, n]) => n === 0).map(([l]) => l)).toEqual(UNCOVERED);
    expect(calc.da.get(4)).toBe(1);
    expect(calc.lf).toBe(EXECUTABLE.length);
    expect(calc.lh).toBe(EXECUTABLE.length - UNCOVERED.length);
  });

  it("prints the table before the summary line, with the pretty and the TAP reporter", async () => {
    const cwd = process.cwd();
    const pretty = await cli("test", `${FIXTURES}/line-coverage`, ...CONFIG, "--coverage", "--coverage-dir", join(scratch, "pretty"));
    const lines = pretty.stdout.trimEnd().split("\n");
    expect(lines.at(-1)).toBe("2 passed, 0 failed");
    expect(lines.find((l) => l.startsWith(MODULE))).toMatch(new RegExp(`^${MODULE} +16 +12 +75\\.0$`));
    expect(lines.find((l) => l.startsWith("all files"))).toMatch(/^all files +24 +20 +83\.3$/);
    const tap = await cli("test", `${FIXTURES}/line-coverage`, ...CONFIG, "--coverage", "--coverage-dir", join(scratch, "tap"), "--reporter", "tap");
    const tapLines = tap.stdout.trimEnd().split("\n");
    expect(tapLines.at(-1)).toBe("# 2 passed, 0 failed");
    expect(tapLines.find((l) => l.startsWith(`# ${MODULE}`))).toMatch(/ 75\.0$/);
    expect(process.cwd()).toBe(cwd);
  });

  it("writes coverage/lcov.info by default", async () => {
    const cwd = process.cwd();
    const fixtures = join(cwd, FIXTURES);
    const work = mkdtempSync(join(scratch, "default-"));
    process.chdir(work);
    try {
      const r = await cli("test", join(fixtures, "line-coverage"), "--registry", join(fixtures, "registry.yaml"), "--policies", join(fixtures, "policies.yaml"), "--coverage");
      expect(r.code).toBe(0);
    } finally {
      process.chdir(cwd);
    }
    expect(readFileSync(join(work, "coverage", "lcov.info"), "utf8")).toContain("end_of_record\n");
  });

  it("keeps the limits: a spinning test is still stopped by the instruction limit", async () => {
    const r = await cli("test", `${FIXTURES}/limits`, ...CONFIG, "--coverage", "--coverage-dir", join(scratch, "limits"), "--max-instructions", "100000");
    expect(r.stdout).toContain("InstructionLimit: instruction limit exceeded (100000 instructions)");
    expect(r.code).toBe(1);
  });

  it.each([
    [["--coverage-dir", "x"], /--coverage-dir needs --coverage/],
    [["--coverage", "--watch"], /give --coverage or --watch, not both/],
  ])("refuses %j", async (flags, message) => {
    const r = await cli("test", `${FIXTURES}/line-coverage`, ...CONFIG, ...flags);
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
  });
});

describe("the line hook beside the count hook", () => {
  let host: Host;
  beforeAll(async () => {
    host = createHost({ registry: TEST_REGISTRY, policies: TEST_POLICIES, sweepTimers: false, isolation: "inline" });
    await host.ready();
  });
  afterAll(async () => {
    await host.close();
  });

  /** Runs `src` after `require("hook")`, which installs the line hook (or, without it, nothing). */
  const run = async (src: string, withHook: boolean, maxInstructions?: number) => {
    const lines: number[] = [];
    const opener: ModuleOpener = (L) => {
      if (withHook) installLineHook(L, (ar) => void lines.push(ar.currentline));
      lua.lua_pushboolean(L, true);
      return 1;
    };
    const result = await host.run(`require("hook")\n${src}`, {
      actor: ADMIN,
      modules: new Map([["hook", opener]]),
      ...(maxInstructions ? { limits: { maxInstructions } } : {}),
    });
    return { result, lines };
  };

  const LOOP = `local x = 0\nfor i = 1, 12345 do\n  x = x + i\nend\ncoroutine.wrap(function() for i = 1, 777 do x = x + i end end)()\nreturn x`;

  it("leaves stats.instructions exactly as without it, coroutines included", async () => {
    const without = await run(LOOP, false);
    const withHook = await run(LOOP, true);
    expect(withHook.result.error).toBeUndefined();
    expect(withHook.result.values).toEqual(without.result.values);
    expect(withHook.result.stats.instructions).toBe(without.result.stats.instructions);
    // And it did see the lines: the loop body once per iteration (the FORLOOP jumps back to it).
    expect(withHook.lines.filter((l) => l === 4).length).toBe(12345);
  });

  it("stops a run at the same instruction limit, and pcall cannot catch the kill", async () => {
    const spin = `local ok = pcall(function() while true do end end)\nwhile true do end`;
    const without = await run(spin, false, 200_000);
    const withHook = await run(spin, true, 200_000);
    expect(withHook.result.error?.kind).toBe("InstructionLimit");
    expect(withHook.result.stats.instructions).toBe(without.result.stats.instructions);
  });
});
