import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, test } from "vitest";
import { PolicyError } from "../../src/errors.js";
import { loadPolicies } from "../../src/policy/index.js";

const ACTOR = { id: "tenant:t1", meta: { tenant: "t1" } };
const policyFile = (id: string, effect = "allow") =>
  ['version: "1.0"', "policies:", `  - id: ${id}`, `    effect: ${effect}`, "    actions: [store.get]", "    resources: [app:cache]", ""].join("\n");

const root = mkdtempSync(join(tmpdir(), "luastore-policy-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("loadPolicies", () => {
  test("a directory loads every .yaml and .yml file in name order, not recursively", () => {
    const dir = join(root, "dir");
    mkdirSync(join(dir, "nested.yaml"), { recursive: true });
    writeFileSync(join(dir, "b.yaml"), policyFile("from-b"));
    writeFileSync(join(dir, "a.yml"), policyFile("from-a"));
    writeFileSync(join(dir, "notes.txt"), "not: a policy");
    writeFileSync(join(dir, "nested.yaml", "c.yaml"), policyFile("from-nested"));
    const engine = loadPolicies(dir);
    expect(engine.size).toBe(2);
    expect(engine.decide(ACTOR, "store.get", "app:cache").policyIds).toEqual(["from-a", "from-b"]);
  });

  test("a file path loads that file", () => {
    const file = join(root, "single.yaml");
    writeFileSync(file, policyFile("single", "deny"));
    expect(loadPolicies(file).decide(ACTOR, "store.get", "app:cache")).toEqual({ allowed: false, policyIds: ["single"] });
  });

  test("a missing directory is a PolicyError at line 0", () => {
    const missing = join(root, "missing");
    expect(() => loadPolicies(missing)).toThrow(PolicyError);
    try {
      loadPolicies(missing);
    } catch (error) {
      expect(error).toMatchObject({ code: "POLICY_INVALID", problems: [{ file: missing, line: 0, column: 0 }] });
    }
  });

  test("an invalid file refuses the whole directory, reporting the file's path", () => {
    const dir = join(root, "bad");
    mkdirSync(dir);
    writeFileSync(join(dir, "a.yaml"), policyFile("good"));
    writeFileSync(join(dir, "b.yaml"), policyFile("bad", "maybe"));
    try {
      loadPolicies(dir);
      expect.unreachable();
    } catch (error) {
      expect(error).toMatchObject({ code: "POLICY_INVALID", problems: [{ file: join(dir, "b.yaml"), line: 4, column: 13 }] });
    }
  });

  test("an empty directory loads no policies, so everything is denied", () => {
    const dir = join(root, "empty");
    mkdirSync(dir);
    const engine = loadPolicies(dir);
    expect(engine.size).toBe(0);
    expect(engine.decide(ACTOR, "store.get", "app:cache")).toEqual({ allowed: false, policyIds: [] });
  });

  test("parsed documents load without touching the disk", () => {
    const engine = loadPolicies({ version: "1.0", policies: [{ id: "obj", effect: "allow", actions: ["store.get"], resources: ["app:*"] }] });
    expect(engine.decide(ACTOR, "store.get", "app:cache").policyIds).toEqual(["obj"]);
  });
});
