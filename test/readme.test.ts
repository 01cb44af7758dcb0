/**
 * The README stays in step with the code: every command's --help is in it verbatim, and every flag
 * the CLI accepts, every handle method and every registry field the code names appears in it, and
 * the reverse (what the README lists exists in the code).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { FLAGS as CHECK_FLAGS } from "../src/cli/check.js";
import { FLAGS as EXPLAIN_FLAGS } from "../src/cli/explain.js";
import { COMMANDS } from "../src/cli/main.js";
import { FLAGS as REPL_FLAGS } from "../src/cli/repl.js";
import { FLAGS as RUN_FLAGS } from "../src/cli/run.js";
import { FLAGS as STORE_FLAGS } from "../src/cli/store.js";
import { FLAGS as TEST_FLAGS } from "../src/cli/test.js";
import { STORE_ACTIONS } from "../src/config/actions.js";

const readme = readFileSync("README.md", "utf8");
const FLAGS: Record<string, Record<string, unknown>> = { run: RUN_FLAGS, check: CHECK_FLAGS, explain: EXPLAIN_FLAGS, test: TEST_FLAGS, repl: REPL_FLAGS, store: STORE_FLAGS };

/** The text of the README section that starts with `heading` (up to the next heading of its level). */
function section(heading: string): string {
  const start = readme.indexOf(`\n${heading}\n`);
  expect(start, `README has a section "${heading}"`).toBeGreaterThan(-1);
  const level = heading.split(" ")[0]!;
  const rest = readme.slice(start + heading.length + 2);
  const next = rest.search(new RegExp(`^${level} `, "m"));
  return next === -1 ? rest : rest.slice(0, next);
}

describe("the README", () => {
  it("has one copy of each section", () => {
    const headings = readme.split("\n").filter((l) => /^#{2,3} /.test(l));
    const top = headings.filter((h) => h.startsWith("## "));
    expect(top.filter((h, i) => top.indexOf(h) !== i)).toEqual([]);
  });

  it("points at nothing outside the project", () => {
    expect(readme).not.toMatch(/\]\(\.\.\//);
  });

  it.each(Object.keys(COMMANDS))("holds `luastore %s --help` verbatim", (name) => {
    expect(readme).toContain(COMMANDS[name]!.help);
  });

  it.each(Object.keys(FLAGS))("%s: every flag it accepts is in its help, and every flag in its help is accepted", (name) => {
    const help = COMMANDS[name]!.help;
    const named = new Set([...help.matchAll(/^\s+(?:-\w, )?--([a-z][a-z-]*)/gm)].map((m) => m[1]!));
    expect([...named].sort()).toEqual([...Object.keys(FLAGS[name]!), "help"].sort());
  });

  it("names every handle method, and only those", () => {
    const source = readFileSync("src/lua/modules/store.ts", "utf8");
    const block = /const methods: Record<string, JSFunction> = \{([^}]*)\}/.exec(source)?.[1];
    expect(block).toBeDefined();
    const methods = [...block!.matchAll(/^\s+([a-z_]+)(?::|,)/gm)].map((m) => m[1]!).sort();
    expect(methods.length).toBeGreaterThan(10);
    const lua = section("## Lua API");
    const documented = [...new Set([...lua.matchAll(/`s:([a-z_]+)\(/g)].map((m) => m[1]!))].sort();
    expect(documented).toEqual(methods);
  });

  it("names every registry field in its example, and only fields the loader knows", () => {
    const kinds = readFileSync("src/registry/kinds.ts", "utf8");
    const fields = new Set([...kinds.matchAll(/key: "([a-z_]+)"/g)].map((m) => m[1]!));
    for (const f of ["version", "namespace", "entries", "name", "kind"]) fields.add(f);
    const registry = section("## Registry (`registry.yaml`)");
    const yaml = /```yaml\n([\s\S]*?)```/.exec(registry)?.[1] ?? "";
    // Fields as keys of the example, and fields its comments name as alternatives (`# or url_env: ...`).
    const keys = new Set([...yaml.matchAll(/^\s*(?:- )?([a-z_]+):(?!\/\/)/gm), ...yaml.matchAll(/\{ ?([a-z_]+):/g)].map((m) => m[1]!));
    const comments = yaml.split("\n").map((l) => l.split("#").slice(1).join("#")).join("\n");
    const mentioned = new Set([...comments.matchAll(/\b([a-z][a-z_]*)\b/g)].map((m) => m[1]!).filter((w) => fields.has(w)));
    expect([...fields].filter((f) => !keys.has(f) && !mentioned.has(f)).sort(), "fields missing from the README's registry example").toEqual([]);
    expect([...keys].filter((f) => !fields.has(f)).sort(), "README fields the loader does not know").toEqual([]);
  });

  it("lists every policy action", () => {
    const policies = section("## Policies (`policies/*.yaml`)");
    for (const action of STORE_ACTIONS) expect(policies).toContain(`\`${action}\``);
  });

  it("has a Configuration row for every environment variable the code reads", () => {
    const config = section("## Configuration");
    // Every variable src/ reads, and every LUASTORE_* variable the tests read (except LUASTORE_TEST_* and *UNSET* names, which tests set or keep unset themselves).
    const files = (dir: string): string[] =>
      readdirSync(dir, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile() && /\.(ts|sh)$/.test(e.name))
        .map((e) => join(e.parentPath, e.name));
    const read = (file: string) => [...readFileSync(file, "utf8").matchAll(/(?:process\.env|\benv)\.([A-Z][A-Z0-9_]+)|\$\{?(LUASTORE_[A-Z0-9_]+)|export (LUASTORE_[A-Z0-9_]+)/g)].map((m) => (m[1] ?? m[2] ?? m[3])!);
    const vars = new Set([
      ...files("src").flatMap(read),
      ...files("test").flatMap(read).filter((v) => v.startsWith("LUASTORE_") && !v.includes("UNSET") && !v.startsWith("LUASTORE_TEST_")),
      ...["CI"],
    ]);
    expect(vars.size).toBeGreaterThan(4);
    for (const v of vars) expect(config, v).toContain(`\`${v}\``);
  });
});
