/**
 * `luastore repl` with its input piped in (not a TTY: no prompts, no banner): expressions printed
 * as Lua values, multi-line input, globals that persist as data, store handles opened again,
 * errors with their kind, the run's limits per input, `.exit` and the end of input.
 */
import { spawnSync } from "node:child_process";
import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";

const FIXTURES = "test/harness/fixtures";
const CONFIG = ["--registry", `${FIXTURES}/registry.yaml`, "--policies", `${FIXTURES}/policies.yaml`];

async function repl(lines: string[], ...flags: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const input = Readable.from([`${lines.join("\n")}\n`]);
  const code = await main(["repl", ...CONFIG, ...flags], { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t), input });
  return { code, stdout, stderr };
}

describe("luastore repl", () => {
  it("prints an expression's values as Lua values, and nothing for a statement", async () => {
    const r = await repl(['1 + 1', '"a\\n"', "{ 1, 2, a = { b = true }, [10] = 2.5 }", "nil", "1, 'x', false", "x = 1", "math.floor"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(['2', '"a\\n"', "{ 1, 2, [10] = 2.5, a = { b = true } }", "nil", '1\t"x"\tfalse', "<function>", ""].join("\n"));
    expect(r.code).toBe(0);
  });

  it("bounds what a value prints: 50 entries a table, 4 levels deep, cycles named", async () => {
    const r = await repl([
      "big = {} for i = 1, 100 do big[i] = i end",
      "big",
      "{ a = { b = { c = { d = { e = 1 } } } } }",
      "local t = {} t.self = t return t",
    ]);
    expect(r.stderr).toBe("");
    const [big, deep, cycle] = r.stdout.split("\n");
    expect(big).toBe(`{ ${Array.from({ length: 50 }, (_, i) => i + 1).join(", ")}, ... }`);
    expect(deep).toBe("{ a = { b = { c = { d = {...} } } } }");
    expect(cycle).toBe("{ self = <cycle> }");
  });

  it("reads a chunk that is not complete on one line (a syntax error at <eof>) over the next lines", async () => {
    const r = await repl(["for i = 1, 2 do", "  print(i)", "end", "1 +", "2", "print(math.max(1,", "  2))", "t = {", "}"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("1\n2\n3\n2\n");
  });

  it("keeps globals whose values are data from one input to the next, in place changes included; locals end with their input", async () => {
    const r = await repl(["x = 40", "x + 2", "t = {}", "t.n = 1", "t.n", "local y = 1", "y", "x = nil", "x"]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("42\n1\nnil\nnil\n");
  });

  it("says that a function left in a global does not persist", async () => {
    const r = await repl(["function f() return 1 end", "f"]);
    expect(r.stderr).toBe("note: f is not data: it does not persist to the next input\n");
    expect(r.stdout).toBe("nil\n");
  });

  it("has store, errors and time, keeps the stores for the session and opens a kept handle again in each input", async () => {
    const r = await repl([
      's = store.get("app:cache")',
      's:set("k", { n = 1 })',
      "s:get(\"k\")",
      'u = s:namespace("u")',
      'u:set("x", "in u")',
      's:get("u:x"), u',
      "errors.NOT_FOUND, time.now() > 0",
    ]);
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe(['true', '{ n = 1 }', 'true', '"in u"\t<store app:cache namespace "u">', '"NotFound"\ttrue', ""].join("\n"));
  });

  it("decides as the --actor: a reader's kept handle cannot write", async () => {
    const r = await repl(['s = store.get("app:cache")', 's:set("k", 1)', 'select(2, s:set("k", 1)):kind()'], "--actor", "reader");
    expect(r.stderr).toBe("");
    const [set, kind] = r.stdout.split("\n");
    expect(set).toMatch(/^nil\t<error PermissionDenied: ".*">$/);
    expect(kind).toBe('"PermissionDenied"');
  });

  it("prints errors with their kind and goes on", async () => {
    const r = await repl(['error("boom")', "x = = 1", "1 + 1"]);
    const lines = r.stderr.split("\n");
    expect(lines[0]).toBe("error: RuntimeError: stdin:1: boom");
    expect(lines).toContain("error: SyntaxError: stdin:1: unexpected symbol near '='");
    expect(r.stdout).toBe("2\n");
    expect(r.code).toBe(0);
  });

  it("gives each input the run's limits: a spinning input is stopped, the next one runs", async () => {
    // 100 000 instructions is far above what the other inputs take, far below what the spin would.
    const r = await repl(["n = 0", "while true do n = n + 1 end", "n"], "--max-instructions", "100000");
    expect(r.stderr).toMatch(/^error: InstructionLimit: instruction limit exceeded \(100000 instructions\)\n/);
    // The stopped input kept nothing: n is still the 0 of the input before.
    expect(r.stdout).toBe("0\n");
  });

  it("ends at .exit, and reports an input left incomplete at the end", async () => {
    expect((await repl(["1", ".exit", "2"])).stdout).toBe("1\n");
    const r = await repl(["for i = 1, 2 do"]);
    expect(r.stderr).toBe("error: SyntaxError: stdin:1: 'end' expected near <eof>\n");
    expect(r.code).toBe(0);
  });

  it("refuses arguments and unknown flags", async () => {
    expect((await repl([], "script.lua")).code).toBe(2);
    const r = await repl([], "--isolation", "worker");
    expect(r.stderr).toMatch(/unknown flag '--isolation'/);
    expect(r.code).toBe(2);
  });

  it("works as a child process with stdin a pipe, and ends at the end of the input (Ctrl-D)", () => {
    const r = spawnSync(process.execPath, ["bin/luastore.js", "repl", ...CONFIG], { input: "x = 20\nx * 2\n", encoding: "utf8" });
    expect(r.stderr).toBe("");
    expect(r.stdout).toBe("40\n");
    expect(r.status).toBe(0);
  });
});
