/** `luastore check` and `explain` catch typos and what would fail at open; missing files are reported as missing. */
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
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

function project(registryLines: string[], policyLines: string[]): { registry: string; policies: string } {
  const dir = mkdtempSync(join(tmpdir(), "luastore-check-"));
  const registry = join(dir, "registry.yaml");
  writeFileSync(registry, ['version: "1.0"', "namespace: shop", "entries:", ...registryLines, ""].join("\n"));
  const policies = join(dir, "policies.yaml");
  writeFileSync(policies, ['version: "1.0"', "policies:", ...policyLines, ""].join("\n"));
  return { registry, policies };
}

const MEMORY = ["  - name: counters", "    kind: store.memory"];
const GOOD_POLICY = ["  - id: all", "    effect: allow", '    actions: ["store.get", "store.key.*"]', '    resources: ["shop:*"]'];
const TYPOS = ["  - id: typo", "    effect: allow", '    actions: ["store.key.gett"]', '    resources: ["shop:countres"]'];

describe("luastore check", () => {
  it("warns, with did-you-mean and the policy's position, about an unknown action and a resource that matches no store", async () => {
    const { registry, policies } = project(MEMORY, [...GOOD_POLICY, ...TYPOS]);
    const r = await cli("check", "--registry", registry, "--policies", policies);
    expect(r.code).toBe(0);
    expect(r.stderr.split("\n").filter(Boolean)).toEqual([
      `${policies}:7:5: warning: policy typo: action "store.key.gett" is checked by no store method (did you mean "store.key.get"?)`,
      `${policies}:7:5: warning: policy typo: resource "shop:countres" matches no store in the registry (did you mean "shop:counters"?)`,
    ]);
    expect(r.stdout).toMatch(/^ok: 1 store\(s\) .* \(2 warning\(s\)\)\n$/);
  });

  it("makes the warnings errors with --strict (exit 2)", async () => {
    const { registry, policies } = project(MEMORY, TYPOS);
    const r = await cli("check", "--registry", registry, "--policies", policies, "--strict");
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(": error: policy typo: action");
  });

  it("warns about a wildcard action that matches no action", async () => {
    const { registry, policies } = project(MEMORY, ["  - id: w", "    effect: allow", '    actions: ["stor.*"]', '    resources: ["shop:*"]']);
    const r = await cli("check", "--registry", registry, "--policies", policies, "--json");
    const doc = JSON.parse(r.stdout) as { ok: boolean; warnings: number; problems: { severity: string; message: string }[] };
    expect(doc).toMatchObject({ ok: true, warnings: 1, problems: [{ severity: "warning", message: expect.stringContaining('action "stor.*" matches no action') }] });
  });

  it("reports what would fail at open: an unset url_env, an unwritable SQLite directory", async () => {
    delete process.env.LUASTORE_CHECK_UNSET;
    const locked = mkdtempSync(join(tmpdir(), "luastore-locked-"));
    mkdirSync(join(locked, "ro"));
    chmodSync(join(locked, "ro"), 0o500);
    const { registry, policies } = project(
      [...MEMORY, "  - name: carts", "    kind: store.redis", "    url_env: LUASTORE_CHECK_UNSET", "  - name: orders", "    kind: store.sql", `    path: ${join(locked, "ro", "sub", "db.sqlite")}`],
      GOOD_POLICY,
    );
    const r = await cli("check", "--registry", registry, "--policies", policies, "--json");
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout) as { problems: { severity: string; line: number; column: number; message: string }[] };
    const problems = doc.problems.map((p) => [p.severity, p.line, p.column, p.message]);
    expect(problems[0]).toEqual(["error", 6, 5, "store shop:carts: environment variable LUASTORE_CHECK_UNSET (url_env) is not set"]);
    // root can write anywhere: the directory check only bites for other users.
    if (process.getuid?.() !== 0) expect(problems[1]).toEqual(["error", 9, 5, expect.stringMatching(/^store shop:orders: cannot create .*is not writable$/)]);
  });

  it("--connect reports an unreachable Redis", async () => {
    const { registry, policies } = project(
      ["  - name: carts", "    kind: store.redis", "    url: redis://127.0.0.1:1/0", "    connect_timeout: 200ms"],
      GOOD_POLICY,
    );
    expect((await cli("check", "--registry", registry, "--policies", policies)).code).toBe(0);
    const r = await cli("check", "--registry", registry, "--policies", policies, "--connect");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^${registry.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}:4:5: error: store shop:carts`));
  });

  it("reports a misspelt condition field as an error at the field, with did-you-mean", async () => {
    const { registry, policies } = project(MEMORY, [
      ...GOOD_POLICY,
      "    conditions:",
      "      - field: meta.kye",
      "        operator: starts_with",
      "        value: \"user:\"",
    ]);
    const r = await cli("check", "--registry", registry, "--policies", policies, "--json");
    expect(r.code).toBe(2);
    const doc = JSON.parse(r.stdout) as { ok: boolean; problems: { severity: string; line: number; column: number; message: string }[] };
    expect(doc.ok).toBe(false);
    expect(doc.problems).toEqual([
      expect.objectContaining({ severity: "error", line: 8, column: 16, message: expect.stringContaining('unknown field "meta.kye" (did you mean "meta.key"?)') }),
    ]);
  });

  it("reports a missing file as missing, without a :0:0 position", async () => {
    const r = await cli("check", "--registry", "nope.yaml", "--policies", "nope-dir");
    expect(r.code).toBe(2);
    expect(r.stderr.split("\n").slice(0, 2)).toEqual([
      expect.stringMatching(/^nope\.yaml: error: cannot read registry file: no such file/),
      expect.stringMatching(/^nope-dir: error: .*no such file/),
    ]);
    const run = await cli("run", "lua/examples/quickstart.lua", "--registry", "nope.yaml");
    expect(run.stderr).toMatch(/nope\.yaml: cannot read registry file: no such file/);
    expect(run.stderr).not.toContain(":0:0");
  });
});

describe("luastore explain", () => {
  it("says when the action is one no store method checks, with did-you-mean", async () => {
    const { policies } = project(MEMORY, ["  - id: typo-action", "    effect: allow", '    actions: ["store.key.gett"]', '    resources: ["shop:*"]']);
    const r = await cli("explain", "--policies", policies, "--actor", "a", "--action", "store.key.gett", "--resource", "shop:counters");
    expect(r.stdout.split("\n")[1]).toBe(
      '  note: no store method checks the action "store.key.gett" (did you mean "store.key.get"?); known: store.get, store.key.get, store.key.set, store.key.has, store.key.delete, store.key.list, store.info, store.flush',
    );
    const j = await cli("explain", "--policies", policies, "--actor", "a", "--action", "store.key.gett", "--resource", "shop:counters", "--json");
    expect(JSON.parse(j.stdout)).toMatchObject({ allowed: true, policyIds: ["typo-action"], knownAction: false, didYouMean: "store.key.get" });
    const known = await cli("explain", "--policies", policies, "--actor", "a", "--action", "store.key.get", "--resource", "shop:counters", "--json");
    expect(JSON.parse(known.stdout)).toMatchObject({ allowed: false, knownAction: true });
    expect(known.code).toBe(1);
  });
});
