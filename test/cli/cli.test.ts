/** The CLI through main(): defaults, flags, output and exit codes. */
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../src/cli/main.js";

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const code = await main(argv, { stdout: (t) => (stdout += t), stderr: (t) => (stderr += t) });
  return { code, stdout, stderr };
}

const dir = mkdtempSync(join(tmpdir(), "luastore-cli-"));
function file(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

describe("luastore run", () => {
  it("runs the quickstart example against the shipped registry and policies with no flags", async () => {
    const r = await cli("run", "lua/examples/quickstart.lua", "--isolation", "inline");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("hello from luastore");
    expect(r.stdout).toContain("storing a function:\tnil\tInvalid\tvalue: functions cannot be stored");
  });

  it("exits 1 with the error kind, message and traceback on stderr when the script fails", async () => {
    const r = await cli("run", file("fail.lua", `local function f() error("boom") end\nf()\n`), "--isolation", "inline");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^error: RuntimeError: fail\.lua:1: boom\nstack traceback:/);
  });

  it("applies --max-instructions and --timeout", async () => {
    const loop = file("loop.lua", "while true do end");
    const a = await cli("run", loop, "--max-instructions", "10000", "--isolation", "inline");
    expect([a.code, a.stderr]).toEqual([1, expect.stringContaining("InstructionLimit")]);
    const b = await cli("run", loop, "--max-instructions", "1000000000000", "--timeout", "0.2", "--isolation", "inline");
    expect([b.code, b.stderr]).toEqual([1, expect.stringContaining("Timeout")]);
  });

  it("applies --max-call-bytes: a store call over it answers Invalid", async () => {
    const script = file(
      "wide.lua",
      `local s = assert(require("store").get("app:cache"))
       local ok, err = s:set("cli:wide", string.rep("w", 5000))
       print(ok, err and err:kind())
       s:delete("cli:wide")`,
    );
    const capped = await cli("run", script, "--max-call-bytes", "2048", "--isolation", "inline");
    expect([capped.code, capped.stdout]).toEqual([0, "nil\tInvalid\n"]);
    const roomy = await cli("run", script, "--isolation", "inline");
    expect([roomy.code, roomy.stdout]).toEqual([0, "true\tnil\n"]);
  });

  it("runs as --actor with --meta, so policies apply", async () => {
    const script = file("tenant.lua", `local s = require("store").get("app:cache")
      print(s:set("acme:x", 1), select(2, s:set("other:x", 1)):kind())`);
    const r = await cli("run", script, "--actor", "tenant:acme", "--meta", "tenant=acme", "--isolation", "inline");
    expect(r.stdout).toBe("true\tPermissionDenied\n");
  });

  it("prints statistics with --stats and writes the audit trail with --audit", async () => {
    const audit = join(dir, "audit.jsonl");
    const r = await cli("run", file("ok.lua", `require("store").get("app:cache"):set("k", 1)`), "--stats", "--audit", audit, "--isolation", "inline");
    expect(r.code).toBe(0);
    const stats = JSON.parse(r.stderr) as { run: { storeOps: number }; stores: { id: string; sets: number }[] };
    expect(stats.run.storeOps).toBe(2);
    expect(stats.stores.find((s) => s.id === "app:cache")?.sets).toBe(1);
    const lines = readFileSync(audit, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { action: string });
    expect(lines.map((l) => l.action)).toEqual(["store.get", "store.key.set"]);
  });

  it.each([
    [["run"], /exactly one script file/],
    [["run", "a.lua", "b.lua"], /exactly one script file/],
    [["run", "x.lua", "--bogus"], /unknown flag '--bogus'/],
    [["run", "x.lua", "--timeout", "soon"], /--timeout' needs a number/],
    [["run", "x.lua", "--timeout"], /needs a value/],
    [["run", "x.lua", "--max-instructions", "1.5"], /whole number/],
    [["run", "x.lua", "--meta", "novalue"], /KEY=VALUE/],
    [["run", "does-not-exist.lua"], /^error: no such script: does-not-exist.lua/],
  ])("exits 2 on bad usage: %j", async (argv, message) => {
    const r = await cli(...(argv as string[]));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  });

  it("exits 2 with file:line:column on a bad registry or policy", async () => {
    const registry = file("bad-registry.yaml", `version: "1.0"\nnamespace: app\nentries:\n  - name: cache\n    kind: store.nope\n`);
    const r = await cli("run", "lua/examples/quickstart.lua", "--registry", registry);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${registry}:5:11:`);
    const policies = file("bad-policy.yaml", `version: "1.0"\npolicies:\n  - id: x\n    effect: maybe\n    actions: ["a"]\n    resources: ["r"]\n`);
    const p = await cli("run", "lua/examples/quickstart.lua", "--policies", policies);
    expect(p.code).toBe(2);
    expect(p.stderr).toContain(`${policies}:4:13:`);
  });
});

describe("luastore check", () => {
  it("exits 0 for the shipped registry and policies", async () => {
    const r = await cli("check");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^ok: \d+ store\(s\) in registry\.yaml, \d+ policies in policies\n$/);
  });

  it("prints every problem of both files and exits 2", async () => {
    const registry = file("two.yaml", `version: "1.0"\nnamespace: app\nentries:\n  - name: a\n    kind: store.memory\n    max_size: -1\n    pool: { max: 0 }\n`);
    const policies = file("p.yaml", `version: "1.0"\npolicies:\n  - id: x\n    effect: allow\n    actions: []\n    resources: ["r"]\n`);
    const r = await cli("check", "--registry", registry, "--policies", policies);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${registry}:6:15:`);
    expect(r.stderr).toContain(`${registry}:7:18:`);
    expect(r.stderr).toContain(`${policies}:5:14:`);
    expect(r.stderr).toMatch(/\n3 error\(s\), 0 warning\(s\)\n$/);
  });
});

describe("luastore explain", () => {
  it("prints allow and the deciding policies, exit 0", async () => {
    const r = await cli("explain", "--actor", "tenant:acme", "--meta", "tenant=acme", "--action", "store.key.set", "--resource", "app:cache", "--key", "acme:x");
    expect(r.code).toBe(0);
    expect(r.stdout.split("\n")[0]).toBe("allow (decided by: tenants-own-keys)");
  });

  it("prints deny, exit 1 (default deny and deny by policy)", async () => {
    const a = await cli("explain", "--actor", "tenant:acme", "--meta", "tenant=acme", "--action", "store.key.set", "--resource", "app:cache", "--key", "other:x");
    expect(a.code).toBe(1);
    expect(a.stdout.split("\n")[0]).toBe("deny (no policy matched: default deny)");
    const b = await cli("explain", "--actor", "tenant:acme", "--meta", "tenant=acme", "--action", "store.key.get", "--resource", "app:cache", "--key", "_sys:x");
    expect(b.code).toBe(1);
    expect(b.stdout.split("\n")[0]).toBe("deny (decided by: reserved-keys)");
  });

  it("exits 2 without --actor or --action", async () => {
    expect((await cli("explain", "--action", "store.get", "--resource", "app:cache")).code).toBe(2);
    expect((await cli("explain", "--actor", "x", "--resource", "app:cache")).code).toBe(2);
  });
});

describe("luastore", () => {
  it("prints usage and exits 2 without a command, 0 for help", async () => {
    expect((await cli()).code).toBe(2);
    expect((await cli("help")).code).toBe(0);
    expect((await cli("frobnicate")).stderr).toMatch(/unknown command 'frobnicate'/);
  });
});
