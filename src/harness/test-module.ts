/**
 * The host side of the Lua `test` module for one test file. lua/harness/test.lua does the
 * structure, the assertions and the diff; the functions here are what it needs from the host:
 * the file's source, its virtual clock, its stores, actor switching, and a place to report.
 *
 * A harness run adds three kinds of modules to the host's: `test` (what scripts require),
 * `luastore:harness` (the driver the main chunk calls; the colon keeps it clear of any file
 * name) and the Lua files next to the test file, so `require("session_store")` loads
 * `session_store.lua` from the test's directory.
 */
import { readFileSync } from "node:fs";
import { lua, lauxlib, to_luastring, type JSFunction, type lua_State } from "fengari";
import { byteStringFromBytes } from "../bytes.js";
import type { ManualClock } from "../clock.js";
import type { Host } from "../host.js";
import { installLineHook } from "../lua/control.js";
import { runOf } from "../lua/internals.js";
import { toErrorData } from "../lua/modules/errors.js";
import type { ModuleOpener } from "../lua/sandbox.js";
import { luaStringToJs } from "../lua/strings.js";
import type { Actor, ActorPolicy, MetaValue } from "../policy/types.js";
import { LocalGateway } from "../runtime/local-gateway.js";
import type { RunResult } from "../runtime/run-types.js";
import type { CoverageCollector } from "./coverage.js";
import type { FileError, FileResult, HookName, SourceLocation, TestFailure, TestResult } from "./results.js";

/** The name of the driver module; the main chunk of a harness run calls it. */
export const HARNESS_MODULE = "luastore:harness";
/** The main chunk of a harness run. */
export const MAIN_CHUNK = `return require("${HARNESS_MODULE}")()`;
export const MAIN_CHUNK_NAME = "=luastore.main";

const IMPL_KEY = to_luastring("luastore.harness.impl");
const HOOKS: ReadonlySet<string> = new Set<HookName>(["before_all", "before_each", "after_each", "after_all"]);

let harnessSource: Uint8Array | undefined;
/** lua/harness/test.lua, read once (src/ and dist/ both sit one level below the package root). */
function harnessChunk(): Uint8Array {
  harnessSource ??= new Uint8Array(readFileSync(new URL("../../lua/harness/test.lua", import.meta.url)));
  return harnessSource;
}

/** A test as a listing run finds it (its body is not run). */
export interface ListedTest {
  path: string[];
  skip: boolean;
}

export interface FileSessionOptions {
  /** The test file's path as reports show it (also its chunk name). */
  file: string;
  source: Uint8Array;
  /** `run` runs the tests; `list` only loads the file and lists them. */
  mode: "run" | "list";
  host: Host;
  clock: ManualClock;
  /** Lua files next to the test file, by module name → { path on disk, name in reports }. */
  scriptModules: ReadonlyMap<string, { path: string; display: string }>;
  /** Runs only tests whose `file > describe > test` name matches. */
  filter?: RegExp;
  /** Asked before each test: true stops the file (--bail). */
  shouldStop?: () => boolean;
  onTestResult?: (result: TestResult) => void;
  /** Records line coverage of the test file and the modules it requires (--coverage). */
  coverage?: CoverageCollector;
}

interface RunningTest {
  path: string[];
  start: number;
  output: string[];
}

// A location prefix of a Lua error message: `chunk:line: `.
const LOCATION = /^([^\n]*?):(\d+): /;

/** What one test file's run records; the Lua side reports into it through host functions. */
export class FileSession {
  readonly file: string;
  readonly results: TestResult[] = [];
  readonly listed: ListedTest[] = [];
  error: FileError | undefined;
  readonly #options: FileSessionOptions;
  readonly #fileOutput: string[] = [];
  readonly #actors: ActorPolicy[] = [];
  /** Chunk names of files loaded in this run (the test file and its modules), for locations. */
  readonly #chunks = new Set<string>();
  #current: RunningTest | null = null;
  /** Paths of the script modules required so far, for FileResult.modules. */
  readonly #required = new Set<string>();
  /** The message of the last compile error, to tell a load failure caused by it. */
  #compileMessage: string | null = null;
  readonly #started = performance.now();

  constructor(options: FileSessionOptions) {
    this.file = options.file;
    this.#options = options;
    this.#chunks.add(options.file);
  }

  /** The modules a harness run adds to the host's. */
  modules(): Map<string, ModuleOpener> {
    const modules = new Map<string, ModuleOpener>();
    for (const [name, file] of this.#options.scriptModules) modules.set(name, this.#scriptOpener(file));
    modules.set("test", (L) => {
      this.#pushImpl(L);
      lua.lua_getfield(L, -1, "api");
      return 1;
    });
    modules.set(HARNESS_MODULE, (L) => {
      // The main chunk requires the driver first: the line hook is in place before any file under test loads.
      const coverage = this.#options.coverage;
      if (coverage !== undefined) installLineHook(L, (ar) => coverage.onLine(ar));
      this.#pushImpl(L);
      lua.lua_getfield(L, -1, "main");
      return 1;
    });
    return modules;
  }

  /** Where printed text goes: the running test, or the file. */
  print(text: string): void {
    (this.#current?.output ?? this.#fileOutput).push(text);
  }

  /** Accounts for a run that did not end normally (a limit, a timeout, a harness failure). */
  settle(result: RunResult): void {
    if (result.ok || result.error === undefined) return;
    const e = result.error;
    const kind = e.details ? `${e.kind} (the script raised kind ${e.details.kind})` : e.kind;
    const failure: FileError = { kind: "run", message: `${kind}: ${e.message}` };
    const traceback = this.#scriptFrames(e.traceback);
    if (traceback !== undefined) {
      // Where the script was when it was stopped: the innermost frame in one of its files.
      const location = this.#locate(traceback).location;
      if (location !== undefined) failure.location = location;
      failure.traceback = traceback;
    }
    if (this.#current !== null) {
      const { kind: _kind, ...rest } = failure;
      this.#record("failed", { ...rest, assertion: false });
    } else if (this.error === undefined) {
      this.error = failure;
    }
    // The selected tests the run never reached: skipped, and why.
    const reported = new Set(this.results.map((r) => r.path.join("\0")));
    for (const test of this.listed) {
      if (reported.has(test.path.join("\0"))) continue;
      this.#current = { path: [...test.path], start: performance.now(), output: [] };
      this.#record("skipped", undefined, test.skip ? undefined : `not run: the file's run was stopped by ${e.kind}`);
    }
  }

  result(): FileResult {
    const result: FileResult = {
      file: this.file,
      tests: this.results,
      durationMs: performance.now() - this.#started,
      output: this.#fileOutput.join(""),
    };
    if (this.error !== undefined) result.error = this.error;
    if (this.#required.size > 0) result.modules = [...this.#required];
    return result;
  }

  // ---- what the Lua side calls ---------------------------------------------------------------

  #hostFunctions(): Record<string, JSFunction> {
    const o = this.#options;
    return {
      load_file: (L) => {
        if (this.#load(L, o.source, this.file) !== lua.LUA_OK) {
          const message = luaStringToJs(lua.lua_tolstring(L, -1) ?? new Uint8Array());
          this.error = { kind: "compile", ...this.#locate(message) };
          lua.lua_pushnil(L);
        }
        return 1;
      },
      file_error: (L) => {
        const text = errorText(L, 1);
        const kind = text === this.#compileMessage ? "compile" : "load";
        this.error = { kind, ...this.#locate(text) };
        const traceback = kind === "load" ? this.#scriptFrames(optString(L, 2), this.error.location) : undefined;
        if (traceback !== undefined) this.error.traceback = traceback;
        return 0;
      },
      where: (L) => {
        lauxlib.luaL_where(L, lauxlib.luaL_checkinteger(L, 1));
        return 1;
      },
      traceback: (L) => {
        lauxlib.luaL_traceback(L, L, null, lauxlib.luaL_checkinteger(L, 1));
        return 1;
      },
      listing: (L) => {
        lua.lua_pushboolean(L, o.mode === "list");
        return 1;
      },
      listed: (L) => {
        this.listed.push({ skip: lua.lua_toboolean(L, 1), path: stringArgs(L, 2) });
        return 0;
      },
      selected: (L) => {
        const filter = o.filter;
        const ok = filter === undefined || filter.test([this.file, ...stringArgs(L, 1)].join(" > "));
        lua.lua_pushboolean(L, ok);
        return 1;
      },
      should_stop: (L) => {
        lua.lua_pushboolean(L, o.shouldStop?.() ?? false);
        return 1;
      },
      begin: (L) => {
        this.#current = { path: stringArgs(L, 1), start: performance.now(), output: [] };
        return 0;
      },
      finish: (L) => {
        if (this.#current === null) return lauxlib.luaL_error(L, "finish without begin");
        if (luaStringToJs(lauxlib.luaL_checkstring(L, 1)) === "passed") {
          this.#record("passed");
          return 0;
        }
        const { message, location } = this.#locate(errorText(L, 2));
        const failure: TestFailure = { message, assertion: lua.lua_toboolean(L, 3) };
        if (location !== undefined) failure.location = location;
        if (!failure.assertion) {
          const traceback = this.#scriptFrames(optString(L, 4), location);
          if (traceback !== undefined) failure.traceback = traceback;
        }
        const hook = optString(L, 5);
        if (hook !== undefined && HOOKS.has(hook)) failure.hook = hook as HookName;
        this.#record("failed", failure);
        return 0;
      },
      skip: (L) => {
        this.#current = { path: stringArgs(L, 1), start: performance.now(), output: [] };
        this.#record("skipped");
        return 0;
      },
      clock_now: (L) => {
        lua.lua_pushnumber(L, o.clock.now() / 1000);
        return 1;
      },
      clock_advance: (L) => {
        const seconds = lauxlib.luaL_checknumber(L, 1);
        if (!Number.isFinite(seconds) || seconds < 0) {
          return lauxlib.luaL_argerror(L, 1, `seconds must be a finite number >= 0, got ${String(seconds)}`);
        }
        o.clock.advance(seconds * 1000);
        return 0;
      },
      clock_set: (L) => {
        const seconds = lauxlib.luaL_checknumber(L, 1);
        if (!Number.isFinite(seconds)) return lauxlib.luaL_argerror(L, 1, `seconds must be a finite number, got ${String(seconds)}`);
        o.clock.set(seconds * 1000);
        return 0;
      },
      reset_stores: (L) => {
        // HostStore methods are async; a memory store clears at once, others when awaited.
        const cleared = Promise.all(o.host.registry.entries.map((e) => o.host.store(e.id).clear()));
        if (!lua.lua_isyieldable(L)) {
          return lauxlib.luaL_error(L, "reset_stores: cannot wait here (inside a metamethod or library callback)");
        }
        runOf(L).pending = { promise: cleared, push: () => 0 };
        return lua.lua_yield(L, 0);
      },
      push_actor: (L) => {
        const gateway = runOf(L).gateway;
        if (!(gateway instanceof LocalGateway)) return lauxlib.luaL_error(L, "test.as needs inline isolation");
        const actor: Actor = { id: byteStringFromBytes(lauxlib.luaL_checkstring(L, 1)), meta: readMeta(L, 2) };
        this.#actors.push(gateway.policy);
        gateway.setPolicy(o.host.policy.bind(actor));
        return 0;
      },
      pop_actor: (L) => {
        const gateway = runOf(L).gateway;
        const previous = this.#actors.pop();
        if (previous !== undefined && gateway instanceof LocalGateway) gateway.setPolicy(previous);
        return 0;
      },
    };
  }

  // ---- helpers -------------------------------------------------------------------------------

  #record(status: TestResult["status"], failure?: TestFailure, skipReason?: string): void {
    const current = this.#current!;
    this.#current = null;
    const result: TestResult = {
      file: this.file,
      path: current.path,
      status,
      durationMs: status === "skipped" ? 0 : performance.now() - current.start,
      output: current.output.join(""),
    };
    if (failure !== undefined) result.failure = failure;
    if (skipReason !== undefined) result.skipReason = skipReason;
    this.results.push(result);
    this.#options.onTestResult?.(result);
  }

  /** Compiles a file's source as a text chunk named after its path. */
  #load(L: lua_State, source: Uint8Array, display: string): number {
    this.#chunks.add(display);
    const status = lauxlib.luaL_loadbufferx(L, source, source.length, `@${display}`, "t");
    if (status !== lua.LUA_OK) this.#compileMessage = luaStringToJs(lua.lua_tolstring(L, -1) ?? new Uint8Array());
    else this.#options.coverage?.addChunk(L, display);
    return status;
  }

  #scriptOpener(file: { path: string; display: string }): ModuleOpener {
    return (L) => {
      // Before reading: a module that is missing or does not compile is still one the file depends on.
      this.#required.add(file.path);
      let source: Uint8Array;
      try {
        source = new Uint8Array(readFileSync(file.path));
      } catch (err) {
        return lauxlib.luaL_error(L, `cannot read ${file.display}: ${(err as NodeJS.ErrnoException).code ?? String(err)}`);
      }
      if (this.#load(L, source, file.display) !== lua.LUA_OK) return lua.lua_error(L);
      lua.lua_call(L, 0, 1);
      return 1;
    };
  }

  /** Pushes { api, main } of lua/harness/test.lua, loading it once per state. */
  #pushImpl(L: lua_State): void {
    if (lua.lua_getfield(L, lua.LUA_REGISTRYINDEX, IMPL_KEY) === lua.LUA_TTABLE) return;
    lua.lua_pop(L, 1);
    const chunk = harnessChunk();
    if (lauxlib.luaL_loadbufferx(L, chunk, chunk.length, "=luastore.test", "t") !== lua.LUA_OK) {
      throw new Error(`lua/harness/test.lua does not compile: ${luaStringToJs(lua.lua_tolstring(L, -1)!)}`);
    }
    lua.lua_createtable(L, 0, 24);
    lauxlib.luaL_setfuncs(L, this.#hostFunctions(), 0);
    lua.lua_call(L, 1, 1);
    lua.lua_pushvalue(L, -1);
    lua.lua_setfield(L, lua.LUA_REGISTRYINDEX, IMPL_KEY);
  }

  /** The chunk name a location prefix names, when it is a file of this run (fengari clips long names to "...tail"). */
  #chunkFile(name: string): string | undefined {
    if (this.#chunks.has(name)) return name;
    if (!name.startsWith("...")) return undefined;
    const tail = name.slice(3);
    for (const chunk of this.#chunks) if (chunk.endsWith(tail)) return chunk;
    return undefined;
  }

  /** Splits `file:line: message` into message and location, for files of this run. */
  #locate(text: string): { message: string; location?: SourceLocation } {
    const m = LOCATION.exec(text);
    const file = m ? this.#chunkFile(m[1]!) : undefined;
    if (m === null || file === undefined) return { message: text };
    return { message: text.slice(m[0].length), location: { file, line: Number(m[2]) } };
  }

  /**
   * The frames of a Lua traceback that are in files of this run (not the harness, not [C]);
   * undefined when that is only the line the failure already names.
   */
  #scriptFrames(traceback: string | undefined, location?: SourceLocation): string | undefined {
    if (!traceback) return undefined;
    const frames = traceback
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => {
        const m = /^([^\n]*?):\d+:/.exec(line);
        return m !== null && this.#chunkFile(m[1]!) !== undefined;
      });
    if (frames.length === 0) return undefined;
    if (frames.length === 1 && location && frames[0]!.startsWith(`${location.file}:${location.line}:`)) return undefined;
    return frames.join("\n");
  }
}

/** String arguments from `from` to the top. */
function stringArgs(L: lua_State, from: number): string[] {
  const out: string[] = [];
  for (let i = from, n = lua.lua_gettop(L); i <= n; i++) out.push(luaStringToJs(lauxlib.luaL_checkstring(L, i)));
  return out;
}

function optString(L: lua_State, idx: number): string | undefined {
  return lua.lua_type(L, idx) === lua.LUA_TSTRING ? luaStringToJs(lua.lua_tolstring(L, idx)!) : undefined;
}

/** A raised value as text, without running any metamethod. */
function errorText(L: lua_State, idx: number): string {
  const data = toErrorData(L, idx);
  if (data !== null) return data.kind ? `${data.kind}: ${data.message}` : data.message;
  const t = lua.lua_type(L, idx);
  if (t === lua.LUA_TSTRING) return luaStringToJs(lua.lua_tolstring(L, idx)!);
  if (t === lua.LUA_TNUMBER) {
    lua.lua_pushvalue(L, idx);
    const text = luaStringToJs(lua.lua_tolstring(L, -1)!);
    lua.lua_pop(L, 1);
    return text;
  }
  if (t === lua.LUA_TNIL || t === lua.LUA_TNONE) return "error raised with a nil value";
  return `(error object is a ${luaStringToJs(lua.lua_typename(L, t))} value)`;
}

/** An actor's meta from a Lua table: string values as byte strings, as Host.run converts them. */
function readMeta(L: lua_State, idx: number): Record<string, MetaValue> {
  const meta: Record<string, MetaValue> = {};
  if (lua.lua_type(L, idx) !== lua.LUA_TTABLE) return meta;
  lua.lua_pushnil(L);
  while (lua.lua_next(L, idx)) {
    const t = lua.lua_type(L, -1);
    if (lua.lua_type(L, -2) === lua.LUA_TSTRING) {
      const key = luaStringToJs(lua.lua_tolstring(L, -2)!);
      if (t === lua.LUA_TSTRING) meta[key] = byteStringFromBytes(lua.lua_tolstring(L, -1)!);
      else if (t === lua.LUA_TNUMBER) meta[key] = lua.lua_tonumber(L, -1);
      else if (t === lua.LUA_TBOOLEAN) meta[key] = lua.lua_toboolean(L, -1);
    }
    lua.lua_pop(L, 1);
  }
  return meta;
}

