/**
 * The few fengari internals luastore relies on, in one place. fengari exposes no API for
 * them; each use says why. If a fengari upgrade breaks one, the tests that lean on it fail:
 * test/lua/instruction-count.test.ts (hook counts), test/lua/run-isolation.test.ts (shared values,
 * compiled chunks, table templates) and the sandbox and hostile suites (which run on all of them);
 * test/harness/coverage.test.ts (prototype line info, the hook's function).
 */
import { createRequire } from "node:module";
// fengari's entry first: its src/ files require each other in a cycle that only the entry's order
// resolves (required first, lobject.js sees an unfinished llex.js: "TValue is not a constructor").
import "fengari";
import type { lua_Debug, lua_State } from "fengari";
import type { LuaString } from "../codec/lua-msgpack.js";
import type { RunContext } from "./run-context.js";

interface StateInternals {
  /** Instructions left before the count hook fires (per thread). */
  hookcount: number;
  basehookcount: number;
  /** Shared by every thread of one Lua state. */
  l_G: { luastoreRun?: RunContext };
}

const internals = (L: lua_State): StateInternals => L as unknown as StateInternals;

/** Attaches the run to its Lua state, so module-level host functions find it from any thread. */
export function attachRun(L: lua_State, run: RunContext): void {
  internals(L).l_G.luastoreRun = run;
}

/** The run a Lua state belongs to. */
export function runOf(L: lua_State): RunContext {
  return internals(L).l_G.luastoreRun!;
}

/**
 * Instruction countdown of a thread. A new coroutine starts with a full countdown, so work
 * spread over many short coroutines would never reach the count hook; the coroutine library
 * hands the countdown from resumer to coroutine and back so all threads share one budget.
 */
export function getHookCount(L: lua_State): number {
  return internals(L).hookcount;
}

export function setHookCount(L: lua_State, count: number): void {
  internals(L).hookcount = count;
}

export function getBaseHookCount(L: lua_State): number {
  return internals(L).basehookcount;
}

// ---- values shared between Lua states ---------------------------------------------------
//
// fengari keeps every Lua value as a plain JS object and keys tables by object identity (or by
// a string's bytes), never by the state that made it, so an immutable value built once in a
// template state can be placed in any other state of the same thread. luastore uses this for
// the sandbox's library tables and for compiled prototypes; each use says why it is safe.


interface TValue {
  type: number;
  value: unknown;
  setfrom(tv: TValue): void;
  setclLvalue(cl: unknown): void;
}
interface ProtoFields {
  upvalues: unknown[];
  p: ProtoFields[];
  cache: unknown;
}
interface LClosureFields {
  p: ProtoFields;
  nupvalues: number;
  upvals: TValue[];
}
interface StackInternals {
  top: number;
  stack: TValue[];
  l_G: { l_registry: TValue };
}

const requireFengari = createRequire(import.meta.url);
const lobject = requireFengari("fengari/src/lobject.js") as { TValue: new (type: number, value: unknown) => TValue };
const lfunc = requireFengari("fengari/src/lfunc.js") as {
  luaF_newLclosure(L: lua_State, n: number): LClosureFields;
  luaF_initupvals(L: lua_State, cl: LClosureFields): void;
};
const ldo = requireFengari("fengari/src/ldo.js") as { luaD_inctop(L: lua_State): void };
const ltable = requireFengari("fengari/src/ltable.js") as { luaH_getint(t: unknown, key: number): TValue };
const lapi = requireFengari("fengari/src/lapi.js") as {
  lua_topointer(L: lua_State, idx: number): unknown;
  lua_absindex(L: lua_State, idx: number): number;
  lua_insert(L: lua_State, idx: number): void;
  lua_rawset(L: lua_State, idx: number): void;
  lua_rawget(L: lua_State, idx: number): number;
  lua_newuserdata(L: lua_State, size: number): unknown;
};
const LUA_RIDX_GLOBALS = 2;

/** A Lua value taken out of one state, to be pushed into others with {@link pushSharedValue}. */
export interface SharedValue {
  readonly type: number;
  readonly value: unknown;
}

/** The value at the top of `L`'s stack, as a value other states can receive. */
export function takeSharedValue(L: lua_State): SharedValue {
  const s = L as unknown as StackInternals;
  const tv = s.stack[s.top - 1]!;
  return Object.freeze({ type: tv.type, value: tv.value });
}

/** Pushes a value taken from another state of this thread. */
export function pushSharedValue(L: lua_State, v: SharedValue): void {
  ldo.luaD_inctop(L);
  const s = L as unknown as StackInternals;
  s.stack[s.top - 1] = new lobject.TValue(v.type, v.value);
}

/** A compiled main chunk: its function prototype, shared by every state that runs it. */
export interface CompiledChunk {
  readonly proto: unknown;
}

/**
 * Takes the Lua function just loaded at the top of `L` as a shareable prototype. Prototypes are
 * immutable once compiled except for `cache`, where fengari's OP_CLOSURE keeps the last closure
 * it made so that it can hand the same closure out again: shared between runs, that would let a
 * run receive a closure another run created. The cache is switched off on every nested prototype.
 */
export function takeCompiledChunk(L: lua_State): CompiledChunk {
  const s = L as unknown as StackInternals;
  const cl = s.stack[s.top - 1]!.value as LClosureFields;
  const noCache = (p: ProtoFields): void => {
    Object.defineProperty(p, "cache", { get: () => null, set: () => {}, configurable: false });
    for (const child of p.p) noCache(child);
  };
  noCache(cl.p);
  return Object.freeze({ proto: cl.p });
}

/** Pushes a new closure of a compiled chunk onto `L`, its _ENV upvalue set to `L`'s globals. */
export function pushChunkClosure(L: lua_State, chunk: CompiledChunk): void {
  const proto = chunk.proto as ProtoFields;
  const cl = lfunc.luaF_newLclosure(L, proto.upvalues.length);
  cl.p = proto;
  lfunc.luaF_initupvals(L, cl);
  ldo.luaD_inctop(L);
  const s = L as unknown as StackInternals;
  s.stack[s.top - 1]!.setclLvalue(cl);
  if (cl.nupvalues >= 1) cl.upvals[0]!.setfrom(ltable.luaH_getint(s.l_G.l_registry.value, LUA_RIDX_GLOBALS));
}

interface TableEntry {
  key: TValue;
  value: TValue;
  p: TableEntry | undefined;
  n: TableEntry | undefined;
}
interface TableFields {
  strong: Map<unknown, TableEntry>;
  dead_strong: Map<unknown, TableEntry>;
  dead_weak: unknown;
  f: TableEntry | undefined;
  l: TableEntry | undefined;
}

/** The entries of a table, taken once, to be copied into new tables with {@link fillTable}. */
export interface TableTemplate {
  readonly entries: readonly (readonly [hash: unknown, key: SharedValue, value: SharedValue])[];
}

/** Takes the entries of the table at the top of `L` (which stays there). */
export function takeTableTemplate(L: lua_State): TableTemplate {
  const t = (L as unknown as StackInternals).stack[(L as unknown as StackInternals).top - 1]!.value as TableFields;
  const entries: [unknown, SharedValue, SharedValue][] = [];
  for (const [hash, e] of t.strong) {
    entries.push([hash, Object.freeze({ type: e.key.type, value: e.key.value }), Object.freeze({ type: e.value.type, value: e.value.value })]);
  }
  return Object.freeze({ entries });
}

/**
 * Adds a template's entries to the table at `idx` of `L`, each with new key and value cells (so
 * an assignment in one table never reaches another), as fengari's own `add` in ltable.js does,
 * with the key hashes computed once. Measured: the sandbox's ~40 globals by lua_rawset were the
 * largest part of a run's start.
 */
export function fillTable(L: lua_State, idx: number, template: TableTemplate): void {
  const t = lapi.lua_topointer(L, idx) as TableFields;
  t.dead_strong.clear();
  t.dead_weak = undefined;
  for (const [hash, key, value] of template.entries) {
    const existing = t.strong.get(hash);
    if (existing !== undefined) {
      existing.value = new lobject.TValue(value.type, value.value);
      continue;
    }
    const entry: TableEntry = {
      key: new lobject.TValue(key.type, key.value),
      value: new lobject.TValue(value.type, value.value),
      p: t.l,
      n: undefined,
    };
    if (t.f === undefined) t.f = entry;
    if (t.l !== undefined) t.l.n = entry;
    t.strong.set(hash, entry);
    t.l = entry;
  }
}


const lstring = requireFengari("fengari/src/lstring.js") as { TString: new (L: unknown, bytes: Uint8Array) => object };
const LUA_TLNGSTR = 4 | (1 << 4);
const textEncoderForNames = new TextEncoder();

/**
 * A Lua string made once per thread, to be used as a table key in any state: `lua_getfield` and
 * `lua_setfield` make a new string from their key every call (a copy with `Uint8Array.from`, then
 * its hash on first use), which measured as the largest part of `require` and of handing out a
 * store handle. Strings are immutable values, so sharing one is invisible to Lua.
 */
export function sharedString(text: string): SharedValue {
  return Object.freeze({ type: LUA_TLNGSTR, value: new lstring.TString(null, textEncoderForNames.encode(text)) });
}

/** `t[key] = v` without metamethods, for the table at `idx` and the value at the top (popped). */
export function rawSetShared(L: lua_State, idx: number, key: SharedValue): void {
  const t = lapi.lua_absindex(L, idx);
  pushSharedValue(L, key);
  lapi.lua_insert(L, -2);
  lapi.lua_rawset(L, t);
}

/** Pushes `t[key]` without metamethods, for the table at `idx`; returns its type. */
export function rawGetShared(L: lua_State, idx: number, key: SharedValue): number {
  const t = lapi.lua_absindex(L, idx);
  pushSharedValue(L, key);
  return lapi.lua_rawget(L, t);
}

interface CallFrame {
  stack: TValue[];
  top: number;
  ci: { funcOff: number };
}

/**
 * The bytes of argument `n` (from 1) of the running host function when it is a string, else
 * null: `lua_type(L, n) === LUA_TSTRING` and `lua_tolstring(L, n)` in one stack access, with no
 * number coercion. The bytes are the Lua string's own (immutable).
 */
export function stringArg(L: lua_State, n: number): Uint8Array | null {
  const f = L as unknown as CallFrame;
  const i = f.ci.funcOff + n;
  if (i >= f.top) return null;
  const tv = f.stack[i]!;
  return (tv.type & 0x0f) === STRING_TAG ? (tv.value as { realstring: Uint8Array }).realstring : null;
}

/**
 * The host data of argument `n` (from 1) of the running host function when it is a full
 * userdata, else null: `lua_touserdata` for an argument in one stack access (a light userdata,
 * which no script can make, is null too).
 */
export function userdataArg(L: lua_State, n: number): unknown {
  const f = L as unknown as CallFrame;
  const i = f.ci.funcOff + n;
  if (i >= f.top) return null;
  const tv = f.stack[i]!;
  return tv.type === USERDATA_TAG ? (tv.value as UserdataFields).data : null;
}

/**
 * Pushes a new full userdata whose host data is `data` itself. fengari gives each userdata a
 * dictionary (`Object.create(null)`), where every property read is a hash lookup; an object of
 * the host's own class keeps its fields at fixed offsets (measured: a store call read three).
 * Either way only host code reaches it: Lua sees an opaque userdata.
 */
export function pushUserdata(L: lua_State, data: object): void {
  lapi.lua_newuserdata(L, 0);
  const s = L as unknown as StackInternals;
  (s.stack[s.top - 1]!.value as UserdataFields).data = data;
}
/**
 * Makes the string `ts` the one result of the running host function by writing it over the value
 * at the top of its stack (its last argument, which it no longer needs), as `lua_replace(L, -1)`
 * after a push would leave it, without the push's new stack cell: an allocation per call less
 * (measured: 6-8 % of a loop of `s:get`). The caller returns 1 and has at least one argument.
 */
export function replaceTopWithString(L: lua_State, ts: LuaString): void {
  const s = L as unknown as StackInternals;
  const top = s.stack[s.top - 1]!;
  top.type = LONG_STRING_TAG;
  top.value = ts;
}

/** {@link replaceTopWithString} for a boolean result. */
export function replaceTopWithBoolean(L: lua_State, b: boolean): void {
  const s = L as unknown as StackInternals;
  const top = s.stack[s.top - 1]!;
  top.type = BOOLEAN_TAG;
  top.value = b;
}
const LONG_STRING_TAG = 4 | (1 << 4);
const BOOLEAN_TAG = 1;

interface UserdataFields {
  data: unknown;
}
const USERDATA_TAG = 7;

/** Sets the metatable every string of `L` shares (what lua_setmetatable on a string does). */
export function setStringMetatable(L: lua_State, metatable: SharedValue): void {
  (L as unknown as { l_G: { mt: unknown[] } }).l_G.mt[STRING_TAG] = metatable.value;
}
const STRING_TAG = 4;

/**
 * Every new state names its 24 metamethods with new strings (ltm.js's luaT_init: a
 * to_luastring and a luaS_new each), which measured as the largest single cost of
 * luaL_newstate. Lua strings are immutable and keyed by their bytes, so one set serves every
 * state of the thread.
 */
export function shareMetamethodNames(): void {
  const ltm = requireFengari("fengari/src/ltm.js") as { luaT_init(L: lua_State): void; luastoreShared?: true };
  if (ltm.luastoreShared) return;
  const original = ltm.luaT_init;
  let names: unknown[] | null = null;
  ltm.luaT_init = (L) => {
    const g = (L as unknown as { l_G: { tmname: unknown[] } }).l_G;
    if (names === null) {
      original(L);
      names = g.tmname.slice();
      return;
    }
    for (let i = 0; i < names.length; i++) g.tmname[i] = names[i];
  };
  ltm.luastoreShared = true;
}

// ---- line information, for coverage --------------------------------------------------------

/** What coverage reads of a function prototype: the line of each instruction, and the nested prototypes. */
export interface ProtoLines {
  readonly lineinfo: readonly number[];
  readonly p: readonly ProtoLines[];
}

/** The prototype of the Lua function just loaded at the top of `L` (lua_load leaves its closure there). */
export function loadedProto(L: lua_State): ProtoLines {
  const s = L as unknown as StackInternals;
  return (s.stack[s.top - 1]!.value as { p: ProtoLines }).p;
}

/**
 * The prototype of the function a line hook fired in: fengari hands the hook the running call
 * (`i_ci`), whose function is the Lua closure. Read here rather than with lua_getinfo, which
 * would build strings on every line.
 */
export function hookProto(ar: lua_Debug): ProtoLines {
  return (ar as unknown as { i_ci: { func: { value: { p: ProtoLines } } } }).i_ci.func.value.p;
}
