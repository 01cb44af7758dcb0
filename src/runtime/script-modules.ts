/** The Lua modules a script may `require`: the built-in host modules and configured Lua sources. */
import { lua } from "fengari";
import { OptionsError } from "../errors.js";
import { runOf } from "../lua/internals.js";
import { builtinModules, type ModuleOpener } from "../lua/sandbox.js";

/** An opener for a configured Lua module: compiles its source in the run's state and calls it. */
function luaModuleOpener(name: string, source: string): ModuleOpener {
  const chunkName = `=${name}`;
  return (L) => {
    const status = runOf(L).compileCache.load(L, source, chunkName);
    if (status !== lua.LUA_OK) return lua.lua_error(L);
    lua.lua_call(L, 0, 1);
    return 1;
  };
}

/** The built-in modules plus configured Lua modules (name → source), validated. */
export function scriptModules(sources: Readonly<Record<string, string>> | undefined, where = "createHost"): Map<string, ModuleOpener> {
  const modules = new Map(builtinModules());
  for (const [name, source] of Object.entries(sources ?? {})) {
    if (modules.has(name)) throw new OptionsError(`${where}: module '${name}' would shadow a built-in module`);
    if (typeof source !== "string") throw new OptionsError(`${where}: module '${name}' must be Lua source text`);
    modules.set(name, luaModuleOpener(name, source));
  }
  return modules;
}
