/**
 * `luastore repl`: a Lua prompt on the sandbox, with `store` and the other modules, against the
 * registry and policies as `luastore run` loads them.
 *
 * Every evaluation is a run of its own (inline isolation, the run's limits, a fresh sandbox), so a
 * line that spins is stopped like a script. What persists between lines is what users expect of a
 * REPL and a run can carry: the stores (one host for the session) and global variables whose values
 * are data (nil, booleans, numbers, strings, tables of those), kept between runs as MessagePack like
 * store values and set again before the next line. Functions and other values that are not data
 * live as long as their line; the REPL says so when a line leaves one in a global. `local`s end with
 * their line, as in lua.c.
 *
 * Input as lua.c reads it: a line is first tried as `return <line>` (so `1 + 1` prints 2), then as
 * statements; a chunk whose syntax error is at `<eof>` is incomplete and the next line continues it.
 */
import { createInterface } from "node:readline";
import { lauxlib, lua, to_luastring, type lua_State } from "fengari";
import { bytesFromByteString, quoteByteString } from "../bytes.js";
import { CodecError } from "../codec/codec-error.js";
import { encodeFromLua, pushMsgpack } from "../codec/lua-msgpack.js";
import type { Host } from "../host.js";
import { createHost } from "../host.js";
import type { ModuleOpener } from "../lua/sandbox.js";
import { handleOrigin } from "../lua/modules/store.js";
import { toErrorData } from "../lua/modules/errors.js";
import { luaStringToJs, pushJsString } from "../lua/strings.js";
import type { Actor } from "../policy/types.js";
import { parseArgs, UsageError, type FlagSpec } from "./args.js";
import { ACTOR_FLAGS, actorFrom, CONFIG_FLAGS, configPaths, hostReady, LIMIT_FLAGS, limitsFrom, processIO, reportConfigError, type CliIO } from "./common.js";
import { formatRunFailure } from "./run.js";

export const FLAGS: Record<string, FlagSpec> = {
  ...CONFIG_FLAGS,
  ...ACTOR_FLAGS,
  timeout: { kind: "number", min: 0.001 },
  "max-instructions": { kind: "number", min: 1, integer: true },
  "max-string": { kind: "number", min: 1, integer: true },
  "max-store-ops": { kind: "number", min: 0, integer: true },
  "max-output": { kind: "number", min: 0, integer: true },
  "max-call-bytes": { kind: "number", min: 1, integer: true },
  "max-handles": { kind: "number", min: 1, integer: true },
};

/** The limit flags of `run` that apply to an inline run (no worker heap to bound). */
const { "max-memory": _workerHeap, ...INLINE_LIMIT_FLAGS } = LIMIT_FLAGS;

const REPL_MODULE = "luastore:repl";
/** Each evaluation's main chunk: compiles the input with the session's globals, runs it, keeps the globals. */
const EVAL_CHUNK = `local repl, store = require("${REPL_MODULE}"), require("store")
local handles = {}
for name, id, prefix in repl.handles() do
  local h, err = store.get(id)
  if h and prefix ~= "" then h, err = h:namespace(prefix) end
  if h then handles[name] = h else repl.lost(name, err) end
end
return repl.finish(repl.chunk({ store = store, time = require("time") }, handles)(...))`;
const INPUT_CHUNK_NAME = "=stdin";
/** The largest a session's kept globals may be, all together, as MessagePack. */
const MAX_KEPT_BYTES = 16 << 20;

/** What the compile of an input says: ready to run (as an expression or as statements), incomplete, or a syntax error. */
type Compiled = { source: string } | { incomplete: true } | { error: string };

/** Compiles `source` in a bare state (nothing runs): the message when it does not compile. */
function syntaxError(source: string): string | undefined {
  const L = lauxlib.luaL_newstate();
  const bytes = to_luastring(source);
  if (lauxlib.luaL_loadbufferx(L, bytes, bytes.length, to_luastring(INPUT_CHUNK_NAME), to_luastring("t")) === lua.LUA_OK) return undefined;
  return luaStringToJs(lua.lua_tolstring(L, -1) ?? new Uint8Array());
}

/**
 * lua.c's reading of an input: `return <input>` when that compiles (an expression prints its
 * value), else the input as statements; a syntax error at `<eof>` means more lines are to come,
 * for statements (`for i = 1, 3 do`) and for an expression alike (`1 +`).
 */
export function compileInput(input: string): Compiled {
  if (syntaxError(`return ${input};`) === undefined) return { source: `return ${input};` };
  const error = syntaxError(input);
  if (error === undefined) return { source: input };
  if (error.endsWith("<eof>") || syntaxError(`return ${input}`)?.endsWith("<eof>")) return { incomplete: true };
  return { error };
}

/** A Lua string as Lua would quote it, control characters as decimal escapes. */
function quote(text: string): string {
  return `"${text.replace(/[\\"\x00-\x1f\x7f]/g, (c) => (c === "\\" ? "\\\\" : c === '"' ? '\\"' : c === "\n" ? "\\n" : c === "\t" ? "\\t" : `\\${c.charCodeAt(0)}`))}"`;
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_]*$/;
const MAX_ENTRIES = 50;
const MAX_DEPTH = 4;
/** Values one result may show in all: formatting runs outside the run's limits, so it is bounded here. */
const MAX_VALUES = 1000;

/**
 * The value at `idx` as Lua source would write it, read raw (no metamethod runs): tables as
 * constructors (nested at most {@link MAX_DEPTH} deep, {@link MAX_ENTRIES} entries each, at most
 * {@link MAX_VALUES} values in all, keys sorted), functions and other values by type.
 */
export function formatLuaValue(L: lua_State, idx: number, depth = 0, seen: unknown[] = [], budget = { left: MAX_VALUES }): string {
  if (--budget.left < 0) return "...";
  const type = lua.lua_type(L, idx);
  switch (type) {
    case lua.LUA_TNIL:
      return "nil";
    case lua.LUA_TBOOLEAN:
      return lua.lua_toboolean(L, idx) ? "true" : "false";
    case lua.LUA_TNUMBER: {
      lua.lua_pushvalue(L, idx);
      const text = luaStringToJs(lua.lua_tolstring(L, -1)!);
      lua.lua_pop(L, 1);
      return text;
    }
    case lua.LUA_TSTRING:
      return quote(luaStringToJs(lua.lua_tolstring(L, idx)!));
    case lua.LUA_TTABLE:
      break;
    case lua.LUA_TUSERDATA: {
      const origin = handleOrigin(L, idx);
      if (origin !== undefined) return `<store ${origin.storeId}${origin.prefix === "" ? "" : ` namespace ${quoteByteString(origin.prefix.slice(0, -1))}`}>`;
      const error = toErrorData(L, idx);
      if (error !== null) return `<error ${error.kind || '""'}: ${quote(error.message)}>`;
      return "<userdata>";
    }
    default:
      return `<${luaStringToJs(lua.lua_typename(L, type))}>`;
  }
  const table = lua.lua_topointer(L, idx);
  if (seen.includes(table)) return "<cycle>";
  if (depth >= MAX_DEPTH) return "{...}";
  if (!lua.lua_checkstack(L, 4)) return "{...}";
  const abs = lua.lua_absindex(L, idx);
  const inner = [...seen, table];
  const parts: string[] = [];
  const n = lua.lua_rawlen(L, abs);
  for (let i = 1; i <= n && parts.length < MAX_ENTRIES; i++) {
    lua.lua_rawgeti(L, abs, i);
    parts.push(formatLuaValue(L, -1, depth + 1, inner, budget));
    lua.lua_pop(L, 1);
  }
  if (n > MAX_ENTRIES) return `{ ${parts.join(", ")}, ... }`;
  // The other entries: key texts here, values in a scratch table by position, so that they can be
  // sorted by key and only the shown ones formatted.
  const keys: string[] = [];
  lua.lua_createtable(L, 0, 0);
  const values = lua.lua_gettop(L);
  lua.lua_pushnil(L);
  while (lua.lua_next(L, abs)) {
    if (keys.length >= MAX_VALUES) {
      // Enough to sort and show the first MAX_ENTRIES of; the rest are not read.
      lua.lua_pop(L, 2);
      break;
    }
    const isSequence = lua.lua_isinteger(L, -2) && lua.lua_tointeger(L, -2) >= 1 && lua.lua_tointeger(L, -2) <= n;
    if (!isSequence) {
      const keyType = lua.lua_type(L, -2);
      const name = keyType === lua.LUA_TSTRING ? luaStringToJs(lua.lua_tolstring(L, -2)!) : undefined;
      keys.push(name !== undefined && IDENTIFIER.test(name) ? name : `[${formatLuaValue(L, -2, MAX_DEPTH, inner, { left: 1 })}]`);
      lua.lua_pushvalue(L, -1);
      lua.lua_rawseti(L, values, keys.length);
    }
    lua.lua_pop(L, 1);
  }
  const order = keys.map((_, i) => i).sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : 0));
  for (const i of order) {
    if (parts.length >= MAX_ENTRIES) {
      parts.push("...");
      break;
    }
    lua.lua_rawgeti(L, values, i + 1);
    parts.push(`${keys[i]} = ${formatLuaValue(L, -1, depth + 1, inner, budget)}`);
    lua.lua_pop(L, 1);
  }
  lua.lua_pop(L, 1);
  return parts.length === 0 ? "{}" : `{ ${parts.join(", ")} }`;
}

/** The state one session keeps between its runs. */
class ReplSession {
  /** Global name → its value as MessagePack. */
  globals = new Map<string, Uint8Array>();
  /** Global name → the store (and namespace prefix, a byte string) of the handle it held, opened again in each run. */
  handles = new Map<string, { storeId: string; prefix: string }>();
  /** Handles that could not be opened again this time, with why. */
  lost: string[] = [];
  /** The input of the evaluation under way. */
  source = "";
  /** What the evaluation returned, formatted; undefined when it returned nothing. */
  result: string | undefined;
  /** Globals the last evaluation left that are not data (they end with it). */
  dropped: string[] = [];

  /** The `luastore:repl` module of one evaluation's run. */
  readonly opener: ModuleOpener = (L) => {
    lua.lua_createtable(L, 0, 2);
    lua.lua_pushcfunction(L, (L: lua_State) => this.#chunk(L));
    lua.lua_setfield(L, -2, to_luastring("chunk"));
    lua.lua_pushcfunction(L, (L: lua_State) => this.#finish(L));
    lua.lua_setfield(L, -2, to_luastring("finish"));
    lua.lua_pushcfunction(L, (L: lua_State) => {
      // A generic for's iterator: name, store id, prefix of each kept handle.
      const entries = [...this.handles];
      let i = 0;
      lua.lua_pushcfunction(L, (L: lua_State) => {
        const entry = entries[i++];
        if (entry === undefined) return 0;
        pushJsString(L, entry[0]);
        pushJsString(L, entry[1].storeId);
        // namespace(p) adds the ":" that ends every view's prefix.
        lua.lua_pushstring(L, bytesFromByteString(entry[1].prefix.slice(0, -1)));
        return 3;
      });
      return 1;
    });
    lua.lua_setfield(L, -2, to_luastring("handles"));
    lua.lua_pushcfunction(L, (L: lua_State) => {
      const name = luaStringToJs(lauxlib.luaL_checkstring(L, 1));
      const err = toErrorData(L, 2);
      this.lost.push(`${name} (${err ? `${err.kind}: ${err.message}` : "not opened"})`);
      return 0;
    });
    lua.lua_setfield(L, -2, to_luastring("lost"));
    return 1;
  };

  /** The session's environment for this run: a table of the kept globals over the sandbox's globals. */
  #env = 0;

  /** Compiles the input as a function whose _ENV is a table of the kept globals reading through to the sandbox's. */
  #chunk(L: lua_State): number {
    lauxlib.luaL_checktype(L, 1, lua.LUA_TTABLE);
    lauxlib.luaL_checktype(L, 2, lua.LUA_TTABLE);
    lua.lua_settop(L, 2);
    const bytes = to_luastring(this.source);
    if (lauxlib.luaL_loadbufferx(L, bytes, bytes.length, to_luastring(INPUT_CHUNK_NAME), to_luastring("t")) !== lua.LUA_OK) {
      return lua.lua_error(L);
    }
    lua.lua_createtable(L, 0, this.globals.size);
    for (const [name, value] of this.globals) {
      pushMsgpack(L, value);
      lua.lua_setfield(L, -2, to_luastring(name));
    }
    // The handles opened again for this run (argument 2).
    lua.lua_pushnil(L);
    while (lua.lua_next(L, 2)) {
      lua.lua_pushvalue(L, -2);
      lua.lua_insert(L, -2);
      lua.lua_rawset(L, -4);
    }
    // Kept globals, then the modules the REPL preloads (argument 1), then the sandbox's globals.
    lua.lua_createtable(L, 0, 1);
    lua.lua_pushvalue(L, 1);
    lua.lua_setfield(L, -2, to_luastring("__index"));
    lua.lua_setmetatable(L, -2);
    lua.lua_createtable(L, 0, 1);
    lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, lua.LUA_RIDX_GLOBALS);
    lua.lua_setfield(L, -2, to_luastring("__index"));
    lua.lua_setmetatable(L, 1);
    lua.lua_pushvalue(L, -1);
    this.#env = lauxlib.luaL_ref(L, lua.LUA_REGISTRYINDEX);
    // A main chunk's one upvalue is its _ENV.
    lua.lua_setupvalue(L, -2, 1);
    return 1;
  }

  /** Keeps the environment's data globals, formats the results, returns nothing. */
  #finish(L: lua_State): number {
    const n = lua.lua_gettop(L);
    const results: string[] = [];
    for (let i = 1; i <= n; i++) results.push(formatLuaValue(L, i));
    this.result = n > 0 ? results.join("\t") : undefined;
    lua.lua_rawgeti(L, lua.LUA_REGISTRYINDEX, this.#env);
    const env = lua.lua_gettop(L);
    const kept = new Map<string, Uint8Array>();
    const handles = new Map<string, { storeId: string; prefix: string }>();
    const dropped: string[] = [];
    let bytes = 0;
    lua.lua_pushnil(L);
    while (lua.lua_next(L, env)) {
      if (lua.lua_type(L, -2) === lua.LUA_TSTRING) {
        const name = luaStringToJs(lua.lua_tolstring(L, -2)!);
        const origin = lua.lua_type(L, -1) === lua.LUA_TUSERDATA ? handleOrigin(L, -1) : undefined;
        if (origin !== undefined) {
          handles.set(name, origin);
          lua.lua_pop(L, 1);
          continue;
        }
        try {
          const value = encodeFromLua(L, -1, MAX_KEPT_BYTES - bytes, name);
          bytes += value.length;
          kept.set(name, value);
        } catch (err) {
          if (!(err instanceof CodecError)) throw err;
          dropped.push(name);
        }
      }
      lua.lua_pop(L, 1);
    }
    this.globals = kept;
    this.handles = handles;
    this.dropped = dropped.sort();
    return 0;
  }
}

/** Reads input lines and evaluates each complete chunk; resolves when the input ends or `.exit` is read. */
export async function replCommand(argv: readonly string[], io: CliIO): Promise<number> {
  let host: Host;
  let actor: Actor;
  try {
    const args = parseArgs(argv, FLAGS);
    if (args.positionals.length > 0) throw new UsageError(`repl takes no arguments, got '${args.positionals[0]}'`);
    actor = actorFrom(args);
    const limits = limitsFrom(args, INLINE_LIMIT_FLAGS);
    // The REPL's module is host-side JavaScript: each evaluation runs inline.
    host = createHost({ ...configPaths(args), limits, isolation: "inline", sweepTimers: false, workers: 1 });
  } catch (err) {
    return reportConfigError(err, io);
  }
  const notReady = await hostReady(host, io);
  if (notReady !== undefined) return notReady;

  const input = io.input ?? process.stdin;
  const interactive = io.input === undefined && process.stdin.isTTY === true && io === processIO;
  const rl = createInterface({ input, ...(interactive ? { output: process.stdout, prompt: "> " } : { terminal: false }) });
  const session = new ReplSession();
  let buffer: string[] = [];
  const prompt = (): void => {
    if (!interactive) return;
    rl.setPrompt(buffer.length > 0 ? ">> " : "> ");
    rl.prompt();
  };
  if (interactive) {
    io.stdout("luastore repl: each input is a run of its own; data globals persist, functions do not. .exit or Ctrl-D to leave.\n");
    rl.on("SIGINT", () => {
      // As in lua.c and node: Ctrl-C drops the unfinished input; on an empty prompt it says how to leave.
      if (buffer.length === 0) io.stdout("\n(.exit or Ctrl-D to leave)\n");
      else io.stdout("\n");
      buffer = [];
      prompt();
    });
  }
  try {
    prompt();
    for await (const line of rl) {
      if (buffer.length === 0 && line.trim() === ".exit") break;
      buffer.push(line);
      const compiled = compileInput(buffer.join("\n"));
      if ("incomplete" in compiled) {
        prompt();
        continue;
      }
      buffer = [];
      if ("error" in compiled) {
        io.stderr(`error: SyntaxError: ${compiled.error}\n`);
      } else {
        await evaluate(host, session, compiled.source, actor, io);
      }
      prompt();
    }
    if (buffer.length > 0) io.stderr(`error: SyntaxError: ${syntaxError(buffer.join("\n")) ?? "incomplete input"}\n`);
  } finally {
    rl.close();
    await host.close();
  }
  if (interactive) io.stdout("\n");
  return 0;
}

async function evaluate(host: Host, session: ReplSession, source: string, actor: Actor, io: CliIO): Promise<void> {
  session.source = source;
  session.result = undefined;
  session.dropped = [];
  session.lost = [];
  const result = await host.run(EVAL_CHUNK, {
    actor,
    chunkName: "=luastore.repl",
    modules: new Map([[REPL_MODULE, session.opener]]),
    onOutput: io.stdout,
  });
  if (session.lost.length > 0) io.stderr(`note: store handle${session.lost.length === 1 ? "" : "s"} not opened again: ${session.lost.join(", ")}\n`);
  if (!result.ok && result.error) {
    io.stderr(formatRunFailure(result.error));
    return;
  }
  if (session.result !== undefined) io.stdout(`${session.result}\n`);
  if (session.dropped.length > 0) {
    io.stderr(`note: ${session.dropped.join(", ")} ${session.dropped.length === 1 ? "is not data: it does" : "are not data: they do"} not persist to the next input\n`);
  }
}
