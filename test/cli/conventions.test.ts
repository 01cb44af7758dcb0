/** CLI conventions: help per command, --version, did-you-mean, `run -`, --arg/--args, --json, a closed pipe. */
import { spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { COMMANDS, main } from "../../src/cli/main.js";

async function cli(argv: string[], stdin?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, {
    stdout: (t) => (stdout += t),
    stderr: (t) => (stderr += t),
    ...(stdin !== undefined ? { stdin: async () => new TextEncoder().encode(stdin) } : {}),
  });
  return { code, stdout, stderr };
}

const INLINE = ["--isolation", "inline"];
const dir = mkdtempSync(join(tmpdir(), "luastore-conv-"));

describe("help and version", () => {
  it.each(Object.keys(COMMANDS))("%s --help and -h print the command's help on stdout and exit 0", async (name) => {
    for (const flag of ["--help", "-h"]) {
      const r = await cli([name, flag]);
      expect(r.code).toBe(0);
      expect(r.stderr).toBe("");
      expect(r.stdout).toMatch(new RegExp(`^usage: luastore ${name}\\b`));
      expect(r.stdout).toContain("-h, --help");
    }
    expect((await cli(["help", name])).stdout).toBe((await cli([name, "--help"])).stdout);
  });

  it("--version and -v print the package version", async () => {
    const { version } = JSON.parse(readFileSync("package.json", "utf8")) as { version: string };
    expect(await cli(["--version"])).toEqual({ code: 0, stdout: `${version}\n`, stderr: "" });
    expect((await cli(["-v"])).stdout).toBe(`${version}\n`);
  });
});

describe("did you mean", () => {
  it("suggests the closest command", async () => {
    const r = await cli(["rnu", "x.lua"]);
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n")[0]).toBe("unknown command 'rnu' (did you mean 'run'?)");
  });

  it("suggests the closest flag, and the closest choice", async () => {
    const r = await cli(["run", "x.lua", "--registy", "r.yaml"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^error: unknown flag '--registy' \(did you mean '--registry'\?\)/);
    const c = await cli(["run", "x.lua", "--isolation", "inlin"]);
    expect(c.stderr).toMatch(/got 'inlin' \(did you mean 'inline'\?\)/);
  });
});

describe("luastore run", () => {
  it("reads the script from stdin with -", async () => {
    const r = await cli(["run", "-", ...INLINE], 'print("from stdin")');
    expect(r).toEqual({ code: 0, stdout: "from stdin\n", stderr: "" });
  });

  it("names a stdin script's errors =stdin", async () => {
    const r = await cli(["run", "-", ...INLINE], 'error("boom")');
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: RuntimeError: stdin:1: boom/);
  });

  it("passes --arg values (strings, in order) and --args JSON elements to the chunk's ...", async () => {
    const script = `print(select("#", ...), ...) local t = select(2, ...) if type(t) == "table" then print(t.x[2], math.type(select(1, ...))) end`;
    expect((await cli(["run", "-", ...INLINE, "--arg", "a", "--arg", "b c"], script)).stdout).toBe("2\ta\tb c\n");
    const j = await cli(["run", "-", ...INLINE, "--args", '[1, {"x": [10, 20]}]'], script);
    expect(j.stdout).toMatch(/^2\t1\ttable: [^\n]+\n20\tinteger\n$/);
  });

  it("refuses --args that is not a JSON array, and --arg with --args", async () => {
    expect((await cli(["run", "-", "--args", "{}"], "")).stderr).toMatch(/--args must be a JSON array/);
    expect((await cli(["run", "-", "--args", "[1"], "")).stderr).toMatch(/--args: not valid JSON/);
    expect((await cli(["run", "-", "--args", "[1]", "--arg", "x"], "")).code).toBe(2);
  });

  it("--json prints one document with the values, the output, the error and the stats", async () => {
    const ok = await cli(["run", "-", ...INLINE, "--json", "--arg", "x"], 'print("hi") return 1, "two", { a = true }, ...');
    expect(ok.code).toBe(0);
    expect(ok.stdout.endsWith("\n") && ok.stdout.split("\n").length).toBe(2);
    expect(JSON.parse(ok.stdout)).toMatchObject({ ok: true, values: [1, "two", { a: true }, "x"], output: "hi\n", stats: { storeOps: 0 } });
    const bad = await cli(["run", "-", ...INLINE, "--json"], 'error("boom")');
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout)).toMatchObject({ ok: false, error: { kind: "RuntimeError", message: expect.stringContaining("boom") } });
  });
});

describe("luastore test --json", () => {
  it("prints one document with every file and test", async () => {
    const file = join(dir, "one_test.lua");
    writeFileSync(file, `local test = require("test")\ntest.it("passes", function() end)\ntest.it("fails", function() test.eq(1, 2) end)\n`);
    const r = await cli(["test", file, "--json"]);
    expect(r.code).toBe(1);
    const doc = JSON.parse(r.stdout) as { passed: number; failed: number; files: { tests: { name: string; status: string; failure?: { location?: { line: number } } }[] }[] };
    expect(doc).toMatchObject({ ok: false, passed: 1, failed: 1, skipped: 0 });
    expect(doc.files[0]!.tests.map((t) => [t.name.replace(/^.* > /, ""), t.status])).toEqual([["passes", "passed"], ["fails", "failed"]]);
    expect(doc.files[0]!.tests[1]!.failure?.location?.line).toBe(3);
  });
});

describe("the luastore binary", () => {
  it("ends quietly, with status 0, when the reader of its output goes away", async () => {
    const script = join(dir, "flood.lua");
    writeFileSync(script, `for i = 1, 200000 do print(i, string.rep("x", 100)) end`);
    const child = spawn(process.execPath, ["bin/luastore.js", "run", script, "--isolation", "inline", "--max-output", "1000000000", "--timeout", "600"], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    // Read the first chunk, then close the pipe as `head -1` does.
    await new Promise<void>((resolve) => child.stdout.once("data", () => resolve()));
    child.stdout.destroy();
    const code = await new Promise<number | null>((resolve) => child.on("exit", (c) => resolve(c)));
    expect(stderr).toBe("");
    expect(code).toBe(0);
  });

  it("runs a script piped to run -", () => {
    const r = spawnSync(process.execPath, ["bin/luastore.js", "run", "-", "--isolation", "inline"], { input: 'print(1 + 1)', encoding: "utf8" });
    expect([r.status, r.stdout, r.stderr]).toEqual([0, "2\n", ""]);
  });
});
