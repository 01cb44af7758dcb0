/** The LuaLS annotations in lua/types/ are valid Lua and name exactly the functions the modules have. */
import { readdirSync, readFileSync } from "node:fs";
import { lauxlib, lua } from "fengari";
import { afterEach, describe, expect, it } from "vitest";
import { METHOD_PARAMS } from "../../src/lua/modules/store.js";
import { luaProject, type LuaProject } from "./project.js";

const TYPES_DIR = "lua/types";
const typeFiles = readdirSync(TYPES_DIR).filter((f) => f.endsWith(".lua"));

/** `owner → function names` declared in the annotation files (`function test.eq(`, `function Store:get(`). */
function annotated(): Map<string, string[]> {
  const owners = new Map<string, string[]>();
  for (const file of typeFiles) {
    for (const m of readFileSync(`${TYPES_DIR}/${file}`, "utf8").matchAll(/^function ([\w.]+)[.:](\w+)\(/gm)) {
      const list = owners.get(m[1]!) ?? [];
      list.push(m[2]!);
      owners.set(m[1]!, list);
    }
  }
  for (const list of owners.values()) list.sort();
  return owners;
}

let project: LuaProject | undefined;
afterEach(() => project?.remove());

describe("lua/types", () => {
  it("ships annotations for store, errors, time and test", () => {
    expect(typeFiles.sort()).toEqual(["errors.lua", "store.lua", "test.lua", "time.lua"]);
  });

  it.each(typeFiles)("%s compiles as Lua 5.3", (file) => {
    const L = lauxlib.luaL_newstate();
    const source = readFileSync(`${TYPES_DIR}/${file}`);
    expect(lauxlib.luaL_loadbufferx(L, source, source.length, file, "t")).toBe(lua.LUA_OK);
  });

  it("name every function of the modules, and nothing they lack", async () => {
    const types = annotated();
    const storeMethods = types.get("Store") ?? [];
    project = luaProject({
      "keys_test.lua": `
        local test = require("test")
        local function functions(t)
          local out = {}
          for k, v in pairs(t) do if type(v) == "function" then out[#out + 1] = k end end
          table.sort(out)
          return table.concat(out, ",")
        end
        test.it("lists", function()
          print("test=" .. functions(test))
          print("test.clock=" .. functions(test.clock))
          print("errors=" .. functions(errors))
          print("time=" .. functions(require("time")))
          print("store=" .. functions(require("store")))
          local s = assert(require("store").get("app:cache"))
          local missing = {}
          for name in ("${storeMethods.join(" ")}"):gmatch("%S+") do
            if type(s[name]) ~= "function" then missing[#missing + 1] = name end
          end
          print("missing Store methods=" .. table.concat(missing, ","))
        end)
      `,
    });
    const result = await project.runFile();
    expect(result.tests[0]?.status).toBe("passed");
    const runtime = Object.fromEntries(
      result.tests[0]!.output
        .trim()
        .split("\n")
        .map((line) => line.split("=") as [string, string]),
    );
    expect(runtime).toEqual({
      test: (types.get("test") ?? []).join(","),
      "test.clock": (types.get("test.clock") ?? []).join(","),
      errors: (types.get("errors") ?? []).join(","),
      time: (types.get("time") ?? []).join(","),
      store: (types.get("store") ?? []).join(","),
      "missing Store methods": "",
    });
    // Every handle method the module defines (METHOD_PARAMS has a row for each, see store-ops.test.ts).
    expect(storeMethods).toEqual(Object.keys(METHOD_PARAMS).sort());
  });
});
