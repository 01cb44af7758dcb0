/**
 * The published package as a consumer gets it: `npm pack`, the tarball installed into a fresh
 * project (offline: its dependencies are links to this checkout's node_modules), and a small program
 * compiled against it under `strict` with `skipLibCheck: false`. dist/ must be built (npm test does).
 */
import { execFileSync, type ExecFileSyncOptions } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";

const root = resolve(import.meta.dirname, "../..");
const modules = join(root, "node_modules");
const npm = process.platform === "win32" ? "npm.cmd" : "npm";
let project = "";
let packedFiles: string[] = [];

function run(cmd: string, args: string[], options: ExecFileSyncOptions = {}): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: "pipe", ...options }) as string;
}

/** Links every package of this checkout's node_modules into `dir`, so npm finds luastore's dependencies offline. */
function linkModules(dir: string, only?: string[]): void {
  for (const name of only ?? readdirSync(modules).filter((n) => !n.startsWith("."))) {
    if (name.startsWith("@") && !name.includes("/")) {
      for (const inner of readdirSync(join(modules, name))) linkModules(dir, [`${name}/${inner}`]);
      continue;
    }
    mkdirSync(join(dir, "node_modules", name, ".."), { recursive: true });
    try {
      symlinkSync(join(modules, name), join(dir, "node_modules", name), "dir");
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    }
  }
}

function tsc(file: string): { code: number; output: string } {
  try {
    return { code: 0, output: run(process.execPath, [join(modules, "typescript/bin/tsc"), "-p", `tsconfig.${file}.json`], { cwd: project }) };
  } catch (e) {
    const err = e as { status: number; stdout: string; stderr: string };
    return { code: err.status, output: err.stdout + err.stderr };
  }
}

function tsconfig(name: string, files = [`${name}.ts`]): void {
  writeFileSync(
    join(project, `tsconfig.${name}.json`),
    JSON.stringify({
      compilerOptions: {
        strict: true,
        skipLibCheck: false,
        module: "NodeNext",
        moduleResolution: "NodeNext",
        target: "ES2022",
        noEmit: true,
        types: ["node"],
      },
      files,
    }),
  );
}

beforeAll(() => {
  const work = mkdtempSync(join(tmpdir(), "luastore-pack-"));
  // --ignore-scripts: `prepare` would rebuild dist/ under the other test files' feet.
  const packed = JSON.parse(run(npm, ["pack", "--json", "--ignore-scripts", "--pack-destination", work], { cwd: root })) as {
    filename: string;
    files: { path: string }[];
  }[];
  packedFiles = packed[0]!.files.map((f) => f.path);
  project = join(work, "consumer");
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), JSON.stringify({ name: "consumer", version: "1.0.0", private: true, type: "module" }));
  linkModules(project);
  run(npm, ["install", "--offline", "--no-audit", "--no-fund", "--ignore-scripts", join(work, packed[0]!.filename)], { cwd: project });
  // npm prunes the links luastore does not depend on; the consumer's own tools come back.
  linkModules(project, ["typescript", "@types/node"]);
}, 120_000);

describe("the packed package's types", () => {
  it("compile in a strict consumer with skipLibCheck false, without vitest installed", () => {
    writeFileSync(
      join(project, "host.ts"),
      `import { createHost, HostStore, RegistryError, ErrorKind, ManualClock, type RunResult, type RegistryDocument, type PolicyDocument } from "luastore";
const registry: RegistryDocument = { version: "1.0", namespace: "app", entries: [{ name: "cache", kind: "store.memory" }] } as RegistryDocument;
const policies: PolicyDocument = { version: "1.0", policies: [] };
const host = createHost({ registry, policies, isolation: "inline", clock: new ManualClock(0) });
const result: RunResult = await host.run("return ...", { actor: { id: "service:x", meta: {} }, args: [1] });
if (!result.ok) console.log(result.error?.kind === ErrorKind.TIMEOUT);
const cache: HostStore = host.store("app:cache");
await cache.set("k", "v", { ttl: 60 });
console.log(await cache.get("k"), RegistryError.name);
await host.close();
`,
    );
    // bad.ts, compiled alongside, proves the check is not vacuous: its error, and only its error, is reported.
    writeFileSync(join(project, "bad.ts"), `import { createHost } from "luastore";\ncreateHost({ isolation: "threads" });\n`);
    tsconfig("host", ["host.ts", "bad.ts"]);
    const r = tsc("host");
    expect(r.output.trim().split("\n")).toEqual([expect.stringMatching(/^bad\.ts\(2,\d+\): error TS2322: /)]);
    expect(r.code).not.toBe(0);
  }, 120_000);

  it("of luastore/testing compile once vitest is installed", () => {
    linkModules(project, ["vitest"]);
    writeFileSync(
      join(project, "lua.ts"),
      `import { defineLuaTests, type LuaTestsOptions } from "luastore/testing";
const options: LuaTestsOptions = { registry: "registry.yaml", policies: "policies", timeout: 1000 };
await defineLuaTests("lua/", options);
`,
    );
    tsconfig("lua");
    const r = tsc("lua");
    expect(r.output).toBe("");
    expect(r.code).toBe(0);
  }, 120_000);
});

describe("the packed package", () => {
  it("ships a LICENSE, no source maps without their sources, and says where it lives", () => {
    expect(packedFiles).toContain("LICENSE");
    expect(packedFiles).toContain("dist/lua/fengari.d.ts");
    const maps = packedFiles.filter((f) => f.endsWith(".map"));
    const sources = packedFiles.filter((f) => f.startsWith("src/") && f.endsWith(".ts"));
    expect(maps.length === 0 || sources.length > 0, `${maps.length} source maps, ${sources.length} sources`).toBe(true);
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as Record<string, unknown>;
    expect(pkg).toMatchObject({
      license: "MIT",
      repository: { type: "git", url: expect.stringMatching(/^git\+https:\/\//) },
      homepage: expect.stringMatching(/^https:\/\//),
      bugs: { url: expect.stringMatching(/^https:\/\//) },
      allowScripts: { "better-sqlite3": true },
    });
  });
});
